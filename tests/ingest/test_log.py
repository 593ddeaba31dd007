"""The ingest log: records survive torn tails, recovery stores each acknowledged group exactly once."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import duckdb
import pytest

from sextant.core.metrics import MetricKind, PointBatch
from sextant.core.timeutil import now_ms
from sextant.ingest import log as ingest_log
from sextant.ingest.log import IngestLog, LoggedBatch, decode_batch, encode_batch
from sextant.ingest.writer import GroupCommitWriter, recover
from sextant.storage.duckdb.store import DuckDBStore
from tests.storage.test_duckdb_store import batch_of
from tests.storeread import stored_events


def test_batches_round_trip() -> None:
    batch = batch_of([5, 6, 7])
    batch.array_paths.add("tags")
    logged, first = decode_batch(encode_batch(LoggedBatch(batch), 42))
    decoded = logged.events
    assert first == 42 and decoded is not None and logged.points is None
    assert decoded.usr_id == batch.usr_id and decoded.attributes == batch.attributes
    assert decoded.array_paths == {"tags"} and len(decoded) == 3


def test_replay_stops_at_a_torn_record(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    log.start(1)
    for seq in (1, 2, 3):
        log.append(seq, f"payload {seq}".encode())
    log.close()
    segment = next(tmp_path.glob("*.log"))
    segment.write_bytes(segment.read_bytes()[:-4])  # a crash in the middle of appending record 3
    assert list(IngestLog(tmp_path).replay(0)) == [(1, b"payload 1"), (2, b"payload 2")]
    assert list(IngestLog(tmp_path).replay(1)) == [(2, b"payload 2")]


def test_recovery_stores_logged_groups_once(tmp_path: Path) -> None:
    """Groups that were acknowledged (logged) but not stored before a crash are stored at the next start,
    exactly once, however often the process restarts."""
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    log = IngestLog(tmp_path / "log")
    log.start(recover(store, log))
    now = now_ms()
    log.append(1, encode_batch(LoggedBatch(batch_of([now, now])), 1))
    log.append(2, encode_batch(LoggedBatch(batch_of([now])), 3))
    log.close()  # "crash": nothing was loaded
    assert store.loaded_log_seq() == 0
    for _ in range(3):
        assert recover(store, IngestLog(tmp_path / "log")) == 3
    assert store.loaded_log_seq() == 2
    store.close()
    assert [r["event_id"] for r in stored_events(tmp_path)] == [1, 2, 3]


def test_loaded_segments_are_pruned(tmp_path: Path, monkeypatch: object) -> None:
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(ingest_log, "SEGMENT_BYTES", 1)  # a new segment for every record
    store = DuckDBStore(tmp_path / "sextant.duckdb")

    async def scenario() -> None:
        writer = GroupCommitWriter(
            store, IngestLog(tmp_path / "log"), max_queued_events=100, max_commit_events=1
        )
        writer.start()
        for _ in range(5):
            await writer.write(batch_of([now_ms()]))
        await writer.stop()

    asyncio.run(scenario())
    segments = sorted(p.name for p in (tmp_path / "log").glob("*.log"))
    assert len(segments) == 1  # only the segment being written survives once everything is stored
    assert store.loaded_log_seq() == 5
    store.close()
    assert len(stored_events(tmp_path)) == 5


def test_resource_tags_round_trip_and_records_of_before_read_without_them(tmp_path: Path) -> None:
    points = PointBatch()
    resourced = points.add_series(1, "m", ("host:a", "region:eu"), ("region:eu",))
    plain = points.add_series(1, "m", ("host:b",))
    for sid in (resourced, plain):
        points.add_values(org_id=1, series_id=sid, kind=MetricKind.GAUGE, times_ms=[now_ms()], values=[1.0])
    record = encode_batch(LoggedBatch(points=points), 1)
    decoded = decode_batch(record)[0].points
    assert decoded is not None and decoded.resource_tags == {(1, resourced): ("region:eu",)}
    # A record of the version before: six parts, no resource tags.
    older = ingest_log._encode(ingest_log._decode(record)[:6])
    assert (old := decode_batch(older)[0].points) is not None and old.resource_tags == {}
    # Replayed into a store, the series keeps them.
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.append_points(decoded)
    store.close()
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT tags, resource_tags FROM metric_series ORDER BY tags").fetchall()
    assert rows == [(["host:a", "region:eu"], ["region:eu"]), (["host:b"], [])]


def _wait_for(path: Path) -> None:
    import time

    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)
    time.sleep(0.05)  # the preparing thread notes it ready just after the rename


def test_a_segment_with_traffic_has_the_next_one_prepared_and_written_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Once a segment is an eighth full, the next is zero-filled to its full size in the background; the
    # rotation renames it in place and records overwrite its zeros from the start. Replay reads the
    # records and takes the zeros after them for the end, without calling them torn.
    monkeypatch.setattr(ingest_log, "SEGMENT_BYTES", 4096)
    log = IngestLog(tmp_path)
    log.start(1)
    log.append(1, b"a" * 100)
    assert not (tmp_path / "next-segment.prepared").exists()  # little traffic: nothing prepared
    log.append(2, b"b" * 500)  # past an eighth of the segment
    _wait_for(tmp_path / "next-segment.prepared")
    assert (tmp_path / "next-segment.prepared").read_bytes() == bytes(4096)
    seq = 3
    while not log.rotates:
        log.append(seq, b"c" * 500)
        seq += 1
    log.append(seq, b"first of the prepared segment")
    log.append(seq + 1, b"second")
    log.close()
    segments = sorted(tmp_path.glob("*.log"))
    assert len(segments) == 2 and segments[1].name == f"{seq:020d}.log"
    assert segments[1].stat().st_size == 4096  # the prepared size: written over, not appended to
    replayed = list(IngestLog(tmp_path).replay(0))
    assert [s for s, _ in replayed] == list(range(1, seq + 2))
    assert replayed[-2:] == [(seq, b"first of the prepared segment"), (seq + 1, b"second")]


def test_a_torn_record_in_a_prepared_segment_ends_the_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_log, "SEGMENT_BYTES", 1024)
    (tmp_path / "next-segment.prepared").write_bytes(bytes(1024))  # left by an earlier run
    (tmp_path / "next-segment.preparing").write_bytes(bytes(10))  # interrupted: not to be used
    log = IngestLog(tmp_path)
    assert not (tmp_path / "next-segment.preparing").exists()
    log.start(1)  # the prepared segment becomes the first
    for seq in (1, 2, 3):
        log.append(seq, f"payload {seq}".encode())
    log.close()
    segment = next(tmp_path.glob("*.log"))
    data = bytearray(segment.read_bytes())
    assert len(data) == 1024
    tail = 16 + len(b"payload 3")
    data[-(1024 - 3 * tail) - 4 : -(1024 - 3 * tail)] = bytes(4)  # record 3's last bytes never landed
    segment.write_bytes(bytes(data))
    assert list(IngestLog(tmp_path).replay(0)) == [(1, b"payload 1"), (2, b"payload 2")]


def test_recovery_reads_every_record_of_prepared_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash leaves prepared segments with zeros after their last record: recovery stores every record
    # of every segment once, and stops at none of the zeros.
    monkeypatch.setattr(ingest_log, "SEGMENT_BYTES", 512)
    log = IngestLog(tmp_path / "log")
    log.start(1)
    for seq in range(1, 39):
        if log.rotates:
            _wait_for(tmp_path / "log" / "next-segment.prepared")
        log.append(seq, encode_batch(LoggedBatch(batch_of([now_ms()])), seq))
    log.close()
    segments = sorted((tmp_path / "log").glob("*.log"))
    assert len(segments) > 3
    # The last is a prepared segment only partly written: zeros follow its last record.
    assert segments[-1].stat().st_size == 512 and segments[-1].read_bytes().endswith(bytes(64))
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    assert recover(store, IngestLog(tmp_path / "log")) == 39
    assert store.loaded_log_seq() == 38
    store.close()
    assert len(stored_events(tmp_path)) == 38


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the log's descriptor in /proc")
def test_a_segment_that_cannot_be_cut_back_is_left_for_a_new_one(tmp_path: Path) -> None:
    # A torn record that stays in the file would hide every record after it: they go to a new segment.
    log = IngestLog(tmp_path)
    log.start(1)
    log.append(1, b"first")
    fd, offset, _ = log.place(2, b"torn")
    segment = tmp_path / f"{1:020d}.log"
    os.pwrite(fd, b"\xff" * 6, offset)
    writable, read_only = os.dup(fd), os.open(segment, os.O_RDONLY)
    os.dup2(read_only, fd)  # ftruncate now fails
    try:
        log.discard_from(offset)
    finally:
        os.dup2(writable, fd)
        os.close(writable)
        os.close(read_only)
    assert log.rotates
    log.append(3, b"third")
    log.close()
    assert (tmp_path / f"{3:020d}.log").exists()
    assert list(IngestLog(tmp_path).replay(0)) == [(1, b"first"), (3, b"third")]


def test_a_record_placed_but_not_written_whole_is_cut_off(tmp_path: Path) -> None:
    log = IngestLog(tmp_path)
    log.start(1)
    log.append(1, b"first")
    fd, offset, record = log.place(2, b"torn")
    os.pwrite(fd, record[:7], offset)
    log.discard_from(offset)
    log.append(3, b"third")
    log.close()
    assert [seq for seq, _ in IngestLog(tmp_path).replay(0)] == [1, 3]
    header = len(record) - len(b"torn")
    assert (tmp_path / f"{1:020d}.log").stat().st_size == offset + header + len(b"third")
