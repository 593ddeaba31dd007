"""Metric points in the DuckDB store: series stored once, every point column kept, names tracked."""

from __future__ import annotations

from pathlib import Path

import pytest

from sextant.core.metrics import MetricKind, PointBatch, Temporality, check_series, normalize_tags, series_id
from sextant.core.timeutil import now_ms
from sextant.ingest.log import LoggedBatch, decode_batch, encode_batch
from sextant.storage.duckdb.store import DuckDBStore


def gauge_batch(org_id: int, metric: str, tags: list[str], points: list[tuple[int, float]]) -> PointBatch:
    batch = PointBatch()
    sid = batch.add_series(org_id, metric, normalize_tags(tags))
    for time_ms, value in points:
        batch.add(
            org_id=org_id, series_id=sid, time_ms=time_ms, kind=MetricKind.GAUGE, value=value, unit="byte"
        )
    return batch


def test_series_identity_ignores_tag_order_and_duplicates() -> None:
    a = series_id("cpu", normalize_tags(["host:a", "env:prod"]))
    assert a == series_id("cpu", normalize_tags(["env:prod", "host:a", "env:prod"]))
    assert a != series_id("cpu", normalize_tags(["env:prod"]))
    # NUL separates the parts in the hashed key, so no name or tag may hold one.
    assert check_series("a\0b", ()) == "metric name contains a NUL character"
    assert check_series("a", ("b\0",)) is not None and check_series("a", ("b",)) is None


def test_points_round_trip_with_every_column(tmp_path: Path) -> None:
    now = now_ms()
    store = DuckDBStore(tmp_path / "s.duckdb")
    batch = gauge_batch(1, "mem.used", ["host:a"], [(now - 2000, 1.5), (now - 1000, 2.5)])
    sid = batch.add_series(1, "http.latency", normalize_tags(["service:api"]))
    batch.add(
        org_id=1,
        series_id=sid,
        time_ms=now,
        kind=MetricKind.HISTOGRAM,
        value=12.0,
        count=4,
        min=0.5,
        max=7.0,
        bounds=[1.0, 5.0],
        bucket_counts=[1, 2, 1],
        interval_ms=10_000,
        start_time_ms=now - 10_000,
        temporality=Temporality.DELTA,
        monotonic=False,
        unit="ms",
    )
    store.append_points(batch, log_seq=7)
    assert store.loaded_log_seq() == 7
    gauge = store.read_points(1, "mem.used", now - 5000, now + 1, 5.0).to_pylist()
    assert [(p["time_ms"], p["value"], p["kind"], p["tags"], p["unit"]) for p in gauge] == [
        (now - 2000, 1.5, "gauge", ["host:a"], "byte"),
        (now - 1000, 2.5, "gauge", ["host:a"], "byte"),
    ]
    (hist,) = store.read_points(1, "http.latency", now, now + 1, 5.0).to_pylist()
    assert hist["bounds"] == [1.0, 5.0] and hist["bucket_counts"] == [1, 2, 1]
    assert (hist["count"], hist["min"], hist["max"], hist["value"]) == (4, 0.5, 7.0, 12.0)
    assert (hist["temporality"], hist["monotonic"], hist["interval_ms"]) == ("delta", False, 10_000)
    assert store.read_points(2, "mem.used", 0, now + 1, 5.0).num_rows == 0  # another organization
    store.close()


def test_a_series_is_stored_once_across_batches_and_restarts(tmp_path: Path) -> None:
    now = now_ms()
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    store.append_points(gauge_batch(1, "m", ["b:2", "a:1"], [(now - 10, 1.0)]))
    store.append_points(gauge_batch(1, "m", ["a:1", "b:2"], [(now - 5, 2.0)]))
    store.close()
    reopened = DuckDBStore(path)
    reopened.append_points(gauge_batch(1, "m", ["a:1", "b:2"], [(now, 3.0)]))
    rows = reopened.read_points(1, "m", 0, now + 1, 5.0).to_pylist()
    assert [r["value"] for r in rows] == [1.0, 2.0, 3.0] and {r["series_id"] for r in rows} == {
        series_id("m", ("a:1", "b:2"))
    }
    count = reopened._con.execute("SELECT count(*) FROM metric_series").fetchall()[0][0]
    assert count == 1
    reopened.close()


