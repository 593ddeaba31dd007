"""Pointwise arithmetic and running sums: abs, log2, log10, pow, cumsum, integral.

A null stays null, and a result that is not a finite number (the log of zero or of a negative value, a
negative number to a fractional power, zero to a negative power) is null: a response never holds an
infinity or a NaN.

- `cumsum`: the running total of the window's values, starting at the window's start; nulls add nothing
  and stay null.
- `integral`: the running total of value * seconds since the previous non-null point (Datadog's "time
  delta * value" over consecutive points); the first point of the window adds nothing.
- `pow(x, y)`: a query or a number on either side; two queries are matched group to group the way
  arithmetic between queries is (`sextant.series.binary`).
"""

from __future__ import annotations

import numpy as np

from sextant.series import binary
from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray, previous_present


def _finite(values: FloatArray) -> FloatArray:
    result: FloatArray = np.where(np.isfinite(values), values, np.nan)
    return result


def absolute(frame: SeriesFrame) -> SeriesFrame:
    return frame.with_values(np.abs(frame.values))


def log2(frame: SeriesFrame) -> SeriesFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        return frame.with_values(_finite(np.log2(frame.values)))


def log10(frame: SeriesFrame) -> SeriesFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        return frame.with_values(_finite(np.log10(frame.values)))


def power(base: SeriesFrame | float, exponent: SeriesFrame | float) -> SeriesFrame | float:
    """`pow(x, y)` for every combination of queries and numbers."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if not isinstance(base, SeriesFrame) and not isinstance(exponent, SeriesFrame):
            result = float(np.power(float(base), float(exponent)))
            return result if np.isfinite(result) else float("nan")
        if not isinstance(exponent, SeriesFrame):
            assert isinstance(base, SeriesFrame)
            return base.with_values(_finite(np.power(base.values, float(exponent))))
        if not isinstance(base, SeriesFrame):
            return exponent.with_values(_finite(np.power(float(base), exponent.values)))
        return _power_frames(base, exponent)


def _power_frames(base: SeriesFrame, exponent: SeriesFrame) -> SeriesFrame:
    if not np.array_equal(base.times, exponent.times):
        raise ValueError("series sets over different buckets cannot be combined")
    # Which rows pair up is Datadog's group matching, which `binary.combine` owns: run it once on row
    # numbers (left row i as i * width, right row j as j, summed) and read the pairs back from the sums.
    width = len(exponent) + 1
    codes_left = _row_codes(base, float(width))
    codes_right = _row_codes(exponent, 1.0)
    paired = binary.combine("+", codes_left, codes_right)
    assert isinstance(paired, SeriesFrame)
    code = paired.values[:, 0].astype(np.int64)
    rows_base, rows_exponent = code // width, code % width
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        values = _finite(np.power(base.values[rows_base], exponent.values[rows_exponent]))
    return SeriesFrame(
        times=base.times,
        values=values.reshape(len(code), len(base.times)),
        group_by=paired.group_by,
        labels=paired.labels,
        step_ms=base.step_ms,
        kind=base.kind,
        unit=base.unit,
    )


def _row_codes(frame: SeriesFrame, scale: float) -> SeriesFrame:
    return SeriesFrame(
        times=np.zeros(1, dtype=np.int64),
        values=(np.arange(len(frame), dtype=np.float64) * scale).reshape(len(frame), 1),
        group_by=frame.group_by,
        labels=frame.labels,
        step_ms=frame.step_ms,
    )


def cumsum(frame: SeriesFrame) -> SeriesFrame:
    values = frame.values
    running = np.cumsum(np.where(np.isnan(values), 0.0, values), axis=1)
    return frame.with_values(np.where(np.isnan(values), np.nan, running))


def integral(frame: SeriesFrame) -> SeriesFrame:
    values = frame.values
    before = previous_present(values)
    previous_time = frame.times[np.maximum(before, 0)]
    seconds = np.where(before >= 0, (frame.times[None, :] - previous_time) / 1000.0, 0.0)
    area = np.where(np.isnan(values), 0.0, values * seconds)
    running = np.cumsum(area, axis=1)
    return frame.with_values(np.where(np.isnan(values), np.nan, running))
