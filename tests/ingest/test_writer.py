from __future__ import annotations

import asyncio
import errno
import os
import resource
import struct
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sextant.core.events import EventBatch
from sextant.core.timeutil import now_ms
from sextant.ingest import writer as writer_module
from sextant.ingest._syncer import COMPLETION_SIZE, Syncer
from sextant.ingest.log import IngestLog
from sextant.ingest.writer import GroupCommitWriter, WriteQueueFull, WriterStopped, recover
from sextant.storage.duckdb.store import DuckDBStore
from tests.storage.test_duckdb_store import batch_of
from tests.storeread import stored_events


def test_concurrent_writes_share_commits_and_all_land(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")

    async def scenario() -> int:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100_000, max_commit_events=50_000
        )
        writer.start()
        now = now_ms()
        await asyncio.gather(*(writer.write(batch_of([now] * 3)) for _ in range(200)))
        await writer.stop()
        return writer.commits

    commits = asyncio.run(scenario())
    store.close()
    rows = stored_events(tmp_path)
    assert len(rows) == 600
    assert [r["event_id"] for r in rows] == list(range(1, 601))
    # Group commit: 200 requests that arrive together do not cost 200 transactions.
    assert commits < 200


@pytest.mark.skipif(sys.platform != "linux", reason="Linux keeps a nice value per thread")
def test_the_loader_runs_at_a_lower_priority_than_the_event_loop(tmp_path: Path) -> None:
    if os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) >= 19:
        pytest.skip("this process already runs at the lowest priority")
    store = DuckDBStore(tmp_path / "sextant.duckdb")

    async def scenario() -> tuple[int, int]:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=1000, max_commit_events=1000
        )
        writer.start()
        (loader,) = [t for t in threading.enumerate() if t.name == "sextant-loader"]
        assert loader.native_id is not None
        loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        deadline = time.monotonic() + 10
        while os.getpriority(os.PRIO_PROCESS, loader.native_id) == loop_nice:
            assert time.monotonic() < deadline, "the loader kept the event loop's priority"
            await asyncio.sleep(0.01)
        # It still loads.
        await writer.write(batch_of([now_ms()] * 2))
        loader_nice = os.getpriority(os.PRIO_PROCESS, loader.native_id)
        await writer.stop()
        return loop_nice, loader_nice

    loop_nice, loader_nice = asyncio.run(scenario())
    store.close()
    assert loader_nice == min(19, loop_nice + writer_module.LOADER_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
    assert len(stored_events(tmp_path)) == 2


def test_full_queue_refuses_and_stop_refuses_new_writes(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")

    async def scenario() -> tuple[int, int]:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=10, max_commit_events=10
        )
        writer.start()
        now = now_ms()

        async def submit() -> None:
            # Refusals are raised by write() itself, durability failures by the future it returns.
            await writer.write(batch_of([now] * 10))

        results = await asyncio.gather(*(submit() for _ in range(50)), return_exceptions=True)
        refused = sum(isinstance(r, WriteQueueFull) for r in results)
        accepted = sum(r is None for r in results)
        assert refused + accepted == 50
        await writer.stop()
        with pytest.raises(WriterStopped):
            await writer.write(batch_of([now]))
        return accepted, refused

    accepted, refused = asyncio.run(scenario())
    store.close()
    assert refused > 0 and accepted > 0
    assert len(stored_events(tmp_path)) == 10 * accepted


def test_ids_continue_after_restart(tmp_path: Path) -> None:
    async def write_once() -> None:
        store = DuckDBStore(tmp_path / "sextant.duckdb")
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100, max_commit_events=100
        )
        writer.start()
        await writer.write(batch_of([now_ms()] * 2))
        await writer.stop()
        store.close()

    asyncio.run(write_once())
    asyncio.run(write_once())
    assert [r["event_id"] for r in stored_events(tmp_path)] == [1, 2, 3, 4]


