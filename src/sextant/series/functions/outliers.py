"""`outliers(q, algorithm, tolerance, pct)`: the groups that behave differently from their peers.

Datadog's graph draws every group and colours the outlying ones. A `SeriesFrame` row has no place for a
colour and the timeseries API none for a flag, so `outliers()` returns the outlying series only (in the
query's order): what the colouring tells, in a form every response carries. `outlier_flags` gives the
flag of every row, for a renderer that wants to draw all of them. Fewer than 3 groups have no outliers
(Datadog: "requires a group with three or more members").

Both algorithms compare each series with the median series (the median of all groups at each bucket); a
null is taken as the median there, so it neither makes nor hides an outlier.

- `DBSCAN` (Datadog's simplified form, from their description): each series is a point in as many
  dimensions as buckets. The initial distance threshold is the median of the series' Euclidean distances
  to the median series, times √2 (the typical distance between two peers is √2 times their distance to the
  centre); ε = `tolerance` * that. Series within ε of each other belong together (any series can start a
  cluster); those outside the largest cluster are outliers. Between clusters of the same size, the one
  holding the series nearest the median series is the largest.
- `MAD`: at each bucket a point deviates by |value - median series|; the MAD is the median of all the
  deviations in the window. A point is outlying when it deviates by more than `tolerance` * MAD, and a
  series is an outlier when more than `pct` percent of its points are.
- `scaledDBSCAN` / `scaledMAD`: the same, except that the MAD (for DBSCAN, the initial distance threshold)
  is never taken below 1% of the group's magnitude (the median of |values|; the norm of the median series,
  * √2, for DBSCAN). Datadog's scaled
  algorithms exist for "metrics that are large and closely clustered", where differences that are tiny
  next to the values should not count; the 1% floor is this implementation's reading of that.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import pdist, squareform

from sextant.series.frame import SeriesFrame
from sextant.series.functions.frames import FloatArray, take_rows

Algorithm = Literal["DBSCAN", "scaledDBSCAN", "MAD", "scaledMAD"]
ALGORITHMS: tuple[Algorithm, ...] = ("DBSCAN", "scaledDBSCAN", "MAD", "scaledMAD")
MIN_GROUPS = 3
SCALED_FLOOR = 0.01


def outlier_flags(
    frame: SeriesFrame, algorithm: Algorithm, tolerance: float = 3.0, pct: float = 20.0
) -> npt.NDArray[np.bool_]:
    flags = np.zeros(len(frame), dtype=bool)
    buckets = (~np.isnan(frame.values)).any(axis=0)
    if len(frame) < MIN_GROUPS or not buckets.any():
        return flags
    values = frame.values[:, buckets]
    median = np.nanmedian(values, axis=0)
    filled = np.where(np.isnan(values), median, values)
    scaled = algorithm.startswith("scaled")
    if algorithm.endswith("DBSCAN"):
        return _dbscan(filled, median, tolerance, scaled)
    return _mad(values, filled, median, tolerance, pct, scaled)


def outliers(
    frame: SeriesFrame, algorithm: Algorithm, tolerance: float = 3.0, pct: float = 20.0
) -> SeriesFrame:
    return take_rows(frame, np.flatnonzero(outlier_flags(frame, algorithm, tolerance, pct)).tolist())


def _dbscan(filled: FloatArray, median: FloatArray, tolerance: float, scaled: bool) -> npt.NDArray[np.bool_]:
    to_median = np.linalg.norm(filled - median, axis=1)
    threshold = float(np.median(to_median)) * np.sqrt(2.0)
    if scaled:
        threshold = max(threshold, SCALED_FLOOR * float(np.linalg.norm(median)) * np.sqrt(2.0))
    epsilon = tolerance * threshold
    close = squareform(pdist(filled)) <= epsilon
    _, cluster = connected_components(close, directed=False)
    sizes = np.bincount(cluster)
    largest = np.flatnonzero(sizes == sizes.max())
    if len(largest) > 1:
        nearest = min(range(len(filled)), key=lambda row: (cluster[row] not in largest, to_median[row]))
        main = cluster[nearest]
    else:
        main = largest[0]
    flags: npt.NDArray[np.bool_] = cluster != main
    return flags


def _mad(
    values: FloatArray, filled: FloatArray, median: FloatArray, tolerance: float, pct: float, scaled: bool
) -> npt.NDArray[np.bool_]:
    deviation = np.abs(filled - median)
    present = ~np.isnan(values)
    mad = float(np.median(deviation[present]))
    if scaled:
        mad = max(mad, SCALED_FLOOR * float(np.median(np.abs(values[present]))))
    outlying = (deviation > tolerance * mad) & present
    share = outlying.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    flags: npt.NDArray[np.bool_] = share * 100.0 > pct
    return flags
