"""`moving_rollup(q, seconds, agg)`: each bucket combined with the buckets of the `seconds` before it.

The window of a bucket is the last ceil(seconds / step) buckets up to and including it (each bucket covers
one step, so the window covers `seconds` of data); a window that reaches before the frame's first bucket
uses what there is — the evaluator queries `seconds` of extra history (the registry's lookback) and trims
it afterwards, so that the first visible bucket has a whole window. Nulls are ignored; a window without
any value is null. Aggregators: avg, sum, min, max, count (the number of non-null points).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray

RollupAggregator = Literal["avg", "sum", "min", "max", "count"]
ROLLUP_AGGREGATORS: tuple[RollupAggregator, ...] = ("avg", "sum", "min", "max", "count")


def window_buckets(seconds: float, step_ms: int) -> int:
    return max(1, math.ceil(seconds * 1000 / step_ms))


def moving_rollup(frame: SeriesFrame, seconds: float, aggregator: RollupAggregator = "avg") -> SeriesFrame:
    values = frame.values
    if values.size == 0:
        return frame.with_values(values.copy())
    width = window_buckets(seconds, frame.step_ms)
    present = ~np.isnan(values)
    counts = _windows(present.astype(np.float64), width, 0.0).sum(axis=2)
    out: FloatArray
    if aggregator == "min":
        out = _windows(np.where(present, values, np.inf), width, np.inf).min(axis=2)
    elif aggregator == "max":
        out = _windows(np.where(present, values, -np.inf), width, -np.inf).max(axis=2)
    elif aggregator == "count":
        out = counts
    else:
        sums = _windows(np.where(present, values, 0.0), width, 0.0).sum(axis=2)
        out = sums if aggregator == "sum" else sums / np.maximum(counts, 1)
    return frame.with_values(np.where(counts > 0, out, np.nan))


def _windows(values: FloatArray, width: int, neutral: float) -> FloatArray:
    """(rows, buckets, width): each bucket's trailing window, padded before the first bucket with a value
    that does not change the aggregate. A view: the windows are not copied."""
    padded = np.concatenate([np.full((len(values), width - 1), neutral), values], axis=1)
    windows: FloatArray = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)
    return windows