def test_metric_names_keep_the_latest_kind_and_unit(tmp_path: Path) -> None:
    now = now_ms()
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.append_points(gauge_batch(1, "m", [], [(now - 100, 1.0)]))
    later = PointBatch()
    sid = later.add_series(1, "m", ())
    later.add(
        org_id=1, series_id=sid, time_ms=now, kind=MetricKind.COUNT, value=3.0, temporality=Temporality.DELTA
    )
    store.append_points(later)
    (row,) = store.metric_names(1, 5.0).to_pylist()
    # The unit was not sent again: the one known is kept.
    assert (row["metric"], row["kind"], row["unit"], row["temporality"]) == ("m", "count", "byte", "delta")
    assert (row["first_seen_ms"], row["last_seen_ms"]) == (now - 100, now)
    store.close()


def test_a_failed_transaction_forgets_its_new_series(tmp_path: Path) -> None:
    now = now_ms()
    store = DuckDBStore(tmp_path / "s.duckdb")
    with pytest.raises(RuntimeError), store.transaction():
        store.append_points(gauge_batch(1, "m", ["x:1"], [(now, 1.0)]))
        raise RuntimeError("the load failed")
    store.append_points(gauge_batch(1, "m", ["x:1"], [(now, 2.0)]))
    (row,) = store.read_points(1, "m", 0, now + 1, 5.0).to_pylist()
    assert row["tags"] == ["x:1"] and row["value"] == 2.0
    store.close()


def test_retention_drops_old_points(tmp_path: Path) -> None:
    now = now_ms()
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.append_points(gauge_batch(1, "m", [], [(now - 100, 1.0), (now, 2.0)]))
    assert store.delete_points_before(now - 50) == 1
    assert [r["value"] for r in store.read_points(1, "m", 0, now + 1, 5.0).to_pylist()] == [2.0]
    store.close()


def test_log_records_carry_points_and_events_together() -> None:
    now = now_ms()
    from tests.storage.test_duckdb_store import batch_of

    logged = LoggedBatch(batch_of([now]), gauge_batch(3, "m", ["a:1"], [(now, 4.0)]))
    decoded, first = decode_batch(encode_batch(logged, 11))
    assert first == 11 and decoded.events is not None and decoded.points is not None
    assert decoded.events.time_ms == [now]
    assert decoded.points.value == [4.0] and decoded.points.series == logged.points.series  # type: ignore[union-attr]
    only_points, _ = decode_batch(encode_batch(LoggedBatch(points=gauge_batch(3, "m", [], [(now, 1.0)])), 1))
    assert only_points.events is None and len(only_points) == 1


def test_plain_values_in_columns_equal_points_added_one_by_one() -> None:
    by_point, by_column = PointBatch(), PointBatch()
    for batch in (by_point, by_column):
        sid = batch.add_series(1, "m", ("a:1",))
    for t, v in [(1, 1.0), (2, 2.5)]:
        by_point.add(
            org_id=1, series_id=sid, time_ms=t, kind=MetricKind.RATE, value=v, interval_ms=10, unit="s"
        )
    by_column.add_values(
        org_id=1,
        series_id=sid,
        kind=MetricKind.RATE,
        times_ms=[1, 2],
        values=[1.0, 2.5],
        interval_ms=10,
        unit="s",
    )
    assert by_column.columns() == by_point.columns() and by_column.series == by_point.series
    with pytest.raises(ValueError):
        by_column.add_values(org_id=1, series_id=sid, kind=MetricKind.GAUGE, times_ms=[1], values=[])
