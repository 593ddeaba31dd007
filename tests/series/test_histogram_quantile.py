"""histogram_quantiles against a plain, point-by-point reading of Prometheus' bucket interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.series.histogram_quantile import histogram_quantiles


def reference(q: float, bounds: list[float], counts: list[float]) -> float:
    """Walk the buckets until the cumulative count reaches the rank; interpolate inside that bucket."""
    total = sum(counts)
    if total <= 0:
        return float("nan")
    if not bounds:
        return 0.0
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if seen + count >= rank:
            if i == len(bounds):
                return bounds[-1]
            low = bounds[i - 1] if i else min(0.0, bounds[0])
            high = bounds[i]
            return high if count == 0 else low + (high - low) * (rank - seen) / count
        seen += count
    return bounds[-1]


def test_interpolates_inside_the_bucket_holding_the_rank() -> None:
    # 10 values in (0, 1], 30 in (1, 5], 10 above 5: the median's rank 25 is 15 into the second bucket.
    got = histogram_quantiles(0.5, [1.0, 5.0], np.array([[10.0, 30.0, 10.0]]))
    assert got[0] == pytest.approx(1.0 + 4.0 * 15 / 30)


def test_overflow_bucket_is_the_last_bound() -> None:
    got = histogram_quantiles(0.99, [1.0, 5.0], np.array([[1.0, 1.0, 98.0]]))
    assert got[0] == 5.0


def test_first_bucket_starts_at_zero_or_a_negative_bound() -> None:
    assert histogram_quantiles(0.5, [4.0], np.array([[10.0, 0.0]]))[0] == pytest.approx(2.0)
    # A negative first bound is its own lower edge: the first bucket has no width.
    assert histogram_quantiles(0.5, [-4.0, 0.0], np.array([[10.0, 0.0, 0.0]]))[0] == -4.0


def test_empty_rows_have_no_quantile_and_no_bounds_gives_zero() -> None:
    got = histogram_quantiles(0.5, [1.0], np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert np.isnan(got[0]) and got[1] == pytest.approx(1.0)
    assert list(histogram_quantiles(0.5, [], np.array([[3.0], [0.0]]))[:1]) == [0.0]


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.01, 0.99),
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=6, unique=True),
    st.data(),
)
def test_matches_the_reference(q: float, raw_bounds: list[float], data: st.DataObject) -> None:
    bounds = sorted(raw_bounds)
    rows = data.draw(
        st.lists(
            st.lists(st.integers(0, 50).map(float), min_size=len(bounds) + 1, max_size=len(bounds) + 1),
            min_size=1,
            max_size=5,
        )
    )
    got = histogram_quantiles(q, bounds, np.array(rows))
    for row, value in zip(rows, got, strict=True):
        expected = reference(q, bounds, row)
        if np.isnan(expected):
            assert np.isnan(value)
        else:
            assert value == pytest.approx(expected)
