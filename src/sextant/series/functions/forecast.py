"""`forecast(q, algorithm, deviations)`: where each series is heading, past the end of the window.

The result is the frame's buckets followed by `horizon` more (the caller says how far: Datadog draws the
forecast on the future part of a graph). Past buckets keep the series' values and have no band; future
buckets hold the forecast with `lower` / `upper` = forecast ± `deviations` * the forecast's standard error
(Datadog: "1 or 2 should be large enough to include most normal points").

- `linear` — "for metrics that have steady trends but no repeating seasonal pattern": a straight line
  fitted with Huber's loss (`regression.huber_line`) to the series' values; `model` picks which ones:
  `simple` all of the window ("a robust linear regression through the entire history"), `default` the most
  recent half ("adjusts to the last trend … robust to recent noise"), `reactive` the most recent sixth
  ("extrapolates recent behaviour better, at the risk of overfitting to noise, spikes or dips"); at least
  three points either way (a series with fewer gets the line without a band). The standard error is the
  classic one of a prediction from a fitted line, sigma * sqrt(1 + 1/m + (x - mean x)^2 / sum (x_i -
  mean x)^2) over the m fitted points, sigma a robust standard deviation of the residuals: the band widens
  the further ahead it looks.
- `seasonal` — "for metrics with repeating patterns": the series' level and seasonal shape
  (`decomposition`, with the period of `seasonality`: hourly, daily or weekly; default weekly); the
  forecast is the Huber line through the level, extended, plus the shape at each future bucket's phase. Its
  variance adds the remainder's (series - level - shape) to the level's (its wander around its line, and
  the line's own uncertainty). It needs two whole seasons of history: a shorter query raises
  `InsufficientHistoryError`, and a series with fewer gets no forecast.

`forecast_lookback_ms` is the history the evaluator should query before the window: what `history` asks
for (a duration such as '1w', '3d', '12h'), and for `seasonal` at least two seasons.
"""

from __future__ import annotations

import math
import re
from typing import Literal

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.decomposition import decompose
from sextant.series.functions.errors import InsufficientHistoryError
from sextant.series.functions.frames import FloatArray, robust_sd, with_band, with_times
from sextant.series.functions.regression import Line, huber_line
from sextant.series.functions.seasonality import Seasonality, season_buckets, season_ms

Algorithm = Literal["linear", "seasonal"]
ALGORITHMS: tuple[Algorithm, ...] = ("linear", "seasonal")
LinearModel = Literal["default", "simple", "reactive"]
LINEAR_MODELS: tuple[LinearModel, ...] = ("default", "simple", "reactive")
_RECENT_SHARE: dict[LinearModel, int] = {"simple": 1, "default": 2, "reactive": 6}
MIN_FIT_POINTS = 3
# A forecast without a horizon from the caller looks a quarter of the frame ahead.
DEFAULT_HORIZON_SHARE = 0.25
_DURATION = re.compile(r"^(\d+)(m|h|d|w|mo)$")
_DURATION_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 30 * 86400}


