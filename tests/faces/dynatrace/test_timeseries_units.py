"""Stored units as the Timeseries API v1 names them, whichever vendor's spelling they were sent in."""

from __future__ import annotations

import pytest

from sextant.faces.dynatrace.units import UNITS, known_unit, v1_unit


@pytest.mark.parametrize(
    ("stored", "unit"),
    [
        # Dynatrace's names (dt.meta.unit), in any case, and its symbols, in theirs.
        ("MilliSecond", "MilliSecond (ms)"),
        ("millisecond", "MilliSecond (ms)"),
        ("BytePerSecond", "BytePerSecond (B/s)"),
        ("Count", "Count (count)"),
        ("Percent", "Percent (%)"),
        ("%", "Percent (%)"),
        ("mCores", "mCores"),
        ("M", "M"),
        ("Count(count)", "Count (count)"),
        ("Promille (‰)", "Promille (‰)"),
        # OpenTelemetry's UCUM codes.
        ("ms", "MilliSecond (ms)"),
        ("us", "MicroSecond (µs)"),
        ("s", "Second (s)"),
        ("By", "Byte (B)"),
        ("KiBy", "KibiByte (KiB)"),
        ("By/s", "BytePerSecond (B/s)"),
        ("1", "Ratio"),
        ("{request}", "Count (count)"),
        ("{request}/s", "PerSecond (count/s)"),
        ("{action}/min", "PerMinute (count/min)"),
        ("Hz", "Hertz (Hz)"),
        # Datadog's names.
        ("byte", "Byte (B)"),
        ("kibibyte", "KibiByte (KiB)"),
        ("nanosecond", "NanoSecond (ns)"),
        # Nothing the v1 list has: a prefix is not a unit, Celsius is not in the list.
        ("m", "Unspecified"),
        ("Cel", "Unspecified"),
        ("DegreeCelsius", "Unspecified"),
        ("request", "Unspecified"),
        ("", "Unspecified"),
        (None, "Unspecified"),
    ],
)
def test_stored_units_map_to_v1_units(stored: str | None, unit: str) -> None:
    assert v1_unit(stored) == unit


def test_every_v1_unit_maps_to_itself_and_registrations_take_names_only() -> None:
    for unit in UNITS:
        assert v1_unit(unit) == unit
        assert known_unit(unit) == unit
    assert known_unit("Bananas") is None
    assert known_unit("MicroSecond") == "MicroSecond (µs)"
