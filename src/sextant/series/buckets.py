"""Time buckets aligned to multiples of the interval since the epoch, and densifying sparse results."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def first_bucket(start_ms: int, interval_ms: int, origin_ms: int = 0) -> int:
    """Start of the bucket holding start_ms; buckets start at origin_ms + k * interval."""
    return start_ms - (start_ms - origin_ms) % interval_ms


def bucket_times(start_ms: int, end_ms: int, interval_ms: int, origin_ms: int = 0) -> npt.NDArray[np.int64]:
    """Start of every bucket that overlaps [start_ms, end_ms); buckets start at origin_ms + k * interval."""
    return np.arange(first_bucket(start_ms, interval_ms, origin_ms), end_ms, interval_ms, dtype=np.int64)


def densify(
    times: npt.NDArray[np.int64],
    series_index: npt.NDArray[np.int64],
    buckets: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    series_count: int,
    fill: float,
) -> npt.NDArray[np.float64]:
    """A (series_count, len(times)) matrix of `values` placed at their bucket, `fill` elsewhere."""
    out = np.full((series_count, len(times)), fill, dtype=np.float64)
    if len(buckets):
        interval = times[1] - times[0] if len(times) > 1 else 1
        columns = (buckets - times[0]) // interval
        out[series_index, columns] = values
    return out
