"""The timeshift family: which window to query instead, and how to bring its points back.

A shifted query reads another window — `timeshift(q, -3600)` reads the hour before — and its points are
then moved onto the asked window's buckets so that they line up with the unshifted series. These
functions compute only the window and the offset; the evaluator runs the query.

- `timeshift(q, s)`: s seconds (negative looks back; positive, seen in real dashboards, looks ahead).
- `hour_before`, `day_before`, `week_before`: 3600 s, 86400 s, 604800 s back.
- `month_before`: 28 days back (Datadog: "a month (28 days / 4 weeks)").
- `calendar_shift(q, '-1d' | '-2w' | '-1mo', tz)`: back by calendar days, weeks or months in the time
  zone `tz` (IANA name, default UTC), so that `-1d` is the same wall-clock time the day before even
  across a daylight-saving change, and `-1mo` the same day of the previous month (the month's last day
  when it is shorter: 31 March - 1 month is 28 or 29 February).

The shifted window keeps the asked window's length (its start is shifted, its end follows), and all its
points move back by one offset, so the bucket count and alignment are those of the asked window.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from sextant.series.frame import SeriesFrame

HOUR_S = 3600
DAY_S = 86400
WEEK_S = 7 * DAY_S
MONTH_BEFORE_S = 28 * DAY_S
_CALENDAR_SHIFT = re.compile(r"^-(\d+)(d|w|mo)$")


@dataclass(frozen=True)
class ShiftedWindow:
    """The window to query, and what to add to its timestamps to line them up with the asked window."""

    start_ms: int
    end_ms: int
    offset_ms: int


def shift_by_seconds(seconds: float, start_ms: int, end_ms: int) -> ShiftedWindow:
    shift = round(seconds * 1000)
    return ShiftedWindow(start_ms + shift, end_ms + shift, -shift)


@dataclass(frozen=True)
class CalendarShift:
    amount: int
    unit: str  # "d", "w" or "mo"


def parse_calendar_shift(text: str) -> CalendarShift:
    """'-1d', '-7d', '-2w', '-1mo' …; ValueError for anything else (Datadog only shifts backwards)."""
    match = _CALENDAR_SHIFT.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(text)
    return CalendarShift(int(match.group(1)), match.group(2))


def calendar_shift_window(shift: CalendarShift, timezone: str, start_ms: int, end_ms: int) -> ShiftedWindow:
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(start_ms / 1000, tz=UTC).astimezone(zone)
    if shift.unit == "mo":
        shifted = _months_back(local.replace(tzinfo=None), shift.amount)
    else:
        days = shift.amount * (7 if shift.unit == "w" else 1)
        shifted = local.replace(tzinfo=None) - timedelta(days=days)
    # Wall-clock arithmetic, then back to an instant in the zone (the earlier one of an ambiguous hour).
    start = round(shifted.replace(tzinfo=zone).timestamp() * 1000)
    offset = start_ms - start
    return ShiftedWindow(start, end_ms - offset, offset)


def _months_back(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def realign(shifted: SeriesFrame, window: ShiftedWindow, times: npt.NDArray[np.int64]) -> SeriesFrame:
    """The shifted query's result on the asked window's buckets `times`: each point moved by the offset
    into the bucket that holds it; buckets no point lands in are null."""
    out = np.full((len(shifted), len(times)), np.nan)
    if len(times) and len(shifted.times):
        moved = shifted.times + window.offset_ms
        step = shifted.step_ms
        columns = (moved - times[0]) // step
        inside = (columns >= 0) & (columns < len(times)) & (moved < times[-1] + step)
        out[:, columns[inside]] = shifted.values[:, inside]
    return dataclasses.replace(shifted, times=times, values=out, lower=None, upper=None)
