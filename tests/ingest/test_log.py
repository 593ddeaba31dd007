"""The ingest log: records survive torn tails, recovery stores each acknowledged group exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb

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
