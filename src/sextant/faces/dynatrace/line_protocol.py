"""The Dynatrace metric ingestion protocol: one data point or one metadata line per line of text.

    metric.key,dim1=value,dim2="quoted value" payload [timestamp]
    #metric.key gauge|count dt.meta.unit=ms,dt.meta.displayName="Shown name"

Payloads: a bare number or `gauge,<v>` (a gauge), `gauge,min=,max=,sum=,count=` (a summary of several
measurements, all four required), `count,delta=<v>` (a delta of a counter). The timestamp is UTC
milliseconds. Dimension values are quoted (`\\"` and `\\\\` escaped) or bare (`\\` escapes `,`, `=`,
space, `"` and `\\`). The rules and limits are Dynatrace's documented ones; where its documents disagree
the stricter number is taken (250 characters for keys and dimension values, as its limits table and its
own client libraries say). A `#` followed by whitespace, or alone, is a comment.

Pure functions: nothing here knows about HTTP, organizations or the store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from sextant.core.timeutil import HOUR_MS

MAX_LINE_CHARS = 50_000
MAX_DIMENSIONS = 50
MIN_METRIC_KEY_CHARS = 3
MAX_METRIC_KEY_CHARS = 250
MAX_DIMENSION_KEY_CHARS = 100
MAX_DIMENSION_VALUE_CHARS = 250
# Data points may be at most this far from the server's clock.
MAX_PAST_MS = HOUR_MS
MAX_FUTURE_MS = 10 * 60_000
RESERVED_METRIC_PREFIX = "dt."
# Metadata properties and their length limits, as Dynatrace's client libraries enforce them.
METADATA_PROPERTIES = {"displayname": "displayName", "description": "description", "unit": "unit"}
MAX_METADATA_CHARS = {"displayName": 300, "description": 65_535, "unit": 63}
# Dynatrace's own tolerance for min <= sum/count <= max.
SUMMARY_TOLERANCE = 0.000001

PayloadFormat = Literal["gauge", "count"]

_METRIC_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")
_DIMENSION_KEY = re.compile(r"[a-z_][a-z0-9_:-]*(?:\.[a-z_][a-z0-9_:-]*)*")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DIGITS = re.compile(r"\d+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_BARE = re.compile(r'(?:[^,= \t"\\]|\\.)*', re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHITESPACE = " \t"
_SPACES = re.compile(r"[ \t]*")
_TOKENS = {stops: re.compile(rf"[^ \t{stops}]*") for stops in ("", ",", ",=")}
_PAYLOAD_HELP = "send 42, gauge,42, gauge,min=1,max=5,sum=6,count=2 or count,delta=5"


class LineError(ValueError):
    """Why a line is refused; `identifier` is its metric key when that much could be read."""

    def __init__(self, message: str, identifier: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.identifier = identifier


@dataclass(frozen=True, slots=True)
class Gauge:
    value: float


@dataclass(frozen=True, slots=True)
class Summary:
    """Several measurements of a gauge, summarized by the sender."""

    min: float
    max: float
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class Delta:
    """How much a counter changed since the previous data point."""

    value: float


@dataclass(frozen=True, slots=True)
class DataLine:
    metric: str
    # In the order sent; a key given twice keeps its first value.
    dimensions: tuple[tuple[str, str], ...]
    payload: Gauge | Summary | Delta
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class MetadataLine:
    metric: str
    payload_format: PayloadFormat
    unit: str | None = None
    display_name: str | None = None
    description: str | None = None


Parsed = DataLine | MetadataLine | LineError


def parse_payload(body: bytes, encoding: str = "utf-8") -> Iterator[tuple[int, Parsed]]:
    """Each line that carries something, with its 1-based number (blank lines and comments count in
    the numbering, as an editor shows them, and are skipped). A line that cannot be decoded is a
    LineError; the others are unaffected."""
    if encoding == "utf-8" and body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        lines: list[str | bytes] = list(body.decode(encoding).split("\n"))
    except UnicodeDecodeError:
        lines = list(body.split(b"\n"))
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError as exc:
                yield number, LineError(f"line is not valid {encoding} (byte {exc.start + 1}: {exc.reason})")
                continue
        else:
            text = raw
        try:
            parsed = parse_line(text)
        except LineError as exc:
            yield number, exc
            continue
        if parsed is not None:
            yield number, parsed


def parse_line(text: str) -> DataLine | MetadataLine | None:
    """One line (without its newline); None when it carries nothing. Raises LineError."""
    line = text.rstrip(" \t\r")
    if not line:
        return None
    if len(line) > MAX_LINE_CHARS:
        raise LineError(f"line is {len(line)} characters long; at most {MAX_LINE_CHARS} are allowed")
    if line[0] == "#":
        if len(line) == 1 or line[1] in _WHITESPACE:
            return None
        return _metadata_line(line[1:])
    return _data_line(line)


def check_timestamp(timestamp_ms: int, now_ms: int) -> str | None:
    """Why Dynatrace would reject a data point's time, or None: it takes 1 hour back, 10 minutes ahead."""
    if timestamp_ms < now_ms - MAX_PAST_MS or timestamp_ms > now_ms + MAX_FUTURE_MS:
        return (
            f"timestamp {timestamp_ms} is outside the accepted range: UTC milliseconds between "
            f"{now_ms - MAX_PAST_MS} (1 hour ago) and {now_ms + MAX_FUTURE_MS} (10 minutes ahead)"
        )
    return None


