"""Space aggregation: many stored series to one series per group, after interpolation aligns them.

Datadog rolls each stored series up into buckets first (time aggregation), then combines the series of a
group bucket by bucket. A gauge that skipped a bucket is interpolated linearly across the gap, up to five
minutes after its last real value, so that a late or missed report does not make the group's sum dip
(Datadog's default; counts and rates are not interpolated, and `.fill()` replaces the default).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from sextant.series.frame import SeriesFrame, rows_by_labels

SpaceAggregation = Literal["avg", "sum", "min", "max", "count"]
DEFAULT_INTERPOLATION_MS = 300_000


def interpolate_linear(
    values: npt.NDArray[np.float64], times: npt.NDArray[np.int64], limit_ms: int
) -> npt.NDArray[np.float64]:
    """Each row's gaps between two real values filled on the straight line between them, when the gap
    is at most `limit_ms` long (measured from the value before it to the one after)."""
    out = values.copy()
    for row in range(values.shape[0]):
        present = np.flatnonzero(~np.isnan(values[row]))
        if len(present) < 2:
            continue
        before, after = present[:-1], present[1:]
        gaps = np.flatnonzero((after - before > 1) & (times[after] - times[before] <= limit_ms))
        for g in gaps:
            lo, hi = before[g], after[g]
            out[row, lo + 1 : hi] = np.interp(
                times[lo + 1 : hi], [times[lo], times[hi]], [values[row, lo], values[row, hi]]
            )
    return out


def aggregate_groups(frame: SeriesFrame, how: SpaceAggregation) -> SeriesFrame:
    """One row per distinct label tuple, combining its series bucket by bucket (nulls ignored; a bucket
    where no series of the group has a value stays null). Rows come out sorted by labels."""
    groups = rows_by_labels(frame)
    ordered = list(groups)
    if len(groups) == len(frame.labels):
        # One series per group (grouped by every tag that tells them apart): nothing to combine.
        rows = [groups[labels][0] for labels in ordered]
        block = frame.values[rows]
        values = np.where(np.isnan(block), np.nan, 1.0) if how == "count" else block
        return SeriesFrame(
            frame.times, values, frame.group_by, ordered, frame.step_ms, kind=frame.kind, unit=frame.unit
        )
    out = np.full((len(ordered), len(frame.times)), np.nan)
    for i, labels in enumerate(ordered):
        block = frame.values[groups[labels]]
        present = ~np.isnan(block)
        counts = present.sum(axis=0)
        has = counts > 0
        if how == "count":
            out[i] = np.where(has, counts, np.nan)
            continue
        with np.errstate(invalid="ignore"):
            if how == "sum":
                combined = np.nansum(block, axis=0)
            elif how == "avg":
                combined = np.nansum(block, axis=0) / np.maximum(counts, 1)
            elif how == "min":
                combined = np.fmin.reduce(block, axis=0)
            else:
                combined = np.fmax.reduce(block, axis=0)
        out[i] = np.where(has, combined, np.nan)
    return SeriesFrame(
        times=frame.times,
        values=out,
        group_by=frame.group_by,
        labels=ordered,
        step_ms=frame.step_ms,
        kind=frame.kind,
        unit=frame.unit,
    )
