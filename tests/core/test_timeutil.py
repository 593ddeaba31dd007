"""The window of accepted event times, as the native intake passes and the Python check both use it."""

from __future__ import annotations

from sextant.core.timeutil import accepted_times, check_event_time

NOW = 1_780_000_000_000


def test_the_accepted_window_is_what_the_event_time_check_accepts() -> None:
    earliest, latest = accepted_times(NOW)
    assert check_event_time(earliest, NOW) is None
    assert check_event_time(latest, NOW) is None
    assert "15 months in the past" in (check_event_time(earliest - 1, NOW) or "")
    assert "1 hour in the future" in (check_event_time(latest + 1, NOW) or "")
    assert latest - NOW == 3_600_000
