"""One number per series over the window: how rank functions order series (and how a scalar query reduces
one). Nulls are ignored; a series with no value at all reduces to NaN.

- `max`, `min`, `mean` (`avg`), `sum`: of the non-null values.
- `last`: the last non-null value.
- `l2norm`: the norm of the series, sqrt(Σ v²), never negative.
- `area`: the signed area under the curve, Σ v * bucket width in seconds (each value covers its bucket),
  which is negative where the series is.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray

Reducer = Literal["max", "mean", "avg", "min", "sum", "last", "l2norm", "area"]
REDUCERS: tuple[Reducer, ...] = ("max", "mean", "min", "sum", "last", "l2norm", "area")


def reduce_rows(frame: SeriesFrame, how: Reducer) -> FloatArray:
    values = frame.values
    present = ~np.isnan(values)
    counts = present.sum(axis=1)
    has = counts > 0
    zeroed = np.where(present, values, 0.0)
    if how == "max":
        out = np.fmax.reduce(values, axis=1, initial=-np.inf)
    elif how == "min":
        out = np.fmin.reduce(values, axis=1, initial=np.inf)
    elif how in ("mean", "avg"):
        out = zeroed.sum(axis=1) / np.maximum(counts, 1)
    elif how == "sum":
        out = zeroed.sum(axis=1)
    elif how == "last":
        columns = np.where(present, np.arange(values.shape[1]), -1).max(axis=1, initial=-1)
        out = (
            values[np.arange(len(values)), np.maximum(columns, 0)] if values.shape[1] else zeroed.sum(axis=1)
        )
    elif how == "l2norm":
        out = np.sqrt((zeroed**2).sum(axis=1))
    else:
        out = zeroed.sum(axis=1) * (frame.step_ms / 1000.0)
    result: FloatArray = np.where(has, out, np.nan)
    return result