def test_points_and_events_written_together_land_with_their_ids(tmp_path: Path) -> None:
    from tests.storage.test_metric_tables import gauge_batch

    store = DuckDBStore(tmp_path / "sextant.duckdb")
    now = now_ms()

    async def scenario() -> None:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100_000, max_commit_events=50_000
        )
        writer.start()
        writes = []
        for i in range(50):
            writes.append(writer.write(batch_of([now] * 2)))
            writes.append(writer.write(gauge_batch(1, "m", [f"i:{i % 5}"], [(now - i, float(i))])))
        await asyncio.gather(*writes)
        await writer.stop()

    asyncio.run(scenario())
    points = store.read_points(1, "m", 0, now + 1, 5.0).to_pylist()
    assert sorted(p["value"] for p in points) == [float(i) for i in range(50)]
    assert {tuple(p["tags"]) for p in points} == {(f"i:{i}",) for i in range(5)}
    store.close()
    # Points take no event ids: the 100 events are numbered 1..100 as if alone.
    assert [r["event_id"] for r in stored_events(tmp_path)] == list(range(1, 101))


def test_logged_points_are_recovered_once(tmp_path: Path) -> None:
    from sextant.ingest.log import LoggedBatch, encode_batch
    from sextant.ingest.writer import recover
    from tests.storage.test_metric_tables import gauge_batch

    store = DuckDBStore(tmp_path / "sextant.duckdb")
    log = IngestLog(tmp_path / "log")
    log.start(recover(store, log))
    now = now_ms()
    log.append(1, encode_batch(LoggedBatch(points=gauge_batch(1, "m", ["a:1"], [(now, 1.0)])), 1))
    log.append(
        2, encode_batch(LoggedBatch(batch_of([now]), gauge_batch(1, "m", ["a:1"], [(now + 1, 2.0)])), 1)
    )
    log.close()  # "crash" before loading
    for _ in range(3):
        assert recover(store, IngestLog(tmp_path / "log")) == 3
    assert [p["value"] for p in store.read_points(1, "m", 0, now + 2, 5.0).to_pylist()] == [1.0, 2.0]
    store.close()
    assert len(stored_events(tmp_path)) == 1


def test_points_and_events_have_separate_bounds(tmp_path: Path) -> None:
    """A backlog of metric points does not refuse events, and the other way round."""
    from tests.storage.test_metric_tables import gauge_batch

    store = DuckDBStore(tmp_path / "sextant.duckdb")
    now = now_ms()

    async def scenario() -> tuple[int, int]:
        writer = GroupCommitWriter(
            store,
            IngestLog(tmp_path / "log"),
            max_queued_events=10,
            max_commit_events=10,
            max_queued_points=5,
        )
        writer.start()
        writes = [writer.write(gauge_batch(1, "m", [], [(now - k, 1.0) for k in range(5)]))]
        with pytest.raises(WriteQueueFull):
            writer.write(gauge_batch(1, "m", [], [(now, 1.0)]))
        writes.append(writer.write(batch_of([now] * 10)))  # events still go in
        with pytest.raises(WriteQueueFull):
            writer.write(batch_of([now]))
        await asyncio.gather(*writes)
        await writer.stop()
        return writer._queued, writer._queued_points

    assert asyncio.run(scenario()) == (0, 0)  # everything stored: both tallies back to zero
    assert store.read_points(1, "m", 0, now + 1, 5.0).num_rows == 5
    store.close()


def test_a_series_is_defined_in_the_log_once_and_recovered_from_the_store(tmp_path: Path) -> None:
    from sextant.ingest.log import decode_batch
    from tests.storage.test_metric_tables import gauge_batch

    store = DuckDBStore(tmp_path / "sextant.duckdb")
    now = now_ms()

    async def scenario() -> None:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100, max_commit_events=100
        )
        writer.start()
        for k in range(3):
            await writer.write(gauge_batch(1, "m", ["a:1"], [(now - 10 + k, float(k))]))
        await writer.stop()

    asyncio.run(scenario())
    records = [decode_batch(payload)[0] for _, payload in IngestLog(tmp_path / "log").replay(0)]
    assert [len(r.points.series) for r in records if r.points is not None] == [1, 0, 0]
    # A crash after the first record was stored: the later ones are replayed without the definition,
    # which the store has.
    store._con.execute("DELETE FROM metric_points WHERE time_ms > ?", [now - 10]).fetchall()
    store._con.execute("UPDATE ingest_state SET loaded_log_seq = 1").fetchall()
    store.close()
    reopened = DuckDBStore(tmp_path / "sextant.duckdb")
    from sextant.ingest.writer import recover

    recover(reopened, IngestLog(tmp_path / "log"))
    rows = reopened.read_points(1, "m", 0, now + 1, 5.0).to_pylist()
    assert [r["value"] for r in rows] == [0.0, 1.0, 2.0] and {tuple(r["tags"]) for r in rows} == {("a:1",)}
    (name,) = reopened.metric_names(1, 5.0).to_pylist()
    assert name["last_seen_ms"] == now - 8  # the replayed points counted for the metric too
    reopened.close()


