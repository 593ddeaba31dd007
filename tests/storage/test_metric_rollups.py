"""Per-minute and per-hour rollups (storage/duckdb/metric_rollups.py): a query they answer gives what the
points give, loaded in many batches or one, before and after compaction, and after retention."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sextant.core.metrics import MetricKind, PointBatch
from sextant.core.timeutil import now_ms
from sextant.query.metrics import AllTags, PointValue, SeriesQuery, TimeAggregation
from sextant.storage.duckdb import metric_rollups, metric_sql
from sextant.storage.duckdb.store import DuckDBStore

HOUR = 3_600_000
MINUTE = 60_000
T0 = (now_ms() // HOUR - 30) * HOUR  # an hour boundary 30 hours back
SPAN = 26 * HOUR


def random_points(seed: int) -> list[tuple[int, MetricKind, int, float, int | None]]:
    """(series, kind, time, value, interval) for 4 series, with gaps, bursts and points sent twice."""
    rng = random.Random(seed)
    points = []
    for series in range(4):
        kind = [MetricKind.GAUGE, MetricKind.RATE, MetricKind.COUNT, MetricKind.GAUGE][series]
        interval = 10_000 if kind is not MetricKind.GAUGE else None
        t = T0 + rng.randrange(0, 30 * MINUTE)
        while t < T0 + SPAN:
            value = round(rng.uniform(-50, 150), 3)
            points.append((series, kind, t, value, interval))
            if rng.random() < 0.05:
                # Sent twice (a retry): with two values at one time, even the points' `last` is a toss-up.
                points.append((series, kind, t, value, interval))
            t += rng.choice([1_000, 7_000, 10_000, 10_000, 45_000, 20 * MINUTE])
    return points


def load(
    store: DuckDBStore, points: list[tuple[int, MetricKind, int, float, int | None]], batches: int
) -> None:
    order = list(points)
    random.Random(batches).shuffle(order)
    size = -(-len(order) // batches)
    for start in range(0, len(order), size):
        batch = PointBatch()
        for series, kind, t, value, interval in order[start : start + size]:
            sid = batch.add_series(1, "m", (f"s:{series}",))
            batch.add_values(
                org_id=1, series_id=sid, kind=kind, times_ms=[t], values=[value], interval_ms=interval
            )
        store.append_points(batch)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBStore, DuckDBStore]]:
    """The same points, loaded in 40 batches (many rollup rows per unit) and in one."""
    points = random_points(7)
    many = DuckDBStore(tmp_path_factory.mktemp("rollups") / "many.duckdb")
    one = DuckDBStore(tmp_path_factory.mktemp("rollups") / "one.duckdb")
    load(many, points, 40)
    load(one, points, 1)
    yield many, one
    many.close()
    one.close()


def query(
    aggregation: TimeAggregation, point_value: PointValue, step: int, start: int, end: int
) -> SeriesQuery:
    return SeriesQuery(
        org_id=1,
        metric="m",
        filter=AllTags(),
        start_ms=start,
        end_ms=end,
        step_ms=step,
        time_aggregation=aggregation,
        point_value=point_value,
    )


def from_points(store: DuckDBStore, q: SeriesQuery, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as patched:
        patched.setattr(metric_sql, "rollup_plan", lambda _: None)
        return store.query_series(q, 30).values


def assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-9, atol=1e-9)


_cases = st.tuples(
    st.sampled_from(["avg", "sum", "min", "max", "count", "last"]),
    st.sampled_from(["value", "value_times_interval"]),
    st.sampled_from([MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR]),
    st.integers(0, 6 * HOUR),
    st.integers(HOUR // 2, SPAN),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_cases)
def test_rollups_answer_what_the_points_answer(
    stores: tuple[DuckDBStore, DuckDBStore],
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[TimeAggregation, PointValue, int, int, int],
) -> None:
    aggregation, point_value, step, offset, length = case
    # Ranges that start and end inside units, so that their edges come from the points.
    q = query(aggregation, point_value, step, T0 + offset + 1_234, T0 + offset + length)
    many, one = stores
    expected = from_points(one, q, monkeypatch)
    for store in (many, one):
        assert_same(store.query_series(q, 30).values, expected)


def test_queries_of_whole_minutes_or_hours_read_the_rollups() -> None:
    day = query("avg", "value", 5 * MINUTE, T0, T0 + 24 * HOUR)
    hourly = query("sum", "value", HOUR, T0 + 1, T0 + 24 * HOUR)
    assert metric_rollups.plan(day) == metric_rollups.RollupPlan("metric_rollups_5m", T0, T0 + 24 * HOUR)
    minutes = query("avg", "value", 2 * MINUTE, T0, T0 + 24 * HOUR)
    assert metric_rollups.plan(minutes) == metric_rollups.RollupPlan("metric_rollups_1m", T0, T0 + 24 * HOUR)
    assert metric_rollups.plan(hourly) == metric_rollups.RollupPlan(
        "metric_rollups_1h", T0 + HOUR, T0 + 24 * HOUR
    )
    assert "metric_rollups_1h" in metric_sql.compile_series_query(hourly).points_sql
    # What the rollups cannot answer exactly reads the points.
    assert metric_rollups.plan(query("avg", "value", 90_000, T0, T0 + HOUR)) is None
    assert metric_rollups.plan(query("p95", "value", MINUTE, T0, T0 + HOUR)) is None
    assert metric_rollups.plan(query("max", "value_times_interval", MINUTE, T0, T0 + HOUR)) is None
    assert metric_rollups.plan(query("sum", "counter_increase", MINUTE, T0, T0 + HOUR)) is None
    assert metric_rollups.plan(query("avg", "value", MINUTE, T0 + 1, T0 + MINUTE)) is None


def rollup_rows(path: Path, table: str) -> tuple[int, int]:
    """(rows, units) of a rollup table."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows, units = con.execute(
            f"SELECT count(*), count(DISTINCT (org_id, series_id, time_ms)) FROM {table}"
        ).fetchall()[0]
    return int(rows), int(units)


