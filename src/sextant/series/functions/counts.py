"""Counting groups: `count_nonzero` and `count_not_null`, each ONE series for the whole query.

At each bucket: how many series have a value (`count_not_null`), or a value other than 0
(`count_nonzero`, also spelled `count_nonzero_finite`). A bucket where no series has a value is null, as
an aggregate across series is elsewhere; a query without any series gives no series.
"""

from __future__ import annotations

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray, no_series, single_series


def _count(frame: SeriesFrame, counted: FloatArray) -> SeriesFrame:
    if len(frame) == 0:
        return no_series(single_series(frame, np.full(len(frame.times), np.nan)))
    any_point = (~np.isnan(frame.values)).any(axis=0)
    return single_series(frame, np.where(any_point, counted.sum(axis=0), np.nan))


def count_not_null(frame: SeriesFrame) -> SeriesFrame:
    return _count(frame, (~np.isnan(frame.values)).astype(np.float64))


def count_nonzero(frame: SeriesFrame) -> SeriesFrame:
    values = frame.values
    return _count(frame, (~np.isnan(values) & (values != 0)).astype(np.float64))