# --- data lines -------------------------------------------------------------------------------------------


def _data_line(line: str) -> DataLine:
    end = _token_end(line, 0, ",")
    metric = line[:end]
    _check_metric_key(metric)
    dimensions: tuple[tuple[str, str], ...] = ()
    pos = end
    if pos < len(line) and line[pos] == ",":
        dimensions, pos = _dimensions(line, pos + 1, metric)
    if pos >= len(line):
        raise LineError(f"missing payload after the metric key and dimensions: {_PAYLOAD_HELP}", metric)
    pos = _skip_whitespace(line, pos)
    end = _token_end(line, pos)
    payload = _payload(line[pos:end], metric)
    pos = _skip_whitespace(line, end)
    timestamp = None
    if pos < len(line):
        end = _token_end(line, pos)
        timestamp = _timestamp(line[pos:end], metric)
        pos = _skip_whitespace(line, end)
        if pos < len(line):
            raise LineError(f"unexpected text {_excerpt(line[pos:])} after the timestamp", metric)
    return DataLine(metric, dimensions, payload, timestamp)


def _check_metric_key(key: str) -> None:
    problem = _metric_key_problem(key)
    if problem is not None:
        raise LineError(problem, key[:MAX_METRIC_KEY_CHARS] or None)


# Payloads repeat their keys line after line: each distinct key is judged once.
@lru_cache(maxsize=4096)
def _metric_key_problem(key: str) -> str | None:
    if not key:
        return "invalid metric key: the line must start with the metric key, not with whitespace"
    if len(key) > MAX_METRIC_KEY_CHARS:
        return f"invalid metric key: it is {len(key)} characters long; at most {MAX_METRIC_KEY_CHARS} allowed"
    if _METRIC_KEY.fullmatch(key) is None:
        return (
            f"invalid metric key {_excerpt(key)}: use sections of letters, digits, hyphens and "
            "underscores separated by dots; the key starts with a letter or an underscore, no section "
            "starts with a hyphen or is empty"
        )
    if len(key) < MIN_METRIC_KEY_CHARS:
        return f"invalid metric key {key!r}: it must be at least {MIN_METRIC_KEY_CHARS} characters long"
    if key.lower().startswith(RESERVED_METRIC_PREFIX):
        return f"invalid metric key {key!r}: the prefix 'dt.' is reserved for Dynatrace"
    return None


