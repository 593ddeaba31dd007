from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.functions import (
    DEFERRED,
    FunctionArgumentError,
    ShiftedWindow,
    lookup,
    realign,
    shifted_window,
    timeshift,
)
from tests.series.functions.builders import cells

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
START = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS
END = START + 4 * HOUR_MS


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@pytest.mark.parametrize(
    ("name", "args", "shift_ms"),
    [
        ("timeshift", [-3600], -HOUR_MS),
        ("timeshift", [40], 40_000),
        ("timeshift", [-1209600], -14 * DAY_MS),
        ("hour_before", [], -HOUR_MS),
        ("day_before", [], -DAY_MS),
        ("week_before", [], -7 * DAY_MS),
        ("month_before", [], -28 * DAY_MS),
    ],
)
def test_fixed_shifts(name: str, args: list[float], shift_ms: int) -> None:
    spec = lookup(name)
    assert spec.kind == "shift"
    window = spec.bind([DEFERRED, *args]).shifted_window(START, END)
    assert window == ShiftedWindow(START + shift_ms, END + shift_ms, -shift_ms)


def test_hour_before_is_timeshift_minus_3600() -> None:
    a = shifted_window("hour_before", [DEFERRED], START, END)
    b = shifted_window("timeshift", [DEFERRED, -3600], START, END)
    assert a == b == ShiftedWindow(START - HOUR_MS, END - HOUR_MS, HOUR_MS)


def test_calendar_day_shift_keeps_the_wall_clock_across_daylight_saving() -> None:
    paris = ZoneInfo("Europe/Paris")
    # Noon on the day clocks went forward (31 March 2024): the day before at noon is 23 hours earlier.
    start = ms(datetime(2024, 3, 31, 12, tzinfo=paris))
    window = (
        lookup("calendar_shift")
        .bind([DEFERRED, "-1d", "Europe/Paris"])
        .shifted_window(start, start + HOUR_MS)
    )
    assert window.start_ms == ms(datetime(2024, 3, 30, 12, tzinfo=paris))
    assert window.offset_ms == 23 * HOUR_MS
    assert window.end_ms - window.start_ms == HOUR_MS
    # In UTC the same shift is a plain day.
    utc = lookup("calendar_shift").bind([DEFERRED, "-1d"]).shifted_window(start, start + HOUR_MS)
    assert utc.offset_ms == DAY_MS


@pytest.mark.parametrize(
    ("moment", "shift", "expected"),
    [
        (datetime(2024, 3, 31, 9), "-1mo", datetime(2024, 2, 29, 9)),
        (datetime(2023, 3, 31, 9), "-1mo", datetime(2023, 2, 28, 9)),
        (datetime(2024, 1, 15, 0, 30), "-2mo", datetime(2023, 11, 15, 0, 30)),
        (datetime(2024, 5, 10, 8), "-2w", datetime(2024, 4, 26, 8)),
        (datetime(2024, 5, 10, 8), "-30d", datetime(2024, 4, 10, 8)),
    ],
)
def test_calendar_shifts_by_months_weeks_and_days(moment: datetime, shift: str, expected: datetime) -> None:
    zone = ZoneInfo("America/New_York")
    start = ms(moment.replace(tzinfo=zone))
    window = (
        lookup("calendar_shift")
        .bind([DEFERRED, shift, "America/New_York"])
        .shifted_window(start, start + DAY_MS)
    )
    assert window.start_ms == ms(expected.replace(tzinfo=zone))
    assert window.offset_ms == start - window.start_ms


def test_calendar_shift_arguments_are_checked() -> None:
    spec = lookup("calendar_shift")
    for bad in ("1d", "-1y", "-0d", "yesterday"):
        with pytest.raises(
            FunctionArgumentError,
            match=r"calendar_shift\(\): the 2nd argument \(shift\) must be a negative number of days, weeks "
            r"or months such as '-1d', '-2w' or '-1mo'",
        ):
            spec.bind([DEFERRED, bad])
    with pytest.raises(
        FunctionArgumentError,
        match=r"the 3rd argument \(timezone\) must be an IANA time zone name or 'UTC'; got 'Europe/Atlantis'",
    ):
        spec.bind([DEFERRED, "-1d", "Europe/Atlantis"])
    with pytest.raises(
        FunctionArgumentError,
        match=r"timeshift\(\): the 2nd argument \(seconds\) must be a whole number; got '1h'",
    ):
        lookup("timeshift").bind([DEFERRED, "1h"])


def test_realign_moves_points_onto_the_asked_buckets() -> None:
    step = 60_000
    window = lookup("hour_before").bind([DEFERRED]).shifted_window(START, START + 5 * step)
    shifted = SeriesFrame(
        times=window.start_ms + step * np.arange(5, dtype=np.int64),
        values=np.array([[1.0, np.nan, 3.0, 4.0, 5.0]]),
        group_by=("host",),
        labels=[("a",)],
        step_ms=step,
    )
    asked = START + step * np.arange(5, dtype=np.int64)
    out = realign(shifted, window, asked)
    np.testing.assert_array_equal(out.times, asked)
    assert cells(out.values) == [[1.0, None, 3.0, 4.0, 5.0]]
    assert out.labels == [("a",)]


def test_realign_with_a_shift_that_is_not_a_whole_bucket() -> None:
    step = 60_000
    window = timeshift.shift_by_seconds(-90, START, START + 3 * step)
    # The shifted query's buckets start 90 s earlier; moved back, each lands inside an asked bucket.
    shifted = SeriesFrame(
        times=(START - 120_000) + step * np.arange(4, dtype=np.int64),
        values=np.array([[1.0, 2.0, 3.0, 4.0]]),
        group_by=(),
        labels=[()],
        step_ms=step,
    )
    out = realign(shifted, window, START + step * np.arange(3, dtype=np.int64))
    # Bucket -120 s moved by +90 s is at -30 s: before the window, dropped.
    assert cells(out.values) == [[2.0, 3.0, 4.0]]
    assert realign(shifted, window, np.zeros(0, dtype=np.int64)).values.shape == (1, 0)


def test_the_window_keeps_its_length() -> None:
    window = timeshift.calendar_shift_window(
        timeshift.parse_calendar_shift("-1mo"), "UTC", START, START + 7 * DAY_MS
    )
    assert window.end_ms - window.start_ms == 7 * DAY_MS
    assert window.offset_ms == START - window.start_ms > 27 * DAY_MS
