"""Rank: `top`, `bottom`, `top_offset` and the `topN_agg` / `bottomN_agg` shorthands.

Each series is reduced to one number over the window (`reducers`: max, mean, min, sum, last, l2norm,
area; nulls ignored), the series are sorted by it — descending for `desc`, ascending for `asc` — and a
slice is kept: `top(q, N, by, dir)` the first N, `top_offset(q, N, by, dir, K)` the N after the first K
(ranks K+1 … K+N). The result lists the kept series in rank order.

Ties are broken by the series' labels, in ascending order whichever the direction, so that a ranking is
the same from one request to the next. A series without any value has no rank value: it comes after every
series that has one, in either direction.

`bottom(q, N, by)` and `bottomN_agg(q)` are the ascending ranking (Datadog: "bottom = asc").
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from sextant.series.frame import SeriesFrame, label_sort_key
from sextant.series.functions.frames import take_rows
from sextant.series.functions.reducers import Reducer, reduce_rows

Direction = Literal["asc", "desc"]
DIRECTIONS: tuple[Direction, ...] = ("asc", "desc")
# `[top, bottom][5, 10, 15, 20]_[mean, min, max, last, area, l2norm]` in Datadog's docs; `sum` is accepted
# as well since `top()` takes it.
SHORTHAND_LIMITS = (5, 10, 15, 20)
SHORTHAND_REDUCERS: tuple[Reducer, ...] = ("mean", "min", "max", "last", "area", "l2norm", "sum")


def ranked_rows(frame: SeriesFrame, by: Reducer, direction: Direction) -> list[int]:
    """Row numbers from first to last rank."""
    scores = reduce_rows(frame, by)
    sign = -1.0 if direction == "desc" else 1.0

    def key(row: int) -> tuple[bool, float, tuple[tuple[int, str], ...]]:
        missing = bool(np.isnan(scores[row]))
        return (missing, 0.0 if missing else sign * float(scores[row]), label_sort_key(frame.labels[row]))

    return sorted(range(len(frame)), key=key)


def top(
    frame: SeriesFrame, limit: int = 10, by: Reducer = "mean", direction: Direction = "desc", offset: int = 0
) -> SeriesFrame:
    return take_rows(frame, ranked_rows(frame, by, direction)[offset : offset + limit])


def bottom(frame: SeriesFrame, limit: int = 10, by: Reducer = "mean") -> SeriesFrame:
    return top(frame, limit, by, "asc")
