"""Building result frames out of input frames: a subset of rows, one series for a whole set, a band, a
longer or shorter run of buckets; and applying a computation to the values a row actually has."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from sextant.series.frame import SeriesFrame

FloatArray = npt.NDArray[np.float64]


def take_rows(frame: SeriesFrame, rows: Sequence[int]) -> SeriesFrame:
    """The given rows of a frame, in the given order (values, labels, tags and bands alike)."""
    index = np.asarray(rows, dtype=np.int64)
    return dataclasses.replace(
        frame,
        values=frame.values[index].reshape(len(index), len(frame.times)),
        labels=[frame.labels[r] for r in index],
        tags=[frame.tags[r] for r in index] if frame.tags else [],
        lower=None if frame.lower is None else frame.lower[index],
        upper=None if frame.upper is None else frame.upper[index],
    )


def single_series(frame: SeriesFrame, values: FloatArray) -> SeriesFrame:
    """One ungrouped series over the frame's buckets (the result of a function across all groups)."""
    return SeriesFrame(
        times=frame.times,
        values=values.reshape(1, len(frame.times)),
        group_by=(),
        labels=[()],
        step_ms=frame.step_ms,
        kind=frame.kind,
        unit=frame.unit,
    )


def no_series(frame: SeriesFrame) -> SeriesFrame:
    """No series over the frame's buckets, keeping its grouping."""
    return take_rows(frame, [])


def with_band(frame: SeriesFrame, values: FloatArray, lower: FloatArray, upper: FloatArray) -> SeriesFrame:
    return dataclasses.replace(frame, values=values, lower=lower, upper=upper)


def with_times(frame: SeriesFrame, times: npt.NDArray[np.int64], values: FloatArray) -> SeriesFrame:
    """The same series over other buckets (the bands are dropped; the caller sets new ones)."""
    return dataclasses.replace(frame, times=times, values=values, lower=None, upper=None)


def trim_before(frame: SeriesFrame, start_ms: int) -> SeriesFrame:
    """The frame without the buckets before `start_ms`: what an evaluator shows after a function that
    read extra history (anomalies, moving_rollup, forecast) has run."""
    keep = frame.times >= start_ms
    if keep.all():
        return frame
    return dataclasses.replace(
        frame,
        times=frame.times[keep],
        values=frame.values[:, keep],
        lower=None if frame.lower is None else frame.lower[:, keep],
        upper=None if frame.upper is None else frame.upper[:, keep],
    )


def map_present(values: FloatArray, compute: Callable[[FloatArray], FloatArray]) -> FloatArray:
    """Each row's non-null values, in order, replaced by `compute` of them; nulls stay null. For the
    functions that count in points rather than buckets (ewma, median, rolling average)."""
    out = np.full_like(values, np.nan)
    for row in range(values.shape[0]):
        present = ~np.isnan(values[row])
        if present.any():
            out[row, present] = compute(values[row, present])
    return out


def previous_present(values: FloatArray) -> npt.NDArray[np.int64]:
    """For every bucket, the column of the row's last non-null value strictly before it (-1 if none)."""
    columns = np.arange(values.shape[1])
    last_upto = np.maximum.accumulate(np.where(np.isnan(values), -1, columns), axis=1)
    before = np.full(values.shape, -1, dtype=np.int64)
    before[:, 1:] = last_upto[:, :-1]
    return before


def next_present(values: FloatArray) -> npt.NDArray[np.int64]:
    """For every bucket, the column of the row's first non-null value strictly after it (-1 if none)."""
    width = values.shape[1]
    flipped = previous_present(values[:, ::-1])[:, ::-1]
    return np.where(flipped < 0, -1, width - 1 - flipped)


def robust_sd(values: FloatArray) -> float:
    """A standard deviation that a few wild points do not inflate: 1.4826 * the median absolute deviation
    (the factor makes it the standard deviation for normal data). NaN when there are no values."""
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(present - np.median(present))))


def row_medians(rows: FloatArray) -> FloatArray:
    """The median of each row's non-null values (NaN for a row without any). `np.nanmedian` goes through
    masked arrays and is two orders of magnitude slower on the many short rows of a rolling window."""
    if rows.shape[1] == 0:
        return np.full(len(rows), np.nan)
    ordered = np.sort(rows, axis=1)
    counts = (~np.isnan(ordered)).sum(axis=1)
    index = np.arange(len(ordered))
    # Nulls sort last: the median of a row is at the middle of its first `counts` columns.
    low = ordered[index, np.maximum((counts - 1) // 2, 0)]
    high = ordered[index, np.maximum(counts // 2 - (counts == 0), 0)]
    result: FloatArray = np.where(counts > 0, (low + high) / 2, np.nan)
    return result