def parse_duration_ms(text: str) -> int:
    """'30m', '12h', '3d', '2w', '1mo' (30 days) in milliseconds; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(text)
    return int(match.group(1)) * _DURATION_S[match.group(2)] * 1000


def forecast(
    frame: SeriesFrame,
    algorithm: Algorithm,
    deviations: float = 1.0,
    *,
    horizon_ms: int | None = None,
    model: LinearModel = "default",
    seasonality: Seasonality = "weekly",
) -> SeriesFrame:
    step = frame.step_ms
    if len(frame.times) == 0:
        return frame.with_values(frame.values.copy())
    if horizon_ms is None:
        horizon_ms = max(step, int(len(frame.times) * step * DEFAULT_HORIZON_SHARE))
    ahead = math.ceil(horizon_ms / step)
    future = frame.times[-1] + step * np.arange(1, ahead + 1, dtype=np.int64)
    times = np.concatenate([frame.times, future])
    x = (times - times[0]) / 1000.0
    past = len(frame.times)
    predicted = np.full((len(frame), ahead), np.nan)
    error = np.full((len(frame), ahead), np.nan)
    if algorithm == "linear":
        for row in range(len(frame)):
            predicted[row], error[row] = _linear(frame.values[row], x, past, model)
    else:
        period = season_buckets("forecast", seasonality, step)
        if past < 2 * period:
            raise InsufficientHistoryError(
                "forecast",
                f"'seasonal' with seasonality '{seasonality}' needs two {_season_word(seasonality)}s of "
                f"history and the query covers {_duration_text(past * step)}: query a longer time window or "
                "use a shorter seasonality",
                argument="seasonality",
                given=seasonality,
            )
        for row in range(len(frame)):
            predicted[row], error[row] = _seasonal(frame.values[row], x, past, period)
    nan_past = np.full((len(frame), past), np.nan)
    values = np.concatenate([frame.values, predicted], axis=1)
    lower = np.concatenate([nan_past, predicted - deviations * error], axis=1)
    upper = np.concatenate([nan_past, predicted + deviations * error], axis=1)
    extended = with_times(frame, times, values)
    return with_band(extended, values, lower, upper)


def _duration_text(ms: int) -> str:
    for unit, length in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000)):
        if ms >= length:
            amount = ms / length
            return f"{amount:.3g} {unit}{'' if amount == 1 else 's'}"
    return f"{ms / 1000:.3g} seconds"


def _season_word(seasonality: Seasonality) -> str:
    return {"hourly": "hour", "daily": "day", "weekly": "week"}[seasonality]


def _line_error(line: Line, x: FloatArray, y: FloatArray, at: FloatArray) -> tuple[FloatArray, float]:
    """The line's own error factor sqrt(1/m + (x - mean x)^2 / Sxx) at `at`, and sigma of the residuals."""
    sigma = robust_sd(y - line.at(x))
    centred = x - x.mean()
    spread = float((centred**2).sum())
    leverage = 1.0 / len(x) + (((at - x.mean()) ** 2) / spread if spread > 0 else 0.0)
    return np.sqrt(leverage), sigma


def _linear(row: FloatArray, x: FloatArray, past: int, model: LinearModel) -> tuple[FloatArray, FloatArray]:
    present = np.flatnonzero(~np.isnan(row))
    ahead = len(x) - past
    if len(present) == 0:
        return np.full(ahead, np.nan), np.full(ahead, np.nan)
    keep = max(min(len(present), MIN_FIT_POINTS), len(present) // _RECENT_SHARE[model])
    used = present[-keep:]
    xs, ys = x[used], row[used]
    line = huber_line(xs, ys)
    at = x[past:]
    if len(used) < MIN_FIT_POINTS:
        # One or two points say where the line goes, not how far from it the series strays.
        return line.at(at), np.full(ahead, np.nan)
    factor, sigma = _line_error(line, xs, ys, at)
    return line.at(at), sigma * np.sqrt(1.0 + factor**2)


def _seasonal(row: FloatArray, x: FloatArray, past: int, period: int) -> tuple[FloatArray, FloatArray]:
    ahead = len(x) - past
    parts = decompose(row, period)
    if parts is None:
        return np.full(ahead, np.nan), np.full(ahead, np.nan)
    known = ~np.isnan(parts.level)
    line = huber_line(x[:past][known], parts.level[known])
    at = x[past:]
    factor, wander = _line_error(line, x[:past][known], parts.level[known], at)
    remainder = robust_sd(row - parts.level - parts.seasonal(np.arange(past)))
    shape = parts.seasonal(np.arange(past, len(x)))
    error = np.sqrt(remainder**2 + wander**2 * (1.0 + factor**2))
    return line.at(at) + shape, error


def forecast_lookback_ms(
    algorithm: Algorithm, seasonality: Seasonality, history_ms: int | None, window_ms: int
) -> int:
    needed = history_ms or 0
    if algorithm == "seasonal":
        needed = max(needed, 2 * season_ms(seasonality))
    return max(0, needed - window_ms)