def _descriptor_of(path: Path) -> int:
    (fd,) = [int(fd) for fd in os.listdir("/proc/self/fd") if _link(f"/proc/self/fd/{fd}") == str(path)]
    return fd


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the log's descriptor in /proc")
def test_a_series_first_defined_by_a_record_that_failed_is_defined_again(tmp_path: Path) -> None:
    from sextant.ingest.log import decode_batch
    from tests.storage.test_metric_tables import gauge_batch

    store = DuckDBStore(tmp_path / "sextant.duckdb")
    now = now_ms()

    async def scenario() -> BaseException | None:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100, max_commit_events=100
        )
        writer.start()
        await writer.write(batch_of([now]))
        log_fd = _descriptor_of(tmp_path / "log" / f"{1:020d}.log")
        writable, read_only = os.dup(log_fd), os.open(tmp_path / "log" / f"{1:020d}.log", os.O_RDONLY)
        os.dup2(read_only, log_fd)  # the log's own descriptor now refuses writes
        failure = None
        try:
            await writer.write(gauge_batch(1, "m", ["a:1"], [(now - 10, 1.0)]))
        except OSError as exc:
            failure = exc
        finally:
            os.dup2(writable, log_fd)
            os.close(writable)
            os.close(read_only)
        await writer.write(gauge_batch(1, "m", ["a:1"], [(now - 9, 2.0)]))
        await writer.stop()
        return failure

    failure = asyncio.run(scenario())
    store.close()
    assert isinstance(failure, OSError) and failure.errno == errno.EBADF
    records = [decode_batch(payload)[0] for _, payload in IngestLog(tmp_path / "log").replay(0)]
    # The record after the failed one defines the series: the failed one may never be read back.
    assert [len(r.points.series) for r in records if r.points is not None] == [1]
    # Replayed into an empty store, the log alone gives the series and its point.
    (tmp_path / "sextant.duckdb").unlink()
    empty = DuckDBStore(tmp_path / "sextant.duckdb")
    recover(empty, IngestLog(tmp_path / "log"))
    rows = empty.read_points(1, "m", 0, now + 1, 5.0).to_pylist()
    empty.close()
    assert [(r["value"], tuple(r["tags"])) for r in rows] == [(2.0, ("a:1",))]


