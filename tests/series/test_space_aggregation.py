"""Space aggregation and interpolation against plain-Python computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.space_aggregation import aggregate_groups, interpolate_linear

NAN = float("nan")
TIMES = np.arange(0, 600_000, 60_000, dtype=np.int64)


def frame(
    rows: list[list[float]], labels: list[tuple[str | None, ...]], group_by: tuple[str, ...]
) -> SeriesFrame:
    return SeriesFrame(TIMES[: len(rows[0])], np.array(rows, dtype=float), group_by, labels, 60_000)


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y) for x, y in zip(a, b, strict=True)
    )


def test_interpolation_fills_short_gaps_on_the_line_and_leaves_long_ones() -> None:
    values = np.array([[1.0, NAN, NAN, 4.0, NAN, NAN, NAN, NAN, NAN, NAN]])
    values[0, 9] = 10.0
    out = interpolate_linear(values, TIMES, 300_000)
    # 0 -> 3 is 3 minutes: filled at 2 and 3; 3 -> 9 is 6 minutes: left alone.
    assert same(out[0].tolist(), [1, 2, 3, 4, NAN, NAN, NAN, NAN, NAN, 10])
    assert np.isnan(values[0, 1])  # the input is not changed


def test_leading_and_trailing_nulls_stay_null() -> None:
    out = interpolate_linear(np.array([[NAN, 1.0, NAN, 3.0, NAN]]), TIMES[:5], 300_000)
    assert same(out[0].tolist(), [NAN, 1, 2, 3, NAN])


@pytest.mark.parametrize("how", ["avg", "sum", "min", "max", "count"])
def test_groups_combine_bucket_by_bucket_ignoring_nulls(how: str) -> None:
    rows = [[1.0, NAN, 3.0], [5.0, NAN, NAN], [2.0, 2.0, NAN], [NAN, NAN, NAN]]
    labels: list[tuple[str | None, ...]] = [("a",), ("a",), ("b",), (None,)]
    out = aggregate_groups(frame(rows, labels, ("host",)), how)  # type: ignore[arg-type]
    assert out.labels == [("a",), ("b",), (None,)]  # sorted, missing last

    def reduce(vals: list[float]) -> float:
        present = [v for v in vals if not math.isnan(v)]
        if not present:
            return NAN
        return {
            "avg": sum(present) / len(present),
            "sum": sum(present),
            "min": min(present),
            "max": max(present),
            "count": len(present),
        }[how]

    for i, members in enumerate([[0, 1], [2], [3]]):
        want = [reduce([rows[m][j] for m in members]) for j in range(3)]
        assert same(out.values[i].tolist(), want)


@pytest.mark.parametrize("how", ["avg", "sum", "min", "max", "count"])
def test_one_series_per_group_comes_out_sorted_as_it_is(how: str) -> None:
    rows = [[3.0, NAN], [1.0, 2.0]]
    out = aggregate_groups(frame(rows, [("b",), ("a",)], ("host",)), how)  # type: ignore[arg-type]
    assert out.labels == [("a",), ("b",)]
    expected = [[1.0, 1.0], [1.0, NAN]] if how == "count" else [[1.0, 2.0], [3.0, NAN]]
    assert all(same(out.values[i].tolist(), expected[i]) for i in range(2))
