"""`anomalies(q, algorithm, bounds)`: each series with the range of values expected from its past.

The result keeps the series' values and sets `lower` / `upper` at every bucket the model covers (NaN where
it has too little history); a point outside [lower, upper] is anomalous (`anomaly_mask`). The band is
the model's prediction ± `bounds` * sigma, sigma being a robust standard deviation of how far the series
strays from the model, so `bounds` reads as "standard deviations" as Datadog's docs put it (2 or 3 holds
most normal points). The algorithms follow Datadog's descriptions of them:

- `basic` — "a simple lagging rolling quantile computation … adjusts quickly … no knowledge of seasonal
  behaviour": at each bucket, the median of the 30 points before it (never the point itself), with sigma
  their interquartile range / 1.349. Needs 10 earlier points.
- `agile` — seasonal, "incorporates the immediate past … updates quickly to level shifts": the seasonal
  shape (`decomposition`: per phase, the median over the seasons of the series minus its level) plus the
  level of the 5 points before the bucket (the median of the series minus its shape over those points). A
  level shift is followed within three points; a spike does not move the band after it.
- `robust` — seasonal, "very stable … predictions remain constant even through long-lasting anomalies …
  slower to respond to intended level shifts": the seasonal shape plus the level of the whole season up
  to the bucket (a trailing median), which an anomalous stretch shorter than half a season does not move.

`agile` and `robust` take `seasonality` = hourly, daily or weekly (default weekly) and need two whole
seasons of a series to decompose (`robust` has a band from its second season on);
`anomalies_lookback_ms` is the history the evaluator should query before the window: three seasons, as
Datadog asks three weeks for weekly seasonality.

With `count_default_zero` a series' empty buckets count as 0 (for sparse counts). Named arguments that
steer the query or the alerting, not the band (`interval`, `alert_window`, `timezone`), are accepted by
the registry and do not change the result; `direction` only decides which points `anomaly_mask` reports.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from sextant.series.frame import SeriesFrame
from sextant.series.functions.decomposition import decompose
from sextant.series.functions.frames import FloatArray, robust_sd, row_medians, with_band
from sextant.series.functions.seasonality import Seasonality, season_buckets, season_ms

Algorithm = Literal["basic", "agile", "robust"]
ALGORITHMS: tuple[Algorithm, ...] = ("basic", "agile", "robust")
Direction = Literal["both", "above", "below"]
DIRECTIONS: tuple[Direction, ...] = ("both", "above", "below")
BASIC_WINDOW_POINTS = 30
BASIC_MIN_POINTS = 10
AGILE_LEVEL_POINTS = 5
AGILE_MIN_POINTS = 3
# Datadog: "weekly seasonality … requires three weeks of historical data".
HISTORY_SEASONS = 3
# The interquartile range of normal data is 1.349 standard deviations.
IQR_PER_SD = 1.349


def anomalies(
    frame: SeriesFrame,
    algorithm: Algorithm,
    bounds: float = 2.0,
    *,
    seasonality: Seasonality = "weekly",
    count_default_zero: bool = False,
) -> SeriesFrame:
    values = frame.values
    if count_default_zero:
        has_data = (~np.isnan(values)).any(axis=1, keepdims=True)
        values = np.where(np.isnan(values) & has_data, 0.0, values)
    center = np.full_like(values, np.nan)
    sigma = np.full(len(values), np.nan)
    spread = np.full_like(values, np.nan)
    if algorithm == "basic":
        for row in range(len(values)):
            center[row], spread[row] = _basic(values[row])
    else:
        period = season_buckets("anomalies", seasonality, frame.step_ms)
        for row in range(len(values)):
            center[row], sigma[row] = _seasonal(values[row], period, agile=algorithm == "agile")
        spread = np.broadcast_to(sigma[:, None], values.shape)
    lower, upper = center - bounds * spread, center + bounds * spread
    return with_band(frame, values.copy(), lower, upper)


def _basic(row: FloatArray) -> tuple[FloatArray, FloatArray]:
    present = ~np.isnan(row)
    points = row[present]
    window = BASIC_WINDOW_POINTS
    # Row k of `windows`: the (up to) `window` points before the k-th point; k runs to len(points), the
    # window after the last point, which buckets past it use.
    padded = np.concatenate([np.full(window, np.nan), points])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    counts = (~np.isnan(windows)).sum(axis=1)
    enough = counts >= BASIC_MIN_POINTS
    center_k = np.full(len(windows), np.nan)
    spread_k = np.full(len(windows), np.nan)
    # Only the first windows reach into the padding; the rest have no null and take the fast path.
    for rows, quantile in ((enough & (counts < window), np.nanquantile), (counts == window, np.quantile)):
        if rows.any():
            q25, q50, q75 = quantile(windows[rows], [0.25, 0.5, 0.75], axis=1)
            center_k[rows] = q50
            spread_k[rows] = (q75 - q25) / IQR_PER_SD
    earlier = np.cumsum(present) - present
    return center_k[earlier], spread_k[earlier]


def _seasonal(row: FloatArray, period: int, *, agile: bool) -> tuple[FloatArray, float]:
    parts = decompose(row, period)
    if parts is None:
        return np.full_like(row, np.nan), float("nan")
    seasonal = parts.seasonal(np.arange(len(row)))
    level = _recent_level(row - seasonal) if agile else parts.level
    center = seasonal + level
    return center, robust_sd(row - center)


def _recent_level(deseasonalized: FloatArray) -> FloatArray:
    """At each bucket, the median of the (at least 3 of the) 5 deseasonalized values before it."""
    width = AGILE_LEVEL_POINTS
    padded = np.concatenate([np.full(width, np.nan), deseasonalized])
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)[:-1]
    enough = (~np.isnan(windows)).sum(axis=1) >= AGILE_MIN_POINTS
    level: FloatArray = np.where(enough, row_medians(windows), np.nan)
    return level


def anomaly_mask(frame: SeriesFrame, direction: Direction = "both") -> npt.NDArray[np.bool_]:
    """The points outside the band, above it, or below it; False where there is no band or no value."""
    if frame.lower is None or frame.upper is None:
        return np.zeros(frame.values.shape, dtype=bool)
    above = frame.values > frame.upper
    below = frame.values < frame.lower
    if direction == "above":
        return above
    if direction == "below":
        return below
    mask: npt.NDArray[np.bool_] = above | below
    return mask


def anomalies_lookback_ms(algorithm: Algorithm, seasonality: Seasonality, step_ms: int) -> int:
    """History the evaluator should query before the window, so that its first bucket has a band."""
    if algorithm == "basic":
        return BASIC_WINDOW_POINTS * step_ms
    return HISTORY_SEASONS * season_ms(seasonality)
