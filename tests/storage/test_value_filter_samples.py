"""`SeriesQuery.value_filter` on DuckDB: distribution samples counted per group and bucket only where they
pass the comparison, against plain Python."""

from __future__ import annotations

import operator
from collections import defaultdict
from pathlib import Path

import pytest

from sextant.core.metrics import MetricKind, PointBatch, normalize_tags
from sextant.core.timeutil import now_ms
from sextant.query.metrics import AllTags, SeriesQuery, TagGlob
from sextant.storage.duckdb.store import DuckDBStore

T0 = (now_ms() // 3_600_000 - 2) * 3_600_000
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def test_value_filters_count_the_passing_samples_of_each_group_and_bucket(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "v.duckdb")
    batch = PointBatch()
    samples: dict[tuple[str, int], list[float]] = defaultdict(list)
    for host, role in (("a", "web"), ("b", "web"), ("c", "db")):
        sid = batch.add_series(1, "latency", normalize_tags([f"host:{host}", f"role:{role}"]))
        for k in range(6):
            values = [float((k * 7 + i * 3 + ord(host)) % 23) / 10 for i in range(1 + k % 4)]
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
    for op, compare in OPS.items():
        for threshold in (0.5, 1.0, 1.3, 5.0):
            query = SeriesQuery(
                1,
                "latency",
                AllTags(),
                T0,
                T0 + 180_000,
                60_000,
                group_by=("role",),
                samples="count",
                value_filter=(op, threshold),  # type: ignore[arg-type]
            )
            frame = store.query_series(query, 5.0)
            assert frame.labels == [("db",), ("web",)]
            for row, (role,) in enumerate(frame.labels):
                want = [float(sum(compare(v, threshold) for v in samples[(role, j)])) for j in range(2)]
                # The third minute has no points at all: null, not 0.
                assert frame.values[row, :2].tolist() == want, (op, threshold, role)
                assert frame.values[row, 2] != frame.values[row, 2]
    # A filter on the series still applies, and 0 is a count, not a missing value.
    query = SeriesQuery(
        1,
        "latency",
        TagGlob("host:c"),
        T0,
        T0 + 120_000,
        60_000,
        samples="count",
        value_filter=("<", -1.0),
    )
    assert store.query_series(query, 5.0).values.tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="samples='count'"):
        store.query_series(
            SeriesQuery(
                1, "latency", AllTags(), T0, T0 + 60_000, 60_000, samples="avg", value_filter=("<", 1)
            ),
            5.0,
        )
    store.close()
