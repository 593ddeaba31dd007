"""Datadog's rollup intervals: the default for a time window, and the 1500-point limit.

The API's defaults for the canonical windows are Datadog's documented ones (past hour 20 s, four hours 1 m,
day 5 m, two days 10 m, week 1 h, month 4 h); a window between two of them takes the next one up, and one
longer than a month the smallest step from the ladder below that keeps it within 300 points. A requested
interval (`.rollup(agg, seconds)`, or the v2 API's `interval`) is honoured unless it would give more than
1500 points, in which case the smallest ladder step that gives at most 1500 is used instead.
"""

from __future__ import annotations

MAX_POINTS = 1500
DEFAULT_MAX_POINTS = 300
SECOND_MS = 1000
LADDER_S = (
    1,
    5,
    10,
    15,
    20,
    30,
    60,
    120,
    300,
    600,
    1200,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    604800,
)
_DEFAULTS = (
    (3600, 20),
    (4 * 3600, 60),
    (86400, 300),
    (2 * 86400, 600),
    (7 * 86400, 3600),
    (31 * 86400, 14400),
)


def points_in(window_ms: int, step_ms: int) -> int:
    return -(-window_ms // step_ms)


def default_step_ms(window_ms: int) -> int:
    """The step Datadog's API uses for a window of this length."""
    for window_s, step_s in _DEFAULTS:
        if window_ms <= window_s * SECOND_MS:
            return step_s * SECOND_MS
    return smallest_step_ms(window_ms, DEFAULT_MAX_POINTS)


def smallest_step_ms(window_ms: int, max_points: int) -> int:
    for step_s in LADDER_S:
        if points_in(window_ms, step_s * SECOND_MS) <= max_points:
            return step_s * SECOND_MS
    # Longer than the ladder covers: whole weeks.
    weeks = -(-window_ms // (max_points * LADDER_S[-1] * SECOND_MS))
    return weeks * LADDER_S[-1] * SECOND_MS


def choose_step_ms(window_ms: int, requested_ms: int | None) -> int:
    """The step of a query over `window_ms`: the requested one when it keeps within MAX_POINTS, else the
    smallest ladder step that does; the default when none is requested."""
    if requested_ms is None:
        return default_step_ms(window_ms)
    if points_in(window_ms, requested_ms) <= MAX_POINTS:
        return requested_ms
    return smallest_step_ms(window_ms, MAX_POINTS)