def _dimensions(line: str, pos: int, metric: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """The dimensions from `pos` up to the whitespace before the payload, and where that whitespace is."""
    dimensions: dict[str, str] = {}
    written = 0
    n = len(line)
    while True:
        end = _token_end(line, pos, ",=")
        key = line[pos:end]
        if end >= n or line[end] != "=":
            if not key:
                raise LineError(
                    f"empty dimension after {_excerpt(line[:pos])}: remove the extra comma", metric
                )
            raise LineError(f"dimension {_excerpt(key)} has no value: write {key}=value", metric)
        problem = _dimension_key_problem(key)
        if problem is not None:
            raise LineError(problem, metric)
        value, pos = _value(line, end + 1, "dimension", key, metric)
        if not value:
            raise LineError(f"dimension {key!r} has an empty value", metric)
        if len(value) > MAX_DIMENSION_VALUE_CHARS:
            raise LineError(
                f"the value of dimension {key!r} is {len(value)} characters long; at most "
                f"{MAX_DIMENSION_VALUE_CHARS} are allowed",
                metric,
            )
        written += 1
        if written > MAX_DIMENSIONS:
            raise LineError(
                f"more than {MAX_DIMENSIONS} dimensions; at most {MAX_DIMENSIONS} are allowed", metric
            )
        dimensions.setdefault(key, value)
        if pos >= n or line[pos] in _WHITESPACE:
            return tuple(dimensions.items()), pos
        if line[pos] != ",":
            raise LineError(
                f"unexpected {line[pos]!r} after the value of dimension {key!r}: separate dimensions with "
                "commas and the payload with a space",
                metric,
            )
        pos += 1


@lru_cache(maxsize=4096)
def _dimension_key_problem(key: str) -> str | None:
    if not key:
        return "empty dimension key: write key=value"
    if len(key) > MAX_DIMENSION_KEY_CHARS:
        return (
            f"dimension key {key[:40]!r}... is {len(key)} characters long; at most "
            f"{MAX_DIMENSION_KEY_CHARS} are allowed"
        )
    if _DIMENSION_KEY.fullmatch(key) is None:
        return (
            f"invalid dimension key {_excerpt(key)}: use lowercase letters, digits, hyphens, colons and "
            "underscores in sections separated by dots, each starting with a lowercase letter or an "
            "underscore"
        )
    return None


def _value(line: str, pos: int, kind: str, name: str, metric: str) -> tuple[str, int]:
    """A quoted or bare value (of the `kind` called `name`) starting at `pos`, unescaped, and the position
    after it."""
    if pos < len(line) and line[pos] == '"':
        quoted = _QUOTED.match(line, pos)
        if quoted is None:
            raise LineError(f"the value of {kind} {name!r} has no closing quote", metric)
        value, end = quoted.group(1), quoted.end()
    else:
        bare = _BARE.match(line, pos)
        assert bare is not None  # the pattern matches the empty string
        value, end = bare.group(), bare.end()
        if end < len(line) and line[end] in '"=\\':
            raise LineError(
                f"the value of {kind} {name!r} has an unescaped {line[end]!r}: quote the value, or escape "
                "the character with a backslash",
                metric,
            )
    if "\\" in value:
        value = _ESCAPED.sub(_unescaped, value)
    if _CONTROL.search(value):
        raise LineError(f"the value of {kind} {name!r} contains a control character", metric)
    return value, end


def _unescaped(match: re.Match[str]) -> str:
    return match.group(1)


# --- payloads ---------------------------------------------------------------------------------------------


def _payload(token: str, metric: str) -> Gauge | Summary | Delta:
    kind, comma, rest = token.partition(",")
    if not comma:
        if token in ("gauge", "count"):
            raise LineError(f"the {token} payload has no value: {_PAYLOAD_HELP}", metric)
        if _NUMBER.fullmatch(token) is None:
            raise LineError(
                f"invalid payload {_excerpt(token)}: {_PAYLOAD_HELP} (a dimension value with spaces must "
                "be quoted)",
                metric,
            )
        return Gauge(_number(token, "value", metric))
    if kind == "gauge":
        if "=" in rest:
            return _summary(rest, metric)
        return Gauge(_number(rest, "gauge value", metric))
    if kind == "count":
        name, equals, value = rest.partition("=")
        if not equals:
            raise LineError(f"a count payload takes its value as a delta: write count,delta={rest}", metric)
        if name != "delta":
            raise LineError(f"unknown count field {name!r}: write count,delta=<value>", metric)
        return Delta(_number(value, "delta", metric))
    raise LineError(f"invalid payload type {_excerpt(kind)}: use gauge or count ({_PAYLOAD_HELP})", metric)


def _summary(fields: str, metric: str) -> Summary:
    values: dict[str, str] = {}
    for field in fields.split(","):
        name, equals, value = field.partition("=")
        if name not in ("min", "max", "sum", "count") or not equals:
            raise LineError(
                f"invalid gauge field {_excerpt(field)}: a summary has min, max, sum and count", metric
            )
        if name in values:
            raise LineError(f"gauge field {name!r} is given twice", metric)
        values[name] = value
    missing = [name for name in ("min", "max", "sum", "count") if name not in values]
    if missing:
        raise LineError(
            f"a gauge summary needs all of min, max, sum and count; missing: {', '.join(missing)}", metric
        )
    low, high, total = (_number(values[name], name, metric) for name in ("min", "max", "sum"))
    if _DIGITS.fullmatch(values["count"]) is None:
        raise LineError(f"count {_excerpt(values['count'])} is not a whole number of measurements", metric)
    count = int(values["count"])
    if count == 0:
        raise LineError("count is 0: a data point summarizes at least one measurement", metric)
    average = total / count
    tolerance = SUMMARY_TOLERANCE * max(1.0, abs(low), abs(high))
    if not low - tolerance <= average <= high + tolerance:
        raise LineError(
            f"inconsistent gauge fields: min <= avg <= max doesn't hold: min: {low:f}, max: {high:f}, "
            f"sum: {total:f}, count: {count}, avg: {average:f}, tolerance: {SUMMARY_TOLERANCE:f}",
            metric,
        )
    return Summary(low, high, total, count)


def _number(text: str, what: str, metric: str) -> float:
    if _NUMBER.fullmatch(text) is None:
        raise LineError(f"{what} {_excerpt(text)} is not a number: {_PAYLOAD_HELP}", metric)
    value = float(text)
    if not math.isfinite(value):
        raise LineError(f"{what} {_excerpt(text)} is out of the range of a double", metric)
    return value


def _timestamp(text: str, metric: str) -> int:
    if _DIGITS.fullmatch(text) is None:
        raise LineError(
            f"invalid timestamp {_excerpt(text)}: send UTC milliseconds as a whole number, or no timestamp",
            metric,
        )
    return int(text)


# --- metadata lines ---------------------------------------------------------------------------------------


def _metadata_line(line: str) -> MetadataLine:
    """`line` without its `#`."""
    end = _token_end(line, 0)
    metric = line[:end]
    _check_metric_key(metric)
    pos = _skip_whitespace(line, end)
    end = _token_end(line, pos)
    payload_format: PayloadFormat
    if line[pos:end] == "gauge":
        payload_format = "gauge"
    elif line[pos:end] == "count":
        payload_format = "count"
    else:
        raise LineError(
            f"a metadata line names the payload format after the key: #{metric} gauge|count dt.meta.unit=...",
            metric,
        )
    pos = _skip_whitespace(line, end)
    if pos >= len(line):
        raise LineError(
            f"the metadata line has no properties: add dt.meta.unit, dt.meta.displayName or "
            f"dt.meta.description, e.g. #{metric} {payload_format} dt.meta.unit=ms",
            metric,
        )
    properties: dict[str, str] = {}
    while True:
        end = _token_end(line, pos, ",=")
        name = line[pos:end]
        prefix, _, short = name.partition("dt.meta.")
        canonical = METADATA_PROPERTIES.get(short.lower()) if not prefix else None
        if canonical is None:
            raise LineError(
                f"unknown metadata property {_excerpt(name)}: use dt.meta.unit, dt.meta.displayName or "
                "dt.meta.description",
                metric,
            )
        if end >= len(line) or line[end] != "=":
            raise LineError(f"metadata property {name!r} has no value: write {name}=value", metric)
        value, pos = _value(line, end + 1, "metadata property", name, metric)
        if not value:
            raise LineError(f"metadata property {name!r} has an empty value", metric)
        limit = MAX_METADATA_CHARS[canonical]
        if len(value) > limit:
            raise LineError(
                f"metadata property {name!r} is {len(value)} characters long; at most {limit} are allowed",
                metric,
            )
        properties.setdefault(canonical, value)
        if pos >= len(line):
            break
        if line[pos] != ",":
            raise LineError(
                f"unexpected text {_excerpt(line[pos:])} after metadata property {name!r}: separate "
                "properties with commas, and quote values that contain spaces",
                metric,
            )
        pos = _skip_whitespace(line, pos + 1)
    return MetadataLine(
        metric,
        payload_format,
        unit=properties.get("unit"),
        display_name=properties.get("displayName"),
        description=properties.get("description"),
    )


# --- scanning ---------------------------------------------------------------------------------------------


def _token_end(line: str, pos: int, stops: str = "") -> int:
    """The position of the first whitespace (or character of `stops`) from `pos`, or the line's end."""
    match = _TOKENS[stops].match(line, pos)
    assert match is not None  # every pattern matches the empty string
    return match.end()


def _skip_whitespace(line: str, pos: int) -> int:
    match = _SPACES.match(line, pos)
    assert match is not None
    return match.end()


def _excerpt(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:60]) + "..."
