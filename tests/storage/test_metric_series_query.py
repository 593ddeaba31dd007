"""SeriesQuery on DuckDB: tag filters against an independent matcher, rollups against plain Python."""

from __future__ import annotations

import contextlib
import fnmatch
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.core.metrics import MetricKind, PointBatch, normalize_tags
from sextant.core.timeutil import now_ms
from sextant.query.metrics import (
    AllTags,
    SeriesQuery,
    TagAnd,
    TagCompare,
    TagFilter,
    TagGlob,
    TagNot,
    TagOr,
    TagRegex,
    TimeAggregation,
)
from sextant.storage.duckdb.store import DuckDBStore

T0 = (now_ms() // 3_600_000 - 2) * 3_600_000  # an hour boundary two hours back
TAG_SETS = [
    ["host:web-1", "env:prod", "size:10"],
    ["host:web-2", "env:prod", "size:2.5"],
    ["host:db-1", "env:staging", "size:big"],
    ["host:db-2", "canary"],
    ["env:prod", "region:us-east-1"],
    ["host:web_3", "env:dev%"],
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("series") / "s.duckdb")
    batch = PointBatch()
    for i, tags in enumerate(TAG_SETS):
        sid = batch.add_series(1, "cpu", normalize_tags(tags))
        # Points every 10 s for 10 minutes, value i*100 + minute-index.
        times = [T0 + k * 10_000 for k in range(60)]
        batch.add_values(
            org_id=1,
            series_id=sid,
            kind=MetricKind.GAUGE,
            times_ms=times,
            values=[i * 100 + k for k in range(60)],
        )
    other = batch.add_series(2, "cpu", ("host:web-1",))
    batch.add_values(org_id=2, series_id=other, kind=MetricKind.GAUGE, times_ms=[T0], values=[999.0])
    rate = batch.add_series(1, "reqs", ())
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


def matches(node: TagFilter, tags: list[str]) -> bool:
    """The rules of query/metrics.py, written independently of the SQL."""
    if isinstance(node, AllTags):
        return True
    if isinstance(node, TagGlob):
        return any(fnmatch.fnmatchcase(t, node.pattern.replace("[", "[[]").replace("?", "[?]")) for t in tags)
    values = [
        t.split(":", 1)[1] for t in tags if ":" in t and t.split(":", 1)[0] == getattr(node, "key", None)
    ]
    if isinstance(node, TagRegex):
        return any(re.fullmatch(node.regex, v) for v in values)
    if isinstance(node, TagCompare):
        nums = []
        for v in values:
            with contextlib.suppress(ValueError):
                nums.append(float(v))
        ops = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
        return any(ops[node.op](n, node.value) for n in nums)
    if isinstance(node, TagNot):
        return not matches(node.operand, tags)
    if isinstance(node, TagAnd):
        return all(matches(op, tags) for op in node.operands)
    assert isinstance(node, TagOr)
    return any(matches(op, tags) for op in node.operands)


def selected(store: DuckDBStore, node: TagFilter, **extra: object) -> list[tuple[str, ...]]:
    query = SeriesQuery(1, "cpu", node, T0, T0 + 600_000, 60_000, **extra)  # type: ignore[arg-type]
    return sorted(store.query_series(query, 5.0).tags)


LEAVES = st.sampled_from(
    [
        TagGlob("env:prod"),
        TagGlob("host:web-*"),
        TagGlob("*east*"),
        TagGlob("canary"),
        TagGlob("host:*"),
        TagGlob("env:dev%"),
        TagGlob("host:web_*"),
        TagGlob("host:web%"),
        TagRegex("host", "db-[0-9]"),
        TagRegex("host", "web"),
        TagCompare("size", ">=", 2.5),
        TagCompare("size", "<", 5),
        AllTags(),
    ]
)
FILTERS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.builds(lambda ops: TagAnd(tuple(ops)), st.lists(children, min_size=0, max_size=3)),
        st.builds(lambda ops: TagOr(tuple(ops)), st.lists(children, min_size=0, max_size=3)),
        st.builds(TagNot, children),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(node=FILTERS)
def test_tag_filters_select_what_the_independent_matcher_selects(store: DuckDBStore, node: TagFilter) -> None:
    expected = sorted(tuple(normalize_tags(t)) for t in TAG_SETS if matches(node, list(normalize_tags(t))))
    assert selected(store, node) == expected


def test_like_special_characters_are_literal(store: DuckDBStore) -> None:
    assert selected(store, TagGlob("env:dev%")) == [tuple(normalize_tags(TAG_SETS[5]))]
    assert selected(store, TagGlob("host:web_*")) == [tuple(normalize_tags(TAG_SETS[5]))]
    assert selected(store, TagGlob("host:web?1")) == []


@pytest.mark.parametrize("aggregation", ["avg", "sum", "min", "max", "count", "last"])
def test_rollups_per_series_and_bucket_equal_plain_python(
    store: DuckDBStore, aggregation: TimeAggregation
) -> None:
    frame = store.query_series(
        SeriesQuery(
            1, "cpu", TagGlob("host:web-*"), T0, T0 + 600_000, 120_000, aggregation, group_by=("host", "env")
        ),
        5.0,
    )
    assert list(frame.times) == [T0 + k * 120_000 for k in range(5)]
    assert sorted(frame.labels) == [("web-1", "prod"), ("web-2", "prod")]  # in series-id order
    for row, labels in enumerate(frame.labels):
        i = 0 if labels[0] == "web-1" else 1
        buckets: dict[int, list[float]] = defaultdict(list)
        for k in range(60):
            buckets[(k * 10_000) // 120_000].append(i * 100 + k)
        for j in range(5):
            vals = buckets[j]
            want = {
                "avg": sum(vals) / len(vals),
                "sum": sum(vals),
                "min": min(vals),
                "max": max(vals),
                "count": len(vals),
                "last": vals[-1],
            }[aggregation]
            assert math.isclose(frame.values[row, j], want)
    assert frame.kind == "gauge"


def test_buckets_without_points_are_nan_and_labels_are_none_when_a_key_is_missing(store: DuckDBStore) -> None:
    frame = store.query_series(
        SeriesQuery(
            1, "cpu", TagGlob("region:*"), T0 - 120_000, T0 + 120_000, 60_000, group_by=("host", "region")
        ),
        5.0,
    )
    assert frame.labels == [(None, "us-east-1")]
    assert np.isnan(frame.values[0, :2]).all() and not np.isnan(frame.values[0, 2:]).any()


def test_other_organizations_and_metrics_are_never_selected(store: DuckDBStore) -> None:
    frame = store.query_series(SeriesQuery(2, "cpu", AllTags(), T0, T0 + 600_000, 600_000, "sum"), 5.0)
    assert frame.values.tolist() == [[999.0]]
    assert len(store.query_series(SeriesQuery(3, "cpu", AllTags(), T0, T0 + 600_000, 600_000), 5.0)) == 0
    assert len(store.query_series(SeriesQuery(1, "nope", AllTags(), T0, T0 + 600_000, 600_000), 5.0)) == 0


def test_rate_points_as_counts(store: DuckDBStore) -> None:
    frame = store.query_series(
        SeriesQuery(1, "reqs", AllTags(), T0, T0 + 60_000, 60_000, "sum", "value_times_interval"), 5.0
    )
    assert frame.values.tolist() == [[50.0]] and frame.kind == "rate"


def test_distributions_combine_their_samples_per_group_and_bucket(tmp_path: Path) -> None:
    """avg, sum, count, min, max and percentiles over every raw value of a group, against plain Python."""
    store = DuckDBStore(tmp_path / "d.duckdb")
    batch = PointBatch()
    samples: dict[tuple[str, int], list[float]] = defaultdict(list)
    for host, role in (("a", "web"), ("b", "web"), ("c", "db")):
        sid = batch.add_series(1, "latency", normalize_tags([f"host:{host}", f"role:{role}"]))
        for k in range(6):
            values = [float((k * 7 + i * 3 + ord(host)) % 23) for i in range(1 + k % 4)]
            t = T0 + k * 20_000
            batch.add(
                org_id=1,
                series_id=sid,
                time_ms=t,
                kind=MetricKind.DISTRIBUTION,
                value=sum(values),
                count=len(values),
                min=min(values),
                max=max(values),
                samples=values,
            )
            samples[(role, (t - T0) // 60_000)].extend(values)
    store.append_points(batch)

    def quantile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    expected = {
        "avg": lambda v: sum(v) / len(v),
        "sum": sum,
        "count": len,
        "min": min,
        "max": max,
        "p50": lambda v: quantile(v, 0.5),
        "p99.9": lambda v: quantile(v, 0.999),
    }
    for how, compute in expected.items():
        query = SeriesQuery(
            1, "latency", AllTags(), T0, T0 + 120_000, 60_000, group_by=("role",), samples=how
        )
        frame = store.query_series(query, 5.0)
        assert sorted(frame.labels) == [("db",), ("web",)]
        for row, (role,) in enumerate(frame.labels):
            got = frame.values[row].tolist()
            want = [float(compute(samples[(role, j)])) for j in range(2)]  # type: ignore[operator]
            assert got == pytest.approx(want), how
    store.close()
