import math

import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.functions import arithmetic
from tests.series.functions.builders import STEP_MS, assert_cells_close, cells, frame

ROWS = [
    [1.0, -2.0, None, 4.0, 0.0, 8.0],
    [None, None, None, None, None, None],
    [0.5, None, None, 3.0, -1.5, None],
]


def pointwise(rows, op):
    out = []
    for row in rows:
        new = []
        for v in row:
            if v is None:
                new.append(None)
                continue
            try:
                r = op(v)
            except (ValueError, ZeroDivisionError, OverflowError):
                r = None
            new.append(r if r is not None and math.isfinite(r) else None)
        out.append(new)
    return out


def test_abs_log2_log10_match_pointwise_math() -> None:
    f = frame(ROWS)
    assert_cells_close(arithmetic.absolute(f).values, pointwise(ROWS, abs))
    assert_cells_close(arithmetic.log2(f).values, pointwise(ROWS, math.log2))
    assert_cells_close(arithmetic.log10(f).values, pointwise(ROWS, math.log10))


def test_log_of_zero_and_negatives_is_null_not_infinite() -> None:
    out = arithmetic.log10(frame([[0.0, -1.0, 100.0]])).values
    assert cells(out) == [[None, None, 2.0]]


def test_functions_do_not_mutate_their_input() -> None:
    f = frame(ROWS)
    before = f.values.copy()
    for fn in (arithmetic.absolute, arithmetic.log2, arithmetic.cumsum, arithmetic.integral):
        fn(f)
    np.testing.assert_array_equal(f.values, before)


def test_cumsum_skips_nulls_and_keeps_them_null() -> None:
    want = []
    for row in ROWS:
        total, new = 0.0, []
        for v in row:
            if v is None:
                new.append(None)
            else:
                total += v
                new.append(total)
        want.append(new)
    assert_cells_close(arithmetic.cumsum(frame(ROWS)).values, want)


def test_integral_sums_value_times_seconds_since_previous_point() -> None:
    want = []
    for row in ROWS:
        total, previous, new = 0.0, None, []
        for j, v in enumerate(row):
            if v is None:
                new.append(None)
                continue
            if previous is not None:
                total += v * (j - previous) * STEP_MS / 1000
            previous = j
            new.append(total)
        want.append(new)
    assert_cells_close(arithmetic.integral(frame(ROWS)).values, want)


def test_single_point_and_empty_frame() -> None:
    assert cells(arithmetic.cumsum(frame([[5.0]])).values) == [[5.0]]
    assert cells(arithmetic.integral(frame([[5.0]])).values) == [[0.0]]
    empty = frame([], width=4)
    for fn in (arithmetic.absolute, arithmetic.log2, arithmetic.cumsum, arithmetic.integral):
        out = fn(empty)
        assert out.values.shape == (0, 4)


def test_pow_with_numbers_on_either_side() -> None:
    f = frame([[2.0, -8.0, None, 0.0]])
    squared = arithmetic.power(f, 2)
    assert isinstance(squared, SeriesFrame)
    assert cells(squared.values) == [[4.0, 64.0, None, 0.0]]
    # A negative base to a fractional power and zero to a negative power have no real result.
    assert cells(arithmetic.power(f, 0.5).values) == [[math.sqrt(2), None, None, 0.0]]
    assert cells(arithmetic.power(f, -1).values) == [[0.5, -0.125, None, None]]
    assert cells(arithmetic.power(2, f).values) == [[4.0, 2.0**-8, None, 1.0]]
    assert arithmetic.power(2, 10) == 1024.0
    assert math.isnan(arithmetic.power(0, -1))


def test_pow_between_queries_matches_groups_like_arithmetic() -> None:
    base = frame([[1.0, 2.0], [3.0, None], [4.0, 5.0]], labels=[("a",), ("b",), ("c",)])
    exponent = frame([[2.0, 3.0], [0.5, 1.0]], labels=[("c",), ("a",)])
    out = arithmetic.power(base, exponent)
    assert isinstance(out, SeriesFrame)
    # Each group of the base with the same group of the exponent; "b" has no partner and is dropped.
    got = dict(zip(out.labels, cells(out.values), strict=True))
    assert got == {("a",): [1.0, 2.0], ("c",): [16.0, 125.0]}


def test_pow_of_a_grouped_query_by_an_ungrouped_one_broadcasts() -> None:
    base = frame([[2.0, 3.0], [4.0, 5.0]])
    exponent = frame([[2.0, 0.0]], group_by=())
    out = arithmetic.power(base, exponent)
    assert isinstance(out, SeriesFrame)
    assert out.labels == base.labels
    assert cells(out.values) == [[4.0, 1.0], [16.0, 1.0]]


def test_pow_between_finer_and_coarser_groups_pairs_on_shared_keys() -> None:
    fine = frame(
        [[2.0], [3.0], [4.0]],
        labels=[("prod", "a"), ("prod", "b"), ("dev", "c")],
        group_by=("env", "host"),
    )
    coarse = frame([[2.0], [3.0]], labels=[("dev",), ("prod",)], group_by=("env",))
    out = arithmetic.power(fine, coarse)
    assert isinstance(out, SeriesFrame)
    got = dict(zip(out.labels, cells(out.values), strict=True))
    assert got == {("prod", "a"): [8.0], ("prod", "b"): [27.0], ("dev", "c"): [16.0]}
    reverse = arithmetic.power(coarse, fine)
    assert isinstance(reverse, SeriesFrame)
    assert dict(zip(reverse.labels, cells(reverse.values), strict=True)) == {
        ("prod", "a"): [9.0],
        ("prod", "b"): [27.0],
        ("dev", "c"): [16.0],
    }


def test_pow_of_frames_over_different_buckets_is_refused() -> None:
    with pytest.raises(ValueError, match="different buckets"):
        arithmetic.power(frame([[1.0, 2.0]]), frame([[1.0]]))