def test_compaction_merges_each_unit_into_one_row_and_changes_no_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    load(store, random_points(3), 30)
    q = query("avg", "value", 5 * MINUTE, T0 + 1_234, T0 + SPAN)
    before = store.query_series(q, 30).values
    monkeypatch.setattr("sextant.storage.duckdb.metric_tables.COMPACTION_INTERVAL_S", 0.0)
    assert store.has_maintenance
    while store.has_maintenance:
        store.maintain()
    assert_same(store.query_series(q, 30).values, before)
    assert_same(before, from_points(store, q, monkeypatch))
    store.close()
    for _, table in metric_rollups.RESOLUTIONS:
        rows, units = rollup_rows(path, table)
        assert rows == units > 0


def test_retention_drops_the_rollups_of_the_points_it_deletes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    load(store, random_points(5), 5)
    cut = T0 + 10 * HOUR + 30 * MINUTE
    store.delete_points_before(cut)
    q = query("sum", "value", HOUR, T0, T0 + SPAN)
    assert_same(store.query_series(q, 30).values, from_points(store, q, monkeypatch))
    store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        oldest = con.execute("SELECT min(time_ms) FROM metric_rollups_1h").fetchall()[0][0]
    assert oldest == T0 + 10 * HOUR  # the hour the cut falls in, rolled up from the points it keeps


def test_a_store_of_before_rollups_gets_them_for_its_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.duckdb"
    store = DuckDBStore(path)
    load(store, random_points(11), 3)
    store.close()
    # The file as schema version 5 left it: points, no rollup tables.
    with duckdb.connect(str(path)) as con:
        for _, table in metric_rollups.RESOLUTIONS:
            con.execute(f"DROP TABLE {table}")
        con.execute("DELETE FROM schema_migrations WHERE version = 6")
    store = DuckDBStore(path)
    q = query("max", "value", HOUR, T0, T0 + SPAN)
    assert metric_rollups.plan(q) is not None
    assert_same(store.query_series(q, 30).values, from_points(store, q, monkeypatch))
    store.close()
