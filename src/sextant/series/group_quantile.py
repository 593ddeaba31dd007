"""A quantile across the series of each group, bucket by bucket (PostHog's `p95` over series).

Interpolated linearly between the two closest ranks, as ClickHouse's `quantile` and numpy's default
percentile do; series without a value in a bucket are left out, and a bucket where no series of the group
has one stays null.
"""

from __future__ import annotations

import warnings

import numpy as np

from sextant.series.frame import SeriesFrame, rows_by_labels


def quantile_groups(frame: SeriesFrame, quantile: float) -> SeriesFrame:
    """One row per distinct label tuple (sorted by labels): the `quantile` (0..1) of its series' values."""
    groups = rows_by_labels(frame)
    ordered = list(groups)
    out = np.full((len(ordered), len(frame.times)), np.nan)
    with warnings.catch_warnings():
        # An all-null bucket is null, which is what nanquantile gives, with a warning.
        warnings.simplefilter("ignore", RuntimeWarning)
        for i, labels in enumerate(ordered):
            out[i] = np.nanquantile(frame.values[groups[labels]], quantile, axis=0)
    return SeriesFrame(
        times=frame.times,
        values=out,
        group_by=frame.group_by,
        labels=ordered,
        step_ms=frame.step_ms,
        kind=frame.kind,
        unit=frame.unit,
    )
