"""Smoothing: ewma_N, median_N, rollingavg_N and autosmooth.

Spans count data points, not buckets ("median_3 uses the last 3 data points"): each is computed over a
series' non-null values in order, and a null bucket stays null.

- `ewma_N` (N = 3, 5, 7, 10, 20): s_0 = v_0, s_i = alpha * v_i + (1 - alpha) * s_{i-1} with
  alpha = 2 / (N + 1) (Datadog's old internals: ewma_3 decays by 1/2, ewma_10 by 2/11; pandas'
  `ewm(span=N, adjust=False)`).
- `median_N` (N = 3, 5, 7, 9) and `rollingavg_N` (N = 5, 13, 21, 29): the median / mean of the point and the
  N - 1 before it (fewer at the start of the window).
- `autosmooth`: a trailing moving average whose span is chosen the way ASAP does it (Rong & Bailis,
  "ASAP: Prioritizing Attention via Time Series Smoothing", VLDB 2017): among spans 1 … n/10 points, the
  one whose smoothed series is least rough (smallest standard deviation of its first differences) while
  its kurtosis stays at least the original's, so that spikes and level shifts stay visible while noise goes.
  One span serves every group of the query, chosen on the mean of the groups at each bucket (Datadog:
  "the same span for all groups").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal, stats

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray, map_present, row_medians

EWMA_SPANS = (3, 5, 7, 10, 20)
MEDIAN_SPANS = (3, 5, 7, 9)
ROLLINGAVG_SPANS = (5, 13, 21, 29)


def ewma(frame: SeriesFrame, span: int) -> SeriesFrame:
    alpha = 2.0 / (span + 1)

    def smooth(points: FloatArray) -> FloatArray:
        # y[i] = alpha x[i] + (1 - alpha) y[i-1], started so that y[0] = x[0].
        out, _ = signal.lfilter([alpha], [1.0, alpha - 1.0], points, zi=[(1.0 - alpha) * points[0]])
        result: FloatArray = np.asarray(out, dtype=np.float64)
        return result

    return frame.with_values(map_present(frame.values, smooth))


def _trailing(points: FloatArray, span: int, combine: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """`combine` of each point's window: the point and the span - 1 before it (null-padded at the start)."""
    padded = np.concatenate([np.full(span - 1, np.nan), points])
    return combine(np.lib.stride_tricks.sliding_window_view(padded, span))


def _means(windows: FloatArray) -> FloatArray:
    result: FloatArray = np.nanmean(windows, axis=1)
    return result


def rolling_median(frame: SeriesFrame, span: int) -> SeriesFrame:
    return frame.with_values(map_present(frame.values, lambda p: _trailing(p, span, row_medians)))


def rolling_average(frame: SeriesFrame, span: int) -> SeriesFrame:
    return frame.with_values(map_present(frame.values, lambda p: _trailing(p, span, _means)))


def autosmooth(frame: SeriesFrame) -> SeriesFrame:
    span = autosmooth_span(frame)
    if span == 1:
        return frame.with_values(frame.values.copy())
    return rolling_average(frame, span)


def autosmooth_span(frame: SeriesFrame) -> int:
    """The ASAP span, in points, that `autosmooth` uses for this frame."""
    if len(frame) == 0:
        return 1
    present = ~np.isnan(frame.values)
    counts = present.sum(axis=0)
    columns = counts > 0
    mean = np.where(present, frame.values, 0.0).sum(axis=0)[columns] / counts[columns]
    return asap_span(mean)


def asap_span(points: FloatArray) -> int:
    n = len(points)
    longest = n // 10
    if longest < 2 or np.ptp(points) == 0:
        return 1
    original_kurtosis = stats.kurtosis(points, fisher=False)
    best_span, best_roughness = 1, float(np.std(np.diff(points)))
    sums = np.concatenate([[0.0], np.cumsum(points)])
    for span in range(2, longest + 1):
        smoothed = (sums[span:] - sums[:-span]) / span
        if np.ptp(smoothed) == 0:
            continue
        roughness = float(np.std(np.diff(smoothed)))
        if roughness < best_roughness and stats.kurtosis(smoothed, fisher=False) >= original_kurtosis:
            best_span, best_roughness = span, roughness
    return best_span
