"""The store reads PostHog's metric queries need: counter increases per point, buckets from an origin
(Monday weeks), and histogram bucket-count increases; each checked against plain Python."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pytest

from sextant.core.metrics import MetricKind, PointBatch, Temporality, normalize_tags
from sextant.core.timeutil import DAY_MS, now_ms
from sextant.query.metrics import AllTags, SeriesQuery, TagGlob
from sextant.series.buckets import bucket_times
from sextant.storage.duckdb.store import DuckDBStore

MINUTE = 60_000
T0 = (now_ms() // 3_600_000 - 3) * 3_600_000
WEEK = 7 * DAY_MS
MONDAY = 4 * DAY_MS

# Cumulative counter with a reset after the 4th point; a delta counter; a Datadog rate (per second).
CUMULATIVE = [(T0 + 10_000 * k, v) for k, v in enumerate([5.0, 8.0, 8.0, 20.0, 3.0, 10.0, 25.0])]
DELTA = [(T0 + 15_000 * k, v) for k, v in enumerate([1.0, 4.0, 2.0, 7.0])]
RATE = [(T0 + 20_000 * k, v) for k, v in enumerate([0.5, 1.5])]
BOUNDS = [1.0, 10.0]
# Cumulative histogram: counts grow, then reset at the 4th point, then grow again.
HISTOGRAM = [
    (T0, [1, 2, 0]),
    (T0 + 20_000, [2, 5, 1]),
    (T0 + 70_000, [4, 5, 3]),
    (T0 + 80_000, [1, 0, 0]),
    (T0 + 130_000, [3, 1, 2]),
]
DELTA_HISTOGRAM = [(T0 + 5_000, [1, 1, 1]), (T0 + 65_000, [0, 2, 0])]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("posthog") / "s.duckdb")
    batch = PointBatch()
    for name, points, kind, temporality, interval in [
        ("c", CUMULATIVE, MetricKind.COUNT, Temporality.CUMULATIVE, None),
        ("c", DELTA, MetricKind.COUNT, Temporality.DELTA, None),
        ("c", RATE, MetricKind.RATE, None, 10_000),
    ]:
        sid = batch.add_series(1, "reqs", normalize_tags([f"series:{name}{len(points)}"]))
        for t, v in points:
            batch.add(
                org_id=1,
                series_id=sid,
                time_ms=t,
                kind=kind,
                value=v,
                temporality=temporality,
                interval_ms=interval,
            )
    for tags, points, temporality in [
        (["shard:a"], HISTOGRAM, Temporality.CUMULATIVE),
        (["shard:b"], DELTA_HISTOGRAM, Temporality.DELTA),
    ]:
        sid = batch.add_series(1, "latency", normalize_tags(tags))
        for t, counts in points:
            batch.add(
                org_id=1,
                series_id=sid,
                time_ms=t,
                kind=MetricKind.HISTOGRAM,
                value=0.0,
                count=sum(counts),
                bounds=BOUNDS,
                bucket_counts=counts,
                temporality=temporality,
            )
    other = batch.add_series(2, "latency", ("shard:a",))
    batch.add(
        org_id=2,
        series_id=other,
        time_ms=T0,
        kind=MetricKind.HISTOGRAM,
        value=0.0,
        count=9,
        bounds=BOUNDS,
        bucket_counts=[9, 0, 0],
        temporality=Temporality.DELTA,
    )
    # Daily gauge points over three weeks, for Monday-aligned weeks.
    gauge = batch.add_series(1, "daily", ())
    start = (now_ms() // DAY_MS - 21) * DAY_MS
    batch.add_values(
        org_id=1,
        series_id=gauge,
        kind=MetricKind.GAUGE,
        times_ms=[start + d * DAY_MS for d in range(21)],
        values=[float(d) for d in range(21)],
    )
    dist = batch.add_series(1, "daily_dist", ())
    for d in range(21):
        batch.add(
            org_id=1,
            series_id=dist,
            time_ms=start + d * DAY_MS,
            kind=MetricKind.DISTRIBUTION,
            value=float(d),
            count=1,
            min=float(d),
            max=float(d),
            samples=[float(d)],
        )
    opened.append_points(batch)
    yield opened
    opened.close()


def increases(points: list[tuple[int, float]], kind: str) -> list[tuple[int, float]]:
    """Each point's increase, by the rules of PointValue "counter_increase"."""
    out = []
    previous = None
    for t, v in points:
        if kind == "delta":
            out.append((t, v))
        elif kind == "rate":
            out.append((t, v * 10.0))
        elif previous is None:
            out.append((t, 0.0))
        else:
            out.append((t, v - previous if v >= previous else v))
        previous = v
    return out


