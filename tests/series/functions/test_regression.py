import itertools
import math
import statistics

import numpy as np
import statsmodels.api as sm

from sextant.series.functions import regression
from tests.series.functions.builders import STEP_MS, assert_cells_close, cells, frame

RNG = np.random.default_rng(11)


def noisy_line(n, slope, intercept, noise, gaps=()):
    row = [intercept + slope * j + float(RNG.normal(0, noise)) for j in range(n)]
    for j in gaps:
        row[j] = None
    return row


def seconds(n):
    return np.arange(n) * STEP_MS / 1000


def test_trend_line_is_the_least_squares_line_at_every_bucket() -> None:
    rows = [noisy_line(50, 0.3, 5, 2, gaps=(3, 4, 20)), noisy_line(50, -1, 0, 0.5), [None] * 50]
    out = regression.trend_line(frame(rows)).values
    x = seconds(50)
    for got, row in zip(out[:2], rows[:2], strict=True):
        present = [j for j, v in enumerate(row) if v is not None]
        slope, intercept = np.polyfit(x[present], [row[j] for j in present], 1)
        np.testing.assert_allclose(got, intercept + slope * x, rtol=1e-9)
    assert cells(out)[2] == [None] * 50


def test_one_point_is_a_constant_and_two_points_a_line_through_them() -> None:
    out = regression.trend_line(frame([[None, 4.0, None], [1.0, None, 5.0]])).values
    assert cells(out) == [[4.0, 4.0, 4.0], [1.0, 3.0, 5.0]]


def test_robust_trend_matches_statsmodels_huber_regression() -> None:
    row = noisy_line(80, 0.05, 10, 1, gaps=(7, 8, 9))
    for j in (15, 40, 41, 70):
        row[j] = 60.0  # wild points
    out = regression.robust_trend(frame([row])).values[0]
    x = seconds(80)
    present = [j for j, v in enumerate(row) if v is not None]
    fit = sm.RLM([row[j] for j in present], sm.add_constant(x[present]), M=sm.robust.norms.HuberT()).fit(
        maxiter=200, tol=1e-12
    )
    np.testing.assert_allclose(out, fit.params[0] + fit.params[1] * x, rtol=1e-6)
    # Least squares is dragged up by the wild points; the robust line stays near the true one.
    ols = regression.trend_line(frame([row])).values[0]
    truth = 10 + 0.05 * np.arange(80)
    assert np.abs(out - truth).max() < 1.0 < np.abs(ols - truth).max()


def test_robust_trend_through_points_mostly_on_a_line() -> None:
    row = [2.0 * j for j in range(10)]
    row[5] = 100.0
    np.testing.assert_allclose(
        regression.robust_trend(frame([row])).values[0], [2.0 * j for j in range(10)], atol=1e-8
    )


def reference_penalty(points):
    steps = [b - a for a, b in itertools.pairwise(points)]
    center = statistics.median(steps)
    sigma = 1.4826 * statistics.median([abs(s - center) for s in steps]) / math.sqrt(2)
    mean = statistics.fmean(points)
    return max(2 * sigma**2 * math.log(len(points)), 1e-12 * (1 + sum((p - mean) ** 2 for p in points)))


def reference_segments(points, penalty):
    """Optimal partitioning by plain dynamic programming over every split (no pruning)."""
    n = len(points)

    def cost(a, b):
        seg = points[a:b]
        mean = sum(seg) / len(seg)
        return sum((p - mean) ** 2 for p in seg)

    best = [0.0] + [math.inf] * n
    start = [0] * (n + 1)
    for end in range(1, n + 1):
        for s in range(end):
            total = best[s] + cost(s, end) + (penalty if s > 0 else 0)
            if total < best[end] - 1e-12:
                best[end], start[end] = total, s
    cuts, end = [], n
    while end > 0:
        end = start[end]
        if end > 0:
            cuts.append(end)
    return sorted(cuts)


def test_piecewise_constant_finds_the_optimal_segmentation() -> None:
    levels = [0.0] * 30 + [6.0] * 25 + [2.0] * 20 + [9.0] * 15
    row = [v + float(RNG.normal(0, 1)) for v in levels]
    row[10] = None
    row[56] = None
    out = regression.piecewise_constant(frame([row])).values[0]
    points = [v for v in row if v is not None]
    cuts = reference_segments(points, reference_penalty(points))
    assert regression.change_points(np.array(points), regression.change_penalty(np.array(points))) == cuts
    want_points = []
    for lo, hi in zip([0, *cuts], [*cuts, len(points)], strict=True):
        want_points += [statistics.fmean(points[lo:hi])] * (hi - lo)
    present = [j for j, v in enumerate(row) if v is not None]
    np.testing.assert_allclose(out[present], want_points)
    # The true level changes are found (the bucket positions of points 30, 55 and 75).
    assert [present[c] for c in cuts] == [30, 55, 75]
    # A null bucket takes the segment of the value before it.
    assert out[10] == out[9] and out[56] == out[55]


def test_piecewise_constant_of_an_exact_step_and_of_a_constant() -> None:
    out = regression.piecewise_constant(frame([[1.0] * 5 + [4.0] * 5, [3.0] * 10])).values
    assert cells(out) == [[1.0] * 5 + [4.0] * 5, [3.0] * 10]


def test_leading_nulls_take_the_first_segment_and_all_null_stays_null() -> None:
    out = regression.piecewise_constant(frame([[None, None, 2.0, 2.0, 2.0], [None] * 5])).values
    assert cells(out) == [[2.0] * 5, [None] * 5]
    assert regression.piecewise_constant(frame([], width=2)).values.shape == (0, 2)
    assert_cells_close(regression.robust_trend(frame([[None, 7.0]])).values, [[7.0, 7.0]])
