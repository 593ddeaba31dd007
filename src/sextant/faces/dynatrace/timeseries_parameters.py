"""The parameters of a Timeseries API v1 data request, from the query string (GET) or the
TimeseriesQueryMessage body (POST), checked as Dynatrace documents them.

Every violation is collected and answered at once, each naming its parameter as the client wrote it and
where it was (QUERY or PAYLOAD_BODY). Enumerations and booleans are read in any case (`avg`, `HOUR`,
`total`, `"false"`), as Dynatrace's own examples send them. A query parameter's name is read in any case
too (the documentation writes `detailedsource`), and `entities` / `tags` are taken for `entity` / `tag`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from sextant.faces.dynatrace.errors import ConstraintViolation, ParameterLocation
from sextant.faces.dynatrace.timeseries_messages import TimeseriesQueryMessage
from sextant.query.dynatrace_timeseries import (
    AGGREGATIONS,
    FILTER_TAGS,
    MAX_PREDICT_TIMEFRAME_MS,
    MAX_TIMEFRAME_MS,
    RELATIVE_TIMES,
)

MIN_PERCENTILE, MAX_PERCENTILE = 1, 99
QUERY_MODES = ("SERIES", "TOTAL")
SOURCES = ("ALL", "BUILTIN", "CUSTOM", "PLUGIN", "REMOTE_PLUGIN")
# Query parameters by their name in lower case; several spellings name one parameter.
_QUERY_NAMES = {
    "includedata": "includeData",
    "aggregationtype": "aggregationType",
    "starttimestamp": "startTimestamp",
    "endtimestamp": "endTimestamp",
    "predict": "predict",
    "relativetime": "relativeTime",
    "querymode": "queryMode",
    "entity": "entities",
    "entities": "entities",
    "tag": "tags",
    "tags": "tags",
    "percentile": "percentile",
    "includeparentids": "includeParentIds",
    "considermaintenancewindowsforavailability": "considerMaintenanceWindowsForAvailability",
    "timeseriesid": "timeseriesId",
    "source": "source",
    "detailedsource": "detailedSource",
}
_LISTS = ("entities", "tags")


class InvalidParameters(Exception):
    def __init__(self, violations: list[ConstraintViolation]) -> None:
        super().__init__("; ".join(f"{v.path}: {v.message}" for v in violations))
        self.violations = violations


@dataclass(frozen=True)
class Parameters:
    """What a request asks for. `aggregation` and the timeframe are None when it asks no data."""

    location: ParameterLocation
    # The name each parameter was given by (for messages): `entity` or `entities`, ...
    names: Mapping[str, str]
    include_data: bool = False
    aggregation: str | None = None
    percentile: int | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    total: bool = False
    predict: bool = False
    entities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    filters: Mapping[str, str] = field(default_factory=dict)
    include_parent_ids: bool = False
    timeseries_id: str | None = None
    source: str | None = None
    detailed_source: str | None = None

    def violation(self, parameter: str, message: str) -> ConstraintViolation:
        return ConstraintViolation(message, self.names.get(parameter, parameter), self.location)


def query_values(
    items: list[tuple[str, str]],
) -> tuple[dict[str, object], dict[str, str], list[ConstraintViolation]]:
    """Query parameters by their canonical name (lists for the repeatable ones), the name each was given
    by, and the violations of parameters given more than once. Unknown names are left out (`api-token`)."""
    values: dict[str, object] = {}
    names: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, value in items:
        canonical = _QUERY_NAMES.get(name.lower())
        if canonical is None:
            continue
        names.setdefault(canonical, name)
        if canonical in _LISTS:
            entries = values.setdefault(canonical, [])
            assert isinstance(entries, list)
            entries.append(value)
        else:
            counts[canonical] = counts.get(canonical, 0) + 1
            values.setdefault(canonical, value)
    repeated = [
        ConstraintViolation(f"given {n} times: give it once", names[c], "QUERY")
        for c, n in counts.items()
        if n > 1
    ]
    return values, names, repeated


def from_query(items: list[tuple[str, str]], now_ms: int, *, data: bool | None = None) -> Parameters:
    """The parameters of a GET. Data is asked for by `includeData=true`, or always (`data=True`)."""
    values, names, violations = query_values(items)
    return _checked(values, names, "QUERY", now_ms, violations, data)


def from_body(body: bytes, now_ms: int) -> Parameters:
    """The parameters of a POST: a TimeseriesQueryMessage, which always asks for data."""
    try:
        message = msgspec.json.decode(body, type=TimeseriesQueryMessage)
    except msgspec.ValidationError as exc:
        path, _, problem = _split_path(str(exc))
        raise InvalidParameters([ConstraintViolation(problem, path, "PAYLOAD_BODY")]) from None
    except msgspec.DecodeError as exc:
        raise InvalidParameters(
            [ConstraintViolation(f"the body is not valid JSON ({exc})", "body", "PAYLOAD_BODY")]
        ) from None
    values = {
        name: getattr(message, name)
        for name in message.__struct_fields__
        if getattr(message, name) is not None
    }
    names = {name: name for name in message.__struct_fields__}
    return _checked(values, names, "PAYLOAD_BODY", now_ms, [], True)


def _split_path(text: str) -> tuple[str, str, str]:
    """msgspec's "Expected `int`, got `str` - at `$.startTimestamp`" as (startTimestamp, ..., message)."""
    problem, _, where = text.rpartition(" - at `")
    if not problem:
        return "body", "", text
    path = where.rstrip("`").removeprefix("$").removeprefix(".") or "body"
    return path, "", problem