class RecordingStore(DuckDBStore):
    """The real store, noting how many events each load carried."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.loads: list[int] = []

    def append_events(self, batch: EventBatch, first_event_id: int, log_seq: int | None = None) -> None:
        super().append_events(batch, first_event_id, log_seq)
        self.loads.append(len(batch))


def test_a_filling_queue_is_loaded_without_waiting_for_the_load_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Loads are spaced to let groups gather; a queue past a quarter of its bound must not wait for that,
    # or bursts of batches would be refused while the store could keep up.
    monkeypatch.setattr(writer_module, "LOAD_INTERVAL_S", 30.0)
    store = RecordingStore(tmp_path / "sextant.duckdb")

    async def scenario() -> float:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=1000, max_commit_events=1000
        )
        writer.start()
        now = now_ms()
        await writer.write(batch_of([now]))
        await loaded(store, [1])
        # Below a quarter of the bound, the loader keeps gathering.
        await writer.write(batch_of([now] * 100))
        await asyncio.sleep(0.5)
        assert store.loads == [1]
        started = time.monotonic()
        await writer.write(batch_of([now] * 200))
        await loaded(store, [1, 300])
        waited = time.monotonic() - started
        await writer.stop()
        return waited

    waited = asyncio.run(scenario())
    store.close()
    assert waited < 5.0
    assert len(stored_events(tmp_path)) == 301


def test_a_record_that_could_not_be_written_whole_is_cut_off_and_the_next_ones_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file-size limit tears the record in two: its first bytes are in the file, the write fails.
    # Its requests learn of it; the records written after it must not be hidden behind the tear.
    monkeypatch.setattr(writer_module, "LOAD_INTERVAL_S", 30.0)  # the store writes nothing meanwhile
    store = RecordingStore(tmp_path / "sextant.duckdb")
    segment = tmp_path / "log" / f"{1:020d}.log"

    async def scenario() -> tuple[BaseException | None, int]:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=10_000, max_commit_events=10_000
        )
        writer.start()
        now = now_ms()
        await writer.write(batch_of([now] * 2))
        await loaded(store, [2])
        size = segment.stat().st_size
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
        try:
            torn = writer.write(batch_of([now] * 200))
            failure = None
            try:
                await torn
            except OSError as exc:
                failure = exc
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        await writer.write(batch_of([now + 1] * 3))
        await writer.stop()
        return failure, size

    failure, size = asyncio.run(scenario())
    store.close()
    assert isinstance(failure, OSError) and failure.errno == errno.EFBIG
    rows = stored_events(tmp_path)
    assert [r["event_id"] for r in rows] == [1, 2, 203, 204, 205]  # the failed record's ids stay unused
    replayed = [seq for seq, _ in IngestLog(tmp_path / "log").replay(0)]
    assert replayed == [1, 3]
    assert segment.stat().st_size > size
    # A restart finds everything stored already: nothing is loaded twice.
    again = DuckDBStore(tmp_path / "sextant.duckdb")
    assert recover(again, IngestLog(tmp_path / "log")) == 4
    again.close()
    assert len(stored_events(tmp_path)) == 5


async def loaded(store: RecordingStore, loads: list[int]) -> None:
    deadline = time.monotonic() + 10
    while store.loads != loads:
        assert time.monotonic() < deadline, f"loads {store.loads}, not {loads}, after 10 s"
        await asyncio.sleep(0.01)


class SyncBench:
    """A file to sync, the pipe a syncer reports to, and the syncers made on it (all closed afterwards)."""

    def __init__(self, tmp_path: Path) -> None:
        self.done_r, self.done_w = os.pipe()
        self.path = tmp_path / "f"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT)
        self.written = 0
        self.syncers: list[Syncer] = []

    def syncer(self, **options: int) -> Syncer:
        made = Syncer(self.done_w, **options)
        self.syncers.append(made)
        return made

    def write_and_sync(self, syncer: Syncer, seq: int, record: bytes = b"x" * 100) -> None:
        syncer.write(self.fd, self.written, record, seq)
        self.written += len(record)

    def synced(self, syncer: Syncer, seq: int) -> None:
        """Write, sync and wait for the completion of `seq`."""
        self.write_and_sync(syncer, seq)
        assert struct.unpack("=qq", os.read(self.done_r, COMPLETION_SIZE)) == (seq, 0)

    def close(self) -> None:
        for made in self.syncers:
            made.close()
        for fd in (self.fd, self.done_r, self.done_w):
            os.close(fd)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[SyncBench]:
    made = SyncBench(tmp_path)
    yield made
    made.close()


def test_the_syncer_takes_a_sync_while_one_runs_and_reports_the_newest(bench: SyncBench) -> None:
    # The loop asks for a sync whenever it has written records; the syncer must not refuse while one runs,
    # and one fdatasync covers every record written before it started.
    syncer = bench.syncer()
    for seq in range(1, 51):
        bench.write_and_sync(syncer, seq)
    reported: list[int] = []
    while not reported or reported[-1] != 50:
        data = os.read(bench.done_r, COMPLETION_SIZE * 64)
        for seq, error in struct.iter_unpack("=qq", data):
            assert error == 0
            reported.append(seq)
    assert reported == sorted(set(reported))
    assert len(reported) <= 50


def test_the_syncer_writes_each_record_where_it_was_placed(bench: SyncBench) -> None:
    syncer = bench.syncer()
    records = [bytes([65 + i % 26]) * (10 + i) for i in range(40)]
    for seq, record in enumerate(records, 1):
        bench.write_and_sync(syncer, seq, record)
    while struct.unpack("=qq", os.read(bench.done_r, COMPLETION_SIZE))[0] != len(records):
        pass
    assert bench.path.read_bytes() == b"".join(records)
    with pytest.raises(ValueError):
        syncer.write(bench.fd, 0, b"", 41)
    with pytest.raises(ValueError):
        syncer.write(bench.fd, -1, b"x", 41)


def completions(done_r: int, until_seq: int) -> list[tuple[int, int]]:
    got: list[tuple[int, int]] = []
    while not got or got[-1][0] < until_seq:
        got.extend(struct.iter_unpack("=qq", os.read(done_r, COMPLETION_SIZE * 16)))
    return got


def test_a_failed_write_fails_every_later_one_until_resume(bench: SyncBench) -> None:
    # A failed write may leave a torn record that would hide every later one from replay: the writes
    # asked for after it fail unwritten until the loop has cut the tear off and resumes.
    syncer = bench.syncer()
    bench.synced(syncer, 1)
    writable = os.dup(bench.fd)
    read_only = os.open(bench.path, os.O_RDONLY)
    try:
        os.dup2(read_only, bench.fd)  # the same descriptor, now refusing writes
        syncer.write(bench.fd, 100, b"y" * 50, 2)
        assert completions(bench.done_r, 2) == [(2, -errno.EBADF)]
        os.dup2(writable, bench.fd)  # writes would succeed again, but the failure is sticky
        syncer.write(bench.fd, 100, b"z" * 50, 3)
        assert completions(bench.done_r, 3) == [(3, -errno.EBADF)]
        syncer.resume()
        syncer.write(bench.fd, 100, b"w" * 50, 4)
        assert completions(bench.done_r, 4) == [(4, 0)]
    finally:
        os.close(writable)
        os.close(read_only)
    assert bench.path.read_bytes() == b"x" * 100 + b"w" * 50


def test_the_syncer_watches_for_the_next_sync_before_it_sleeps(bench: SyncBench) -> None:
    # Under load the next sync is asked for soon after a completion: the thread is still watching then,
    # and sync() wakes nobody. Once the watch is over, the thread sleeps and a sync has to wake it.
    watching = bench.syncer(spin_ns=5_000_000_000)
    sleeping = bench.syncer(spin_ns=0)
    assert watching.spin_ns == 5_000_000_000
    assert bench.syncer().spin_ns == 300_000
    for syncer in (watching, sleeping):
        time.sleep(0.05)  # the thread has started and sleeps: nothing was asked yet
        for seq in range(1, 6):
            bench.synced(syncer, seq)
            time.sleep(0.01)
    # The first sync of each woke its thread; later ones found the watching thread awake.
    assert watching.wakeups == 1
    assert sleeping.wakeups == 5


def test_the_syncer_watches_less_while_its_watches_miss(bench: SyncBench) -> None:
    # Requests a little too far apart to be caught would make every watch time spent for nothing: each
    # miss halves the next watch, and a request soon after a completion brings the whole watch back.
    spin_ns = 50_000_000
    syncer = bench.syncer(spin_ns=spin_ns)
    for seq in range(1, 7):
        bench.synced(syncer, seq)
        time.sleep(0.12)  # more than the whole watch: every one misses
    bench.synced(syncer, 7)
    assert syncer.watch_ns <= spin_ns // 16
    for seq in range(8, 11):
        bench.synced(syncer, seq)  # at once: within a watch of the completion before
    assert syncer.watch_ns == spin_ns


def test_groups_keep_being_written_while_a_sync_runs_and_across_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests of later turns of the loop are written (and synced) without waiting for the loop to see
    # earlier completions; a new segment waits until the records of the one before are durable.
    from sextant.ingest import log as log_module

    monkeypatch.setattr(log_module, "SEGMENT_BYTES", 600)
    store = DuckDBStore(tmp_path / "sextant.duckdb")

    async def scenario() -> int:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100_000, max_commit_events=50_000
        )
        writer.start()
        now = now_ms()
        pending = []
        for turn in range(60):
            pending.extend(writer.write(batch_of([now + turn] * 2)) for _ in range(3))
            await asyncio.sleep(0)
        await asyncio.gather(*pending)
        await writer.stop()
        return writer.commits

    records = asyncio.run(scenario())
    store.close()
    rows = stored_events(tmp_path)
    assert [r["event_id"] for r in rows] == list(range(1, 361))
    # One record per turn of the loop at most, whatever the syncs were doing meanwhile.
    assert records <= 60
