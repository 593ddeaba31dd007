import itertools
import statistics

import numpy as np
import pandas as pd
import pytest

from sextant.series.functions import smoothing
from tests.series.functions.builders import assert_cells_close, cells, frame

RNG = np.random.default_rng(7)
NOISY = [float(v) for v in np.round(RNG.normal(10, 3, 40), 3)]
for j in (3, 4, 11, 25, 26, 27):
    NOISY[j] = None  # type: ignore[call-overload]
ROWS = [NOISY, [None] * 40, [None] * 20 + [5.0] + [None] * 19]


def on_points(row, compute):
    """`compute` over the row's non-null values, written back at their places."""
    points = [v for v in row if v is not None]
    results = iter(compute(points)) if points else iter(())
    return [None if v is None else next(results) for v in row]


@pytest.mark.parametrize("span", smoothing.EWMA_SPANS)
def test_ewma_matches_pandas_span_without_adjustment(span: int) -> None:
    def reference(points):
        return pd.Series(points).ewm(span=span, adjust=False).mean().tolist()

    want = [on_points(row, reference) for row in ROWS]
    assert_cells_close(smoothing.ewma(frame(ROWS), span).values, want)


def test_ewma_3_decays_by_half() -> None:
    assert cells(smoothing.ewma(frame([[0.0, 8.0, 8.0]]), 3).values) == [[0.0, 4.0, 6.0]]


@pytest.mark.parametrize("span", smoothing.MEDIAN_SPANS)
def test_median_of_the_last_points(span: int) -> None:
    def reference(points):
        return [statistics.median(points[max(0, i - span + 1) : i + 1]) for i in range(len(points))]

    want = [on_points(row, reference) for row in ROWS]
    assert_cells_close(smoothing.rolling_median(frame(ROWS), span).values, want)


@pytest.mark.parametrize("span", smoothing.ROLLINGAVG_SPANS)
def test_rolling_average_of_the_last_points(span: int) -> None:
    def reference(points):
        return [statistics.fmean(points[max(0, i - span + 1) : i + 1]) for i in range(len(points))]

    want = [on_points(row, reference) for row in ROWS]
    assert_cells_close(smoothing.rolling_average(frame(ROWS), span).values, want)


def pearson_kurtosis(points):
    mean = statistics.fmean(points)
    m2 = statistics.fmean([(p - mean) ** 2 for p in points])
    m4 = statistics.fmean([(p - mean) ** 4 for p in points])
    return m4 / m2**2


def reference_asap_span(points):
    """ASAP by brute force: the least rough moving average whose kurtosis is not below the original's."""

    def roughness(series):
        return statistics.pstdev([b - a for a, b in itertools.pairwise(series)])

    best, best_roughness = 1, roughness(points)
    target = pearson_kurtosis(points)
    for span in range(2, len(points) // 10 + 1):
        smoothed = [statistics.fmean(points[i : i + span]) for i in range(len(points) - span + 1)]
        if max(smoothed) == min(smoothed):
            continue
        r = roughness(smoothed)
        if r < best_roughness and pearson_kurtosis(smoothed) >= target:
            best, best_roughness = span, r
    return best


def test_autosmooth_picks_the_asap_span_and_applies_it_to_every_group() -> None:
    rng = np.random.default_rng(3)
    n = 300
    # A level that rises for a while, under noise: smoothing should take the noise and keep the bump.
    base = np.zeros(n)
    base[140:165] += 8
    rows = [list(base + rng.normal(0, 2, n)), list(base + 1 + rng.normal(0, 2, n))]
    f = frame(rows)
    mean = [(a + b) / 2 for a, b in zip(rows[0], rows[1], strict=True)]
    span = reference_asap_span(mean)
    assert span > 1
    assert smoothing.autosmooth_span(f) == span
    out = smoothing.autosmooth(f)
    np.testing.assert_allclose(out.values, smoothing.rolling_average(f, span).values)
    # Much smoother than the input, and the bump still stands out.
    assert np.std(np.diff(out.values[0])) < np.std(np.diff(f.values[0])) / 5
    assert 140 <= int(np.argmax(out.values[0])) < 165 + span


def test_autosmooth_leaves_flat_short_and_empty_series_alone() -> None:
    assert cells(smoothing.autosmooth(frame([[2.0] * 50])).values) == [[2.0] * 50]
    assert cells(smoothing.autosmooth(frame([[1.0, 5.0, 2.0]])).values) == [[1.0, 5.0, 2.0]]
    assert smoothing.autosmooth(frame([], width=5)).values.shape == (0, 5)
    assert cells(smoothing.autosmooth(frame([[None] * 5])).values) == [[None] * 5]
