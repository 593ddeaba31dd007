"""Percentile time aggregations ("p50", "p95", "p99.9") and `pool_groups` on DuckDB, against numpy and
plain Python over the same points."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pytest

from sextant.core.metrics import MetricKind, PointBatch, normalize_tags
from sextant.core.timeutil import now_ms
from sextant.query.metrics import AllTags, SeriesQuery, TagGlob, time_percentile
from sextant.storage.duckdb.store import DuckDBStore

T0 = (now_ms() // 3_600_000 - 2) * 3_600_000
STEP = 60_000
# Three series of two hosts; irregular values so that percentiles interpolate between points.
SERIES = {
    ("host:a", "cpu:0"): [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0, 8.0],
    ("host:a", "cpu:1"): [9.0, 7.0, 9.0, 3.0, 2.0, 3.0, 8.0, 4.0, 6.0, 2.0, 6.0, 4.0],
    ("host:b", "cpu:0"): [0.5, 0.25, 8.0, 16.0, 1.0, 2.0, 4.0, 32.0, 64.0, 0.0, 1.5, 2.5],
}
# Points every 15 s: four per one-minute bucket, three buckets.
TIMES = [T0 + k * 15_000 for k in range(12)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("pooled") / "s.duckdb")
    batch = PointBatch()
    for tags, values in SERIES.items():
        sid = batch.add_series(1, "load", normalize_tags(tags))
        batch.add_values(org_id=1, series_id=sid, kind=MetricKind.GAUGE, times_ms=TIMES, values=values)
    rate = batch.add_series(1, "reqs", ("host:a",))
    batch.add_values(
        org_id=1,
        series_id=rate,
        kind=MetricKind.RATE,
        times_ms=[T0, T0 + 10_000],
        values=[2.0, 3.0],
        interval_ms=10_000,
    )
    opened.append_points(batch)
    yield opened
    opened.close()


def _buckets(values: list[float]) -> list[list[float]]:
    return [values[i : i + 4] for i in range(0, 12, 4)]


@pytest.mark.parametrize("percentile", ["p0", "p50", "p95", "p99.9", "p100"])
def test_percentile_per_series_and_bucket_equals_numpy(store: DuckDBStore, percentile: str) -> None:
    query = SeriesQuery(1, "load", AllTags(), T0, T0 + 3 * STEP, STEP, percentile)
    frame = store.query_series(query, 5.0)
    q = float(percentile[1:])
    for row, tags in enumerate(frame.tags):
        want = [np.percentile(b, q) for b in _buckets(SERIES[tuple(sorted(tags, reverse=True))])]
        assert np.allclose(frame.values[row], want), (tags, frame.values[row], want)


POOLED = {
    "avg": lambda vs: sum(vs) / len(vs),
    "sum": sum,
    "min": min,
    "max": max,
    "count": len,
    "p50": lambda vs: float(np.percentile(vs, 50)),
    "p90": lambda vs: float(np.percentile(vs, 90)),
}


@pytest.mark.parametrize("aggregation", sorted(POOLED))
def test_pooled_groups_aggregate_every_point_of_the_group(store: DuckDBStore, aggregation: str) -> None:
    query = SeriesQuery(
        1, "load", AllTags(), T0, T0 + 3 * STEP, STEP, aggregation, group_by=("host",), pool_groups=True
    )
    frame = store.query_series(query, 5.0)
    assert frame.labels == [("a",), ("b",)]
    assert frame.tags == []
    by_host: dict[str, list[list[float]]] = defaultdict(lambda: [[], [], []])
    for tags, values in SERIES.items():
        for j, bucket in enumerate(_buckets(values)):
            by_host[tags[0].split(":")[1]][j].extend(bucket)
    for row, (host,) in enumerate(frame.labels):
        assert host is not None
        want = [POOLED[aggregation](b) for b in by_host[host]]
        assert np.allclose(frame.values[row], want), (host, frame.values[row], want)


def test_pooled_without_group_by_is_one_series_and_respects_the_filter(store: DuckDBStore) -> None:
    everything = SeriesQuery(1, "load", AllTags(), T0, T0 + 3 * STEP, 3 * STEP, "max", pool_groups=True)
    assert store.query_series(everything, 5.0).values.tolist() == [[64.0]]
    host_a = SeriesQuery(1, "load", TagGlob("host:a"), T0, T0 + 3 * STEP, 3 * STEP, "p50", pool_groups=True)
    both = SERIES[("host:a", "cpu:0")] + SERIES[("host:a", "cpu:1")]
    assert math.isclose(store.query_series(host_a, 5.0).values[0, 0], float(np.median(both)))


def test_pooled_empty_buckets_are_nan_and_groups_without_points_are_absent(store: DuckDBStore) -> None:
    query = SeriesQuery(
        1, "load", AllTags(), T0 - STEP, T0 + STEP, STEP, "sum", group_by=("host",), pool_groups=True
    )
    frame = store.query_series(query, 5.0)
    assert frame.labels == [("a",), ("b",)]
    assert np.isnan(frame.values[:, 0]).all() and not np.isnan(frame.values[:, 1]).any()
    later = SeriesQuery(1, "load", AllTags(), T0 + 3_600_000, T0 + 3_660_000, STEP, pool_groups=True)
    assert len(store.query_series(later, 5.0)) == 0


def test_pooled_rates_as_counts(store: DuckDBStore) -> None:
    query = SeriesQuery(
        1, "reqs", AllTags(), T0, T0 + STEP, STEP, "sum", "value_times_interval", pool_groups=True
    )
    assert store.query_series(query, 5.0).values.tolist() == [[50.0]]


def test_time_percentile_reads_the_fraction_and_refuses_the_rest() -> None:
    assert time_percentile("avg") is None
    assert time_percentile("p95") == 0.95
    assert time_percentile("p99.9") == pytest.approx(0.999)
    for bad in ("p101", "median", "p", "p-1", "95", "P95"):
        with pytest.raises(ValueError, match="unknown time aggregation"):
            time_percentile(bad)
