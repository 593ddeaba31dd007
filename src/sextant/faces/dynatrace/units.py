"""Units as the Timeseries API v1 names them (`"MilliSecond (ms)"`), from the units senders gave.

The store keeps a unit as its sender wrote it: a Dynatrace name (`MilliSecond`, from `dt.meta.unit`), an
OpenTelemetry UCUM code (`ms`, `By`, `{request}`), a Datadog name (`millisecond`, `byte`). The v1 API
answers one of its own fixed list, which generated clients read as an enum, so every stored unit maps to
one of them: by the Dynatrace name (any case), by the symbol in its parentheses (exact case: `M` is a
million, `m/s` a speed), by what the unit catalog (core/units.py) reads it as (UCUM codes, Datadog
names); a UCUM annotation alone (`{request}`) is a count; anything else, or no unit, is `Unspecified`.
"""

from __future__ import annotations

import re

from sextant.core.units import parse_metric_unit

# The units of the Timeseries API v1 documentation, as it writes them.
UNITS = (
    "Ampere (A)",
    "Billion (Gcount)",
    "Bit (bit)",
    "BitPerHour (bit/h)",
    "BitPerMinute (bit/min)",
    "BitPerSecond (bit/s)",
    "Byte (B)",
    "BytePerHour (B/h)",
    "BytePerMinute (B/min)",
    "BytePerSecond (B/s)",
    "Cores",
    "Count (count)",
    "Day (ds)",
    "DecibelMilliWatt (dBm)",
    "G",
    "GibiByte (GiB)",
    "GibiBytePerHour (GiB/h)",
    "GibiBytePerMinute (GiB/min)",
    "GibiBytePerSecond (GiB/s)",
    "GigaByte (GB)",
    "GigaBytePerHour (GB/h)",
    "GigaBytePerMinute (GB/min)",
    "GigaBytePerSecond (GB/s)",
    "Hertz (Hz)",
    "Hour (hs)",
    "KibiByte (KiB)",
    "KibiBytePerHour (KiB/h)",
    "KibiBytePerMinute (KiB/min)",
    "KibiBytePerSecond (KiB/s)",
    "KiloByte (kB)",
    "KiloBytePerHour (kB/h)",
    "KiloBytePerMinute (kB/min)",
    "KiloBytePerSecond (kB/s)",
    "M",
    "MSU",
    "MebiByte (MiB)",
    "MebiBytePerHour (MiB/h)",
    "MebiBytePerMinute (MiB/min)",
    "MebiBytePerSecond (MiB/s)",
    "MegaByte (MB)",
    "MegaBytePerHour (MB/h)",
    "MegaBytePerMinute (MB/min)",
    "MegaBytePerSecond (MB/s)",
    "MicroSecond (µs)",
    "MilliSecond (ms)",
    "MilliSecondPerMinute (ms/min)",
    "Million (Mcount)",
    "Minute (mins)",
    "Month (mos)",
    "N/A",
    "NanoSecond (ns)",
    "NanoSecondPerMinute (ns/min)",
    "PerHour (count/h)",
    "PerMinute (count/min)",
    "PerSecond (count/s)",
    "Percent (%)",
    "Pixel (px)",
    "Promille (‰)",
    "Ratio",
    "Second (s)",
    "State",
    "Trillion (Tcount)",
    "Unspecified",
    "Volt (V)",
    "Watt (W)",
    "Week (ws)",
    "Year (ys)",
    "k",
    "km/h",
    "m/h",
    "m/s",
    "mCores",
)
COUNT = "Count (count)"
UNSPECIFIED = "Unspecified"

_FULL = re.compile(r"^(\w+)\s*\((.+)\)$")
# Dimensionless UCUM codes: the unit catalog (core/units.py) names no unit for them.
_DIMENSIONLESS = {
    "1": "Ratio",
    "1/s": "PerSecond (count/s)",
    "1/min": "PerMinute (count/min)",
    "1/h": "PerHour (count/h)",
}
_ANNOTATION = re.compile(r"^\{[^{}]*\}(/(s|min|h))?$")
_ANNOTATED_RATES = {
    None: COUNT,
    "s": "PerSecond (count/s)",
    "min": "PerMinute (count/min)",
    "h": "PerHour (count/h)",
}


def _tables() -> tuple[dict[str, str], dict[str, str]]:
    by_name: dict[str, str] = {}
    by_symbol: dict[str, str] = {}
    for unit in UNITS:
        match = _FULL.match(unit)
        if match is None:
            by_symbol[unit] = unit
            # Words only: `M`, `G` and `k` are prefixes whose case matters (`m` is not a million).
            if unit.isalpha() and len(unit) > 1:
                by_name[unit.lower()] = unit
        else:
            by_name[match.group(1).lower()] = unit
            by_symbol[match.group(2)] = unit
    return by_name, by_symbol


_BY_NAME, _BY_SYMBOL = _tables()


def known_unit(unit: str) -> str | None:
    """The v1 unit `unit` names (in full, with or without the space before its symbol, by name in any case,
    or by symbol), or None."""
    text = unit.strip()
    match = _FULL.match(text)
    if match is not None:
        text = match.group(1)
    return _BY_NAME.get(text.lower()) or _BY_SYMBOL.get(text)


def v1_unit(stored: str | None) -> str:
    """The v1 unit for a stored unit (see the module's rules)."""
    if not stored:
        return UNSPECIFIED
    text = stored.strip()
    known = known_unit(text) or _DIMENSIONLESS.get(text)
    if known is not None:
        return known
    annotated = _ANNOTATION.match(text)
    if annotated is not None:
        return _ANNOTATED_RATES[annotated.group(2)]
    # Any other spelling the unit catalog reads (UCUM codes, Datadog names): Dynatrace names its units
    # by the catalog's names run together, `BytePerSecond` for byte per second.
    parsed = parse_metric_unit(text)
    if parsed is None:
        return UNSPECIFIED
    name = parsed.unit.name + ("per" + parsed.per.name if parsed.per is not None else "")
    return _BY_NAME.get(name.replace(" ", "").lower(), UNSPECIFIED)
