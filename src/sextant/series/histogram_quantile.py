"""Quantiles estimated from explicit-bounds histogram bucket counts, the way Prometheus'
`histogram_quantile` does: find the bucket holding the rank, interpolate linearly inside it.

The first bucket's lower edge is 0 (or the first bound, when that is negative); the overflow bucket (above
the last bound) has no upper edge, so a rank that falls in it is the last bound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def histogram_quantiles(quantile: float, bounds: Sequence[float], counts: FloatArray) -> FloatArray:
    """The `quantile` (0 < q < 1) of each row of `counts` (rows x len(bounds) + 1 bucket counts, the last
    one the overflow bucket); NaN for a row whose counts add up to 0 or less, 0 for a histogram without
    bounds (a single bucket tells nothing of where its values lie)."""
    rows = counts.shape[0]
    total = counts.sum(axis=1)
    if not len(bounds):
        return np.where(total > 0, 0.0, np.nan)
    edges = np.asarray(bounds, dtype=np.float64)
    rank = quantile * total
    cumulative = np.cumsum(counts, axis=1)
    reached = cumulative >= rank[:, None]
    index = np.where(reached.any(axis=1), reached.argmax(axis=1), counts.shape[1] - 1)
    inside = np.minimum(index, len(edges) - 1)
    upper = edges[inside]
    lower = np.where(index > 0, edges[np.maximum(inside - 1, 0)], min(0.0, float(edges[0])))
    every = np.arange(rows)
    count = counts[every, index]
    below = cumulative[every, index] - count
    with np.errstate(divide="ignore", invalid="ignore"):
        interpolated = np.where(
            count > 0, lower + (upper - lower) * (rank - below) / np.where(count > 0, count, 1.0), upper
        )
    estimate = np.where(index >= len(edges), edges[-1], interpolated)
    result: FloatArray = np.where(total > 0, estimate, np.nan)
    return result
