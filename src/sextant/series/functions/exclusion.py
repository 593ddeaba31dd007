"""Exclusion: exclude_null, clamp_min/clamp_max, cutoff_min/cutoff_max.

- `exclude_null`: drops the groups that lack a value for any of the group-by keys (Datadog's "N/A").
- `clamp_min(q, T)` / `clamp_max(q, T)`: values below / above T become T.
- `cutoff_min(q, T)` / `cutoff_max(q, T)`: values below / above T become null; a value equal to T is kept
  ("do not replace values that are equal to the threshold").
Nulls stay null.
"""

from __future__ import annotations

import numpy as np

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import take_rows


def exclude_null(frame: SeriesFrame) -> SeriesFrame:
    return take_rows(frame, [row for row, labels in enumerate(frame.labels) if None not in labels])


def clamp_min(frame: SeriesFrame, threshold: float) -> SeriesFrame:
    return frame.with_values(np.where(frame.values < threshold, threshold, frame.values))


def clamp_max(frame: SeriesFrame, threshold: float) -> SeriesFrame:
    return frame.with_values(np.where(frame.values > threshold, threshold, frame.values))


def cutoff_min(frame: SeriesFrame, threshold: float) -> SeriesFrame:
    return frame.with_values(np.where(frame.values < threshold, np.nan, frame.values))


def cutoff_max(frame: SeriesFrame, threshold: float) -> SeriesFrame:
    return frame.with_values(np.where(frame.values > threshold, np.nan, frame.values))