class _Checker:
    def __init__(self, values: Mapping[str, object], names: Mapping[str, str], location: ParameterLocation):
        self.values = values
        self.names = names
        self.location = location
        self.violations: list[ConstraintViolation] = []

    def refuse(self, parameter: str, message: str) -> None:
        self.violations.append(
            ConstraintViolation(message, self.names.get(parameter, parameter), self.location)
        )

    def boolean(self, parameter: str) -> bool:
        value = self.values.get(parameter)
        if value is None or isinstance(value, bool):
            return bool(value)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.refuse(parameter, f"must be true or false, not {value!r}")
        return False

    def integer(self, parameter: str, what: str) -> int | None:
        value = self.values.get(parameter)
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value)
        else:
            self.refuse(parameter, f"must be {what}, not {value!r}")
            return None
        return number

    def choice(self, parameter: str, allowed: tuple[str, ...], what: str) -> str | None:
        value = self.values.get(parameter)
        if value is None:
            return None
        assert isinstance(value, str)
        for option in allowed:
            if option.lower() == value.lower():
                return option
        self.refuse(parameter, f"{value!r} is not {what}: use one of {', '.join(allowed)}")
        return None

    def texts(self, parameter: str, what: str) -> tuple[str, ...]:
        value = self.values.get(parameter) or []
        assert isinstance(value, list)
        if any(not text.strip() for text in value):
            self.refuse(parameter, f"an empty {what} matches nothing: leave it out or name one")
        return tuple(dict.fromkeys(value))


