"""Regression: trend_line, robust_trend, piecewise_constant.

Each fits a model to a series' non-null values (time in seconds) and returns the model at every bucket of
the window, so a line spans the whole graph even where the series has gaps. A series with one value is a
constant at that value; a series with none stays empty.

- `trend_line`: the ordinary least-squares line.
- `robust_trend`: the least-squares line under Huber's loss (tuning constant 1.345, the usual 95%-efficient
  choice), fitted by iteratively reweighted least squares with the scale re-estimated at every step from
  the median absolute residual (/0.6745), as statsmodels' RLM does with `HuberT` — a few wild points barely
  move it.
- `piecewise_constant`: the series cut into constant segments at its change points, each segment at the
  mean of its values. The change points are the exact optimum of "squared error + one penalty per
  segment", found with PELT (Killick, Fearnhead & Eckley, 2012), with the penalty 2 sigma^2 ln n (the
  Schwarz / BIC penalty for a change in mean) and sigma estimated from the series' first differences
  (1.4826 * their MAD / √2, which a level shift does not inflate). A bucket takes the segment of the last
  value at or before it (the first segment before the first value).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray

HUBER_T = 1.345


@dataclass(frozen=True)
class Line:
    intercept: float
    slope: float

    def at(self, x: FloatArray) -> FloatArray:
        result: FloatArray = self.intercept + self.slope * x
        return result


def ols_line(x: FloatArray, y: FloatArray, weights: FloatArray | None = None) -> Line:
    if len(x) == 1:
        return Line(float(y[0]), 0.0)
    w = np.ones_like(x) if weights is None else weights
    total = w.sum()
    x_mean, y_mean = (w * x).sum() / total, (w * y).sum() / total
    spread = (w * (x - x_mean) ** 2).sum()
    slope = 0.0 if spread == 0 else float((w * (x - x_mean) * (y - y_mean)).sum() / spread)
    return Line(float(y_mean - slope * x_mean), slope)


def huber_line(x: FloatArray, y: FloatArray, *, max_iter: int = 100, tol: float = 1e-10) -> Line:
    line = ols_line(x, y)
    if len(x) < 3:
        return line
    for _ in range(max_iter):
        residuals = y - line.at(x)
        scale = float(np.median(np.abs(residuals))) / 0.6745
        if scale == 0:
            # At least half the points lie on the line: nothing is left to down-weight.
            break
        ratio = np.abs(residuals) / scale
        weights = np.where(ratio <= HUBER_T, 1.0, HUBER_T / np.maximum(ratio, HUBER_T))
        refit = ols_line(x, y, weights)
        done = abs(refit.intercept - line.intercept) <= tol * (1 + abs(line.intercept)) and abs(
            refit.slope - line.slope
        ) <= tol * (1 + abs(line.slope))
        line = refit
        if done:
            break
    return line


def _seconds(frame: SeriesFrame) -> FloatArray:
    if len(frame.times) == 0:
        return np.zeros(0)
    seconds: FloatArray = (frame.times - frame.times[0]) / 1000.0
    return seconds


def _fit_lines(frame: SeriesFrame, robust: bool) -> SeriesFrame:
    x = _seconds(frame)
    out = np.full_like(frame.values, np.nan)
    for row in range(len(frame)):
        present = ~np.isnan(frame.values[row])
        if present.any():
            fit = huber_line if robust else ols_line
            out[row] = fit(x[present], frame.values[row, present]).at(x)
    return frame.with_values(out)


def trend_line(frame: SeriesFrame) -> SeriesFrame:
    return _fit_lines(frame, robust=False)


def robust_trend(frame: SeriesFrame) -> SeriesFrame:
    return _fit_lines(frame, robust=True)


def change_penalty(y: FloatArray) -> float:
    """The cost of one more segment in `piecewise_constant`, in squared units of the series."""
    n = len(y)
    if n < 3:
        return float("inf")
    steps = np.diff(y)
    sigma = 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2.0)
    # A series that is exactly constant between its changes has sigma = 0: a tiny positive penalty still
    # merges equal neighbours instead of giving every point its own segment.
    floor = 1e-12 * (1.0 + float(np.sum((y - y.mean()) ** 2)))
    return float(max(2.0 * sigma**2 * float(np.log(n)), floor))


def change_points(y: FloatArray, penalty: float) -> list[int]:
    """Start index of every segment after the first, minimising squared error + penalty per segment."""
    n = len(y)
    if n < 2 or not np.isfinite(penalty):
        return []
    centred = y - y.mean()
    sums = np.concatenate([[0.0], np.cumsum(centred)])
    squares = np.concatenate([[0.0], np.cumsum(centred**2)])
    best = np.empty(n + 1)
    best[0] = -penalty
    start_of_last = np.zeros(n + 1, dtype=np.int64)
    candidates = np.array([0], dtype=np.int64)
    for end in range(1, n + 1):
        length = end - candidates
        cost = (squares[end] - squares[candidates]) - (sums[end] - sums[candidates]) ** 2 / length
        total = best[candidates] + np.maximum(cost, 0.0) + penalty
        pick = int(np.argmin(total))
        best[end] = total[pick]
        start_of_last[end] = candidates[pick]
        # PELT: a start that cannot beat `end` now never will later.
        keep = total - penalty <= best[end]
        candidates = np.append(candidates[keep], end)
    starts = []
    end = n
    while end > 0:
        end = int(start_of_last[end])
        if end > 0:
            starts.append(end)
    return sorted(starts)


def piecewise_constant(frame: SeriesFrame) -> SeriesFrame:
    out = np.full_like(frame.values, np.nan)
    for row in range(len(frame)):
        present = np.flatnonzero(~np.isnan(frame.values[row]))
        if len(present) == 0:
            continue
        y = frame.values[row, present]
        bounds = [0, *change_points(y, change_penalty(y)), len(y)]
        fitted = np.empty(len(y))
        for lo, hi in itertools.pairwise(bounds):
            fitted[lo:hi] = y[lo:hi].mean()
        # Each bucket takes the segment of the last value at or before it.
        owner = np.searchsorted(present, np.arange(frame.values.shape[1]), side="right") - 1
        out[row] = fitted[np.maximum(owner, 0)]
    return frame.with_values(out)
