"""Time in the core is epoch milliseconds UTC (DESIGN invariant 5)."""

from __future__ import annotations

import time

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# Events are kept 15 months; a month is taken as the Gregorian average of 30.436875 days.
RETENTION_MS = round(15 * 30.436875 * DAY_MS)
# Clocks disagree: an event may claim a time up to an hour ahead of ours.
FUTURE_TOLERANCE_MS = HOUR_MS


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def retention_floor_ms(now: int) -> int:
    """The oldest event time still kept and returned."""
    return now - RETENTION_MS


def accepted_times(now: int) -> tuple[int, int]:
    """The earliest and latest event time accepted at `now` (both included)."""
    return now - RETENTION_MS, now + FUTURE_TOLERANCE_MS


def check_event_time(event_ms: int, now: int) -> str | None:
    """Why an event time is not accepted, or None when it is."""
    if event_ms < retention_floor_ms(now):
        return f"is more than 15 months in the past (oldest accepted: {retention_floor_ms(now)})"
    if event_ms > now + FUTURE_TOLERANCE_MS:
        return f"is more than 1 hour in the future (latest accepted: {now + FUTURE_TOLERANCE_MS})"
    return None
