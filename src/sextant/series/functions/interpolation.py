"""Filling empty buckets: `fill(method, limit)` and `default_zero`.

Datadog's interpolation fills "up to `limit` seconds after real samples" (default 300 s, at most 600 s).
Here a null bucket is filled when a non-null value precedes it by at most `limit` seconds:

- `zero`: 0;
- `last`: the preceding value;
- `linear`: the straight line to the next value when that next value is itself at most `limit` seconds
  after the preceding one (the whole gap fits in the limit), else the preceding value is held (the end of
  the window, or a gap too long to bridge), which is what Datadog's own `default_zero` example shows (a
  single gauge point stays for five minutes, then the series drops to 0);
- `null`: nothing is filled. In a metric query it turns off the default interpolation, which the query
  layer applies; as a function it leaves the series as it is.

Buckets before a series' first value are never filled (nothing precedes them).

`default_zero` fills every remaining empty bucket of a series with 0, after gauge interpolation when that
is on (gauges are interpolated by default; a query with `.fill(null)`, `.as_count()` or `.as_rate()` turns
it off — the evaluator says so with `interpolate=False`). A series without any value stays empty: "if the
evaluation window contains no data point, default_zero has no effect".
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import next_present, previous_present

FillMethod = Literal["null", "zero", "linear", "last"]
FILL_METHODS: tuple[FillMethod, ...] = ("null", "zero", "linear", "last")
DEFAULT_LIMIT_S = 300
MAX_LIMIT_S = 600


def fill(frame: SeriesFrame, method: FillMethod, limit_s: float = DEFAULT_LIMIT_S) -> SeriesFrame:
    values = frame.values
    if method == "null" or values.size == 0:
        return frame.with_values(values.copy())
    limit_ms = limit_s * 1000.0
    times = frame.times
    rows = np.arange(values.shape[0])[:, None]
    before, after = previous_present(values), next_present(values)
    before_time = times[np.maximum(before, 0)]
    after_time = times[np.maximum(after, 0)]
    empty = np.isnan(values)
    fillable = empty & (before >= 0) & (times[None, :] - before_time <= limit_ms)
    held = values[rows, np.maximum(before, 0)]
    if method == "zero":
        filler = np.zeros_like(values)
    elif method == "last":
        filler = held
    else:
        bridged = (after >= 0) & (after_time - before_time <= limit_ms)
        following = values[rows, np.maximum(after, 0)]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = (times[None, :] - before_time) / np.where(bridged, after_time - before_time, 1)
        filler = np.where(bridged, held + (following - held) * share, held)
    return frame.with_values(np.where(fillable, filler, values))


def default_zero(frame: SeriesFrame, *, interpolate: bool | None = None) -> SeriesFrame:
    """Empty buckets as 0; `interpolate` None means "as Datadog does for this kind": gauges only."""
    if interpolate is None:
        interpolate = frame.kind == "gauge"
    source = fill(frame, "linear", DEFAULT_LIMIT_S) if interpolate else frame
    values = source.values
    has_data = (~np.isnan(values)).any(axis=1, keepdims=True)
    return frame.with_values(np.where(np.isnan(values) & has_data, 0.0, values))
