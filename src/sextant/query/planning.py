"""Decisions the core makes about every event query: default intervals and resource limits."""

from __future__ import annotations

import math

from sextant.query.events import EventQuery

# Datadog's documented bound for group-by: the product of the limits may not exceed 10000.
MAX_GROUPS = 10_000
# Buckets per series in a timeseries answer.
MAX_POINTS = 10_000
# Without an explicit interval a timeseries gets about this many points (RUM's default resolution).
DEFAULT_POINTS = 150
QUERY_TIMEOUT_S = 30.0

_NICE_INTERVALS_MS = [
    1_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    604_800_000,
    2_592_000_000,
]


class QueryLimitError(ValueError):
    """A query that would exceed a resource limit; the message says which and how to fix it."""


def default_interval_ms(start_ms: int, end_ms: int) -> int:
    """The smallest round interval giving at most DEFAULT_POINTS buckets over [start, end)."""
    wanted = math.ceil((end_ms - start_ms) / DEFAULT_POINTS)
    for interval in _NICE_INTERVALS_MS:
        if interval >= wanted:
            return interval
    return math.ceil(wanted / _NICE_INTERVALS_MS[-1]) * _NICE_INTERVALS_MS[-1]


def bucket_count(start_ms: int, end_ms: int, interval_ms: int) -> int:
    first = start_ms - start_ms % interval_ms
    return math.ceil((end_ms - first) / interval_ms)


def check_limits(query: EventQuery) -> None:
    if query.start_ms >= query.end_ms:
        raise QueryLimitError(f"from ({query.start_ms}) must be less than to ({query.end_ms})")
    groups = 1
    for g in query.group_by:
        if g.limit < 1:
            raise QueryLimitError(f"group_by limit for {g.field.path!r} must be at least 1, got {g.limit}")
        groups *= g.limit
    if groups > MAX_GROUPS:
        raise QueryLimitError(f"the product of group_by limits is {groups}; it may not exceed {MAX_GROUPS}")
    if query.interval_ms is not None:
        if query.interval_ms < 1:
            raise QueryLimitError(
                f"compute.interval must be a positive number of milliseconds, got {query.interval_ms}"
            )
        points = bucket_count(query.start_ms, query.end_ms, query.interval_ms)
        if points > MAX_POINTS:
            raise QueryLimitError(
                f"compute.interval {query.interval_ms} ms gives {points} points over the time range; "
                f"the limit is {MAX_POINTS}: use an interval of at least "
                f"{math.ceil((query.end_ms - query.start_ms) / MAX_POINTS)} ms"
            )