def _checked(
    values: Mapping[str, object],
    names: Mapping[str, str],
    location: ParameterLocation,
    now_ms: int,
    violations: list[ConstraintViolation],
    data: bool | None,
) -> Parameters:
    check = _Checker(values, names, location)
    check.violations.extend(violations)
    include_data = check.boolean("includeData") if data is None else data
    aggregation = check.choice("aggregationType", AGGREGATIONS, "an aggregation type")
    percentile = check.integer("percentile", f"a whole number from {MIN_PERCENTILE} to {MAX_PERCENTILE}")
    mode = check.choice("queryMode", QUERY_MODES, "a query mode")
    predict = check.boolean("predict")
    include_parent_ids = check.boolean("includeParentIds")
    # No maintenance windows are kept: the flag is checked and has nothing to exclude.
    check.boolean("considerMaintenanceWindowsForAvailability")
    entities = check.texts("entities", "entity id")
    tags = check.texts("tags", "tag")
    filters = _filters(check)
    source = check.choice("source", SOURCES, "a source")
    timeframe = _timeframe(check, now_ms, include_data)
    if include_data and aggregation is None and "aggregationType" not in values:
        check.refuse(
            "aggregationType",
            f"required to read data points: one of {', '.join(sorted(AGGREGATIONS))}",
        )
    if aggregation == "PERCENTILE" and percentile is None and "percentile" not in values:
        check.refuse(
            "percentile",
            "required with aggregationType PERCENTILE: a whole number from "
            f"{MIN_PERCENTILE} to {MAX_PERCENTILE}",
        )
    if percentile is not None:
        if not MIN_PERCENTILE <= percentile <= MAX_PERCENTILE:
            check.refuse("percentile", f"must be from {MIN_PERCENTILE} to {MAX_PERCENTILE}, not {percentile}")
        elif aggregation is not None and aggregation != "PERCENTILE":
            check.refuse("percentile", f"applies only to aggregationType PERCENTILE, not {aggregation}")
    if predict and mode == "TOTAL":
        check.refuse("predict", "applies to queryMode SERIES only: TOTAL has no slots to predict")
    elif predict and timeframe is not None:
        length = timeframe[1] - timeframe[0]
        if length > MAX_PREDICT_TIMEFRAME_MS:
            check.refuse(
                "predict",
                f"predictions are made from timeframes of at most 30 minutes and this one is "
                f"{_duration(length)}: ask relativeTime=30mins or a shorter timeframe",
            )
    if check.violations:
        raise InvalidParameters(check.violations)
    timeseries_id = values.get("timeseriesId")
    detailed_source = values.get("detailedSource")
    return Parameters(
        location=location,
        names=names,
        include_data=include_data,
        aggregation=aggregation,
        percentile=percentile,
        start_ms=None if timeframe is None else timeframe[0],
        end_ms=None if timeframe is None else timeframe[1],
        total=mode == "TOTAL",
        predict=predict,
        entities=entities,
        tags=tags,
        filters=filters,
        include_parent_ids=include_parent_ids,
        timeseries_id=timeseries_id if isinstance(timeseries_id, str) else None,
        source=source,
        detailed_source=detailed_source if isinstance(detailed_source, str) else None,
    )


def _filters(check: _Checker) -> dict[str, str]:
    given = check.values.get("filters") or {}
    assert isinstance(given, dict)
    kept: dict[str, str] = {}
    for key, value in given.items():
        if key not in FILTER_TAGS:
            check.refuse(f"filters.{key}", f"not a filter key: use one of {', '.join(FILTER_TAGS)}")
        elif not value.strip():
            check.refuse(f"filters.{key}", "an empty filter value matches nothing: leave it out or name one")
        else:
            kept[key] = value
    return kept


def _timeframe(check: _Checker, now_ms: int, required: bool) -> tuple[int, int] | None:
    """[start, end) in UTC milliseconds, an end in the future taken as now."""
    relative = check.choice("relativeTime", tuple(RELATIVE_TIMES), "a relative timeframe")
    what = "a time in UTC milliseconds (a whole number)"
    start = check.integer("startTimestamp", what)
    end = check.integer("endTimestamp", what)
    given = {p for p in ("startTimestamp", "endTimestamp") if p in check.values}
    if "relativeTime" in check.values and given:
        check.refuse(
            "relativeTime",
            "relativeTime and startTimestamp/endTimestamp are mutually exclusive: give one or the other",
        )
        return None
    if relative is not None:
        return now_ms - RELATIVE_TIMES[relative], now_ms
    if len(given) == 1:
        missing, present = (
            ("endTimestamp", "startTimestamp")
            if "startTimestamp" in given
            else (
                "startTimestamp",
                "endTimestamp",
            )
        )
        check.refuse(missing, f"required with {present}: a timeframe is a startTimestamp and an endTimestamp")
        return None
    if not given:
        if required and "relativeTime" not in check.values:
            check.refuse(
                "relativeTime",
                "a timeframe is required to read data points: give relativeTime, or startTimestamp and "
                "endTimestamp",
            )
        return None
    if start is None or end is None:
        return None
    end = min(end, now_ms)
    if start >= end:
        check.refuse(
            "startTimestamp",
            f"must be earlier than endTimestamp ({end}; an endTimestamp in the future is taken as now)",
        )
        return None
    if end - start > MAX_TIMEFRAME_MS:
        check.refuse(
            "startTimestamp",
            f"the timeframe is {_duration(end - start)} long; the maximum allowed timeframe is 6 months "
            f"({MAX_TIMEFRAME_MS // 86_400_000} days)",
        )
        return None
    return start, end


def _duration(ms: int) -> str:
    for unit, length in (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000)):
        if ms >= length:
            return f"{ms / length:.4g} {unit}"
    return f"{ms / 1000:.4g} seconds"