def test_counter_increase_per_series_and_bucket(store: DuckDBStore) -> None:
    step = 30_000
    query = SeriesQuery(
        org_id=1,
        metric="reqs",
        filter=AllTags(),
        start_ms=T0,
        end_ms=T0 + 10 * MINUTE,
        step_ms=step,
        time_aggregation="sum",
        point_value="counter_increase",
    )
    frame = store.query_series(query, 10)
    expected_by_tag = {
        f"series:c{len(CUMULATIVE)}": increases(CUMULATIVE, "cumulative"),
        f"series:c{len(DELTA)}": increases(DELTA, "delta"),
        f"series:c{len(RATE)}": increases(RATE, "rate"),
    }
    assert sorted(t[0] for t in frame.tags) == sorted(expected_by_tag)
    for row, tags in enumerate(frame.tags):
        sums: dict[int, float] = defaultdict(float)
        for t, v in expected_by_tag[tags[0]]:
            sums[t // step * step] += v
        got = {
            int(t): float(v) for t, v in zip(frame.times, frame.values[row], strict=True) if not np.isnan(v)
        }
        assert got == pytest.approx(dict(sums))


def test_counter_increase_starts_again_at_the_range_start(store: DuckDBStore) -> None:
    # The first point inside the range has nothing before it in the range: it contributes 0.
    query = SeriesQuery(
        org_id=1,
        metric="reqs",
        filter=TagGlob(f"series:c{len(CUMULATIVE)}"),
        start_ms=CUMULATIVE[3][0],
        end_ms=T0 + 2 * MINUTE,
        step_ms=MINUTE,
        time_aggregation="sum",
        point_value="counter_increase",
    )
    frame = store.query_series(query, 10)
    assert np.nansum(frame.values) == pytest.approx(
        sum(v for _, v in increases(CUMULATIVE[3:], "cumulative"))
    )


def test_weeks_from_an_origin_start_on_mondays(store: DuckDBStore) -> None:
    start, end = now_ms() - 22 * DAY_MS, now_ms()
    query = SeriesQuery(
        org_id=1,
        metric="daily",
        filter=AllTags(),
        start_ms=start,
        end_ms=end,
        step_ms=WEEK,
        time_aggregation="sum",
        bucket_origin_ms=MONDAY,
    )
    frame = store.query_series(query, 10)
    assert all(dt.datetime.fromtimestamp(t / 1000, dt.UTC).weekday() == 0 for t in frame.times)
    assert list(frame.times) == list(bucket_times(start, end, WEEK, MONDAY))
    first = (now_ms() // DAY_MS - 21) * DAY_MS
    sums: dict[int, float] = defaultdict(float)
    for d in range(21):
        t = first + d * DAY_MS
        if t >= start:
            sums[(t - MONDAY) // WEEK * WEEK + MONDAY] += float(d)
    got = {int(t): float(v) for t, v in zip(frame.times, frame.values[0], strict=True) if not np.isnan(v)}
    assert got == sums
    # The distribution path buckets the same way.
    samples = store.query_series(dataclasses.replace(query, metric="daily_dist", samples="sum"), 10)
    assert list(samples.times) == list(frame.times)
    got = {int(t): float(v) for t, v in zip(samples.times, samples.values[0], strict=True) if not np.isnan(v)}
    assert got == sums


def histogram_increases(points: list[tuple[int, list[int]]], delta: bool) -> list[tuple[int, list[float]]]:
    out = []
    previous: list[int] | None = None
    for t, counts in points:
        if delta:
            out.append((t, [float(c) for c in counts]))
        elif previous is None:
            out.append((t, [0.0] * len(counts)))
        elif all(c >= p for c, p in zip(counts, previous, strict=True)):
            out.append((t, [float(c - p) for c, p in zip(counts, previous, strict=True)]))
        else:
            out.append((t, [float(c) for c in counts]))
        previous = counts
    return out


def test_histogram_bucket_increases(store: DuckDBStore) -> None:
    step = MINUTE
    query = SeriesQuery(
        org_id=1, metric="latency", filter=AllTags(), start_ms=T0, end_ms=T0 + 5 * MINUTE, step_ms=step
    )
    table = store.query_histogram_buckets(query, 10)
    got: dict[tuple[str, int], list[float]] = {}
    for row in table.to_pylist():
        assert row["bounds"] == BOUNDS
        got[(row["tags"][0], row["bucket"])] = row["counts"]
    expected: dict[tuple[str, int], list[float]] = {}
    for tag, points, delta in [("shard:a", HISTOGRAM, False), ("shard:b", DELTA_HISTOGRAM, True)]:
        for t, counts in histogram_increases(points, delta):
            key = (tag, t // step * step)
            expected[key] = [a + b for a, b in zip(expected.get(key, [0.0] * 3), counts, strict=True)]
    assert got == expected
    # Another organization's histogram is not among them.
    assert {k[0] for k in got} == {"shard:a", "shard:b"}


def test_histogram_buckets_follow_filter_and_origin(store: DuckDBStore) -> None:
    query = SeriesQuery(
        org_id=1,
        metric="latency",
        filter=TagGlob("shard:b"),
        start_ms=T0,
        end_ms=T0 + 5 * MINUTE,
        step_ms=WEEK,
        bucket_origin_ms=MONDAY,
    )
    rows = store.query_histogram_buckets(query, 10).to_pylist()
    assert [(r["tags"], r["counts"]) for r in rows] == [(["shard:b"], [1.0, 3.0, 1.0])]
    assert rows[0]["bucket"] == (T0 - MONDAY) // WEEK * WEEK + MONDAY


def test_no_histogram_points_is_an_empty_table(store: DuckDBStore) -> None:
    query = SeriesQuery(
        org_id=1, metric="reqs", filter=AllTags(), start_ms=T0, end_ms=T0 + MINUTE, step_ms=MINUTE
    )
    table = store.query_histogram_buckets(query, 10)
    assert table.num_rows == 0
    assert table.column_names == ["series_id", "tags", "bucket", "bounds", "counts"]
