"""Changes between consecutive points: diff, monotonic_diff, derivative, per_second/minute/hour, dt,
throughput.

"Consecutive" means the previous non-null point of the same series, however many empty buckets lie
between, and the time between them is the time between their buckets. The first point of a series has no
predecessor in the window and is null.

- `diff`: v - v_prev (negative when the series drops).
- `monotonic_diff`: the diff where it is not negative, null where the series dropped ("only if the delta
  is positive"; an unchanged value is a delta of 0 and is kept).
- `derivative`: diff / seconds between the points.
- `per_second`: the rate of increase of a counter: diff / seconds, null where the counter dropped (a reset:
  the drop is not a negative rate). `per_minute` and `per_hour` are 60 and 3600 times it.
- `throughput`: each value divided by the bucket's length in seconds (a count per bucket as a rate).
- `dt`: ONE series for the whole query: at each bucket where any series has a point, the seconds since the
  previous bucket where any series had one.
"""

from __future__ import annotations

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray, no_series, previous_present, single_series


def _deltas(frame: SeriesFrame) -> tuple[FloatArray, FloatArray]:
    """Per bucket: the change since the previous point and the seconds since it (NaN without one)."""
    values = frame.values
    before = previous_present(values)
    rows = np.arange(values.shape[0])[:, None]
    has = (before >= 0) & ~np.isnan(values)
    previous = values[rows, np.maximum(before, 0)]
    seconds = (frame.times[None, :] - frame.times[np.maximum(before, 0)]) / 1000.0
    delta: FloatArray = np.where(has, values - previous, np.nan)
    elapsed: FloatArray = np.where(has, seconds, np.nan)
    return delta, elapsed


def diff(frame: SeriesFrame) -> SeriesFrame:
    return frame.with_values(_deltas(frame)[0])


def monotonic_diff(frame: SeriesFrame) -> SeriesFrame:
    delta, _ = _deltas(frame)
    with np.errstate(invalid="ignore"):
        return frame.with_values(np.where(delta >= 0, delta, np.nan))


def derivative(frame: SeriesFrame) -> SeriesFrame:
    delta, elapsed = _deltas(frame)
    return frame.with_values(delta / elapsed)


def _increase_rate(frame: SeriesFrame, per_seconds: float) -> SeriesFrame:
    delta, elapsed = _deltas(frame)
    with np.errstate(invalid="ignore"):
        return frame.with_values(np.where(delta >= 0, delta / elapsed * per_seconds, np.nan))


def per_second(frame: SeriesFrame) -> SeriesFrame:
    return _increase_rate(frame, 1.0)


def per_minute(frame: SeriesFrame) -> SeriesFrame:
    return _increase_rate(frame, 60.0)


def per_hour(frame: SeriesFrame) -> SeriesFrame:
    return _increase_rate(frame, 3600.0)


def throughput(frame: SeriesFrame) -> SeriesFrame:
    return frame.with_values(frame.values / (frame.step_ms / 1000.0))


def dt(frame: SeriesFrame) -> SeriesFrame:
    if len(frame) == 0:
        return no_series(single_series(frame, np.full(len(frame.times), np.nan)))
    any_point = (~np.isnan(frame.values)).any(axis=0)
    columns = np.flatnonzero(any_point)
    out = np.full(len(frame.times), np.nan)
    out[columns[1:]] = np.diff(frame.times[columns]) / 1000.0
    return single_series(frame, out)
