"""A robust seasonal decomposition for anomalies() and forecast(): level + seasonal shape.

- level: at each bucket, the median of the season up to and including it (a trailing window of one
  period), so that neither a spike nor the seasonal swing moves it, and a level shift is taken up only
  once it has lasted half a season. Undefined during the first season of the data and where the window
  holds less than half a season of values.
- shape: for each phase of the season, the median over the seasons of (value - level), pooling the
  phases next to it when there are few seasons. Because the level lags a trend by half a season, the
  shape carries that lag back, so level + shape stays unbiased on a steady trend.

Medians across seasons ignore one odd season out of three. statsmodels' robust STL was tried first: with
the few seasons a query holds (Datadog asks three), a spike in one season made it give zero weight to
every point of that phase and then follow the spike, so the band swallowed the anomaly it should show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sextant.series.functions.frames import FloatArray, row_medians

# The shape at a phase is the median of at least this many values, pooling neighbouring phases when there
# are fewer seasons: with three seasons a phase's own median would be the middle one of three values, a
# copy of the noise that makes the band too narrow.
POOLED_VALUES = 21


@dataclass(frozen=True)
class Decomposition:
    period: int
    level: FloatArray  # per bucket of the row (NaN where undefined)
    shape: FloatArray  # per phase; the phase of column j is j % period

    def seasonal(self, columns: npt.NDArray[np.int64]) -> FloatArray:
        result: FloatArray = self.shape[columns % self.period]
        return result


def decompose(row: FloatArray, period: int) -> Decomposition | None:
    """None when the row's values span less than two seasons."""
    present = np.flatnonzero(~np.isnan(row))
    if len(present) == 0 or present[-1] + 1 - present[0] < 2 * period:
        return None
    level = trailing_level(row, period)
    detrended = row - level
    seasons = max(1.0, int((~np.isnan(detrended)).sum()) / period)
    reach = min(period // 8, math.ceil(max(0.0, POOLED_VALUES / seasons - 1) / 2))
    # One row per season, one column per phase; the pooled values of a phase are its column and the
    # `reach` columns on either side (around the season's end), in every season.
    whole = -(-len(row) // period) * period
    by_phase = np.concatenate([detrended, np.full(whole - len(row), np.nan)]).reshape(-1, period)
    pooled = np.concatenate([np.roll(by_phase, shift, axis=1) for shift in range(-reach, reach + 1)])
    shape = row_medians(pooled.T)
    known = ~np.isnan(shape)
    if not known.any():
        return None
    if not known.all():
        phases = np.arange(period)
        shape = np.interp(phases, phases[known], shape[known], period=period)
    return Decomposition(period, level, shape)


def trailing_level(row: FloatArray, period: int) -> FloatArray:
    padded = np.concatenate([np.full(period - 1, np.nan), row])
    windows = np.lib.stride_tricks.sliding_window_view(padded, period)
    counts = (~np.isnan(windows)).sum(axis=1)
    first = int(np.flatnonzero(~np.isnan(row))[0])
    enough = (counts * 2 >= period) & (np.arange(len(row)) >= first + period - 1)
    level: FloatArray = np.where(enough, row_medians(windows), np.nan)
    return level
