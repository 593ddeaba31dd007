"""Product Analytics analytics requests (`/analytics/scalar|timeseries|list`): their shape, and their
translation into the core event query IR. Every refusal is a `RequestError` whose message says what to fix.
"""

from __future__ import annotations

import re
from typing import Literal, Protocol, overload

import msgspec

from sextant.query.audience_formula import FormulaError, parse_audience_formula
from sextant.query.events import (
    Aggregation,
    Audience,
    AudienceSet,
    EntitiesMatching,
    EventListQuery,
    EventQuery,
    GroupBy,
    Occurrence,
    StoredSet,
)
from sextant.query.filters import Field, Filter
from sextant.query.planning import QueryLimitError, check_limits, default_interval_ms
from sextant.query.search_syntax import SearchSyntaxError, parse_search

ANALYTICS_TYPE = "formula_analytics_extended_request"
LIST_TYPE = "formula_analytics_extended_list_request"
DATA_SOURCES = ("product_analytics", "product_analytics_occurrence")
MISSING_LABEL = "N/A"
MAX_LIST_LIMIT = 1000


class RequestError(ValueError):
    pass


# --- the request shape (Datadog's models; unknown fields are ignored, as its clients add new ones) -------


class Occurrences(msgspec.Struct):
    operator: str
    value: str
    meta: dict[str, str] | None = None


class Search(msgspec.Struct):
    query: str = "*"
    occurrences: Occurrences | None = None


class BaseQuery(msgspec.Struct):
    data_source: str
    search: Search


class Compute(msgspec.Struct):
    aggregation: str
    interval: int | None = None
    metric: str | None = None


class GroupBySort(msgspec.Struct):
    aggregation: str | None = None
    metric: str | None = None
    order: Literal["asc", "desc"] = "desc"


class GroupBySpec(msgspec.Struct):
    facet: str
    limit: int = 10
    should_exclude_missing: bool = False
    sort: GroupBySort | None = None
    source: str | None = None


class AudienceQuery(msgspec.Struct):
    name: str
    query: str = "*"


class AudienceSegment(msgspec.Struct):
    name: str
    segment_id: str


class AudienceFilters(msgspec.Struct):
    users: list[AudienceQuery] = []
    accounts: list[AudienceQuery] = []
    segments: list[AudienceSegment] = []
    formula: str | None = None


class AnalyticsQuery(msgspec.Struct):
    query: BaseQuery
    compute: Compute
    group_by: list[GroupBySpec] = []
    audience_filters: AudienceFilters | None = None
    indexes: list[str] | None = None


class AnalyticsAttributes(msgspec.Struct, rename={"start": "from"}):
    start: int
    to: int
    query: AnalyticsQuery
    request_id: str | None = None
    enforced_execution_type: str | None = None


class AnalyticsData(msgspec.Struct):
    type: str
    attributes: AnalyticsAttributes


class AnalyticsRequest(msgspec.Struct):
    """`ProductAnalyticsAnalyticsRequest`: the body of `/analytics/scalar` and `/analytics/timeseries`."""

    data: AnalyticsData


class ListSort(msgspec.Struct):
    facet: str | None = None
    order: Literal["asc", "desc"] = "desc"


class ListQuery(msgspec.Struct):
    query: BaseQuery
    columns: list[str] = []
    limit: int = 10
    sort: ListSort | None = None
    audience_filters: AudienceFilters | None = None


class ListAttributes(msgspec.Struct, rename={"start": "from"}):
    start: int
    to: int
    query: ListQuery


class ListData(msgspec.Struct):
    type: str
    attributes: ListAttributes


class ListRequest(msgspec.Struct):
    """`ProductAnalyticsAnalyticsListRequest`: the body of `/analytics/list`."""

    data: ListData


def decode(body: bytes, kind: type[msgspec.Struct]) -> msgspec.Struct:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise RequestError(f"invalid request: {exc}") from None
    except msgspec.DecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError("request body is nested too deeply") from None


# --- translation ------------------------------------------------------------------------------------------

_PERCENTILE = re.compile(r"^pc(\d{1,2}(?:\.\d+)?)$")
_SIMPLE = {"sum", "avg", "min", "max"}
_OPERATORS = {"=": "=", ">": ">", ">=": ">=", "<": "<", "<=": "<=",
              "eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}  # fmt: skip


def facet_field(facet: str, what: str) -> Field:
    """`@customer.tier` (or `customer.tier`) as a field."""
    path = facet[1:] if facet.startswith("@") else facet
    if not path or path.startswith(".") or path.endswith(".") or '"' in path or len(path) > 512:
        raise RequestError(f"{what} {facet!r} is not a valid facet path")
    return Field(path)


def aggregation(name: str, metric: str | None, what: str) -> Aggregation:
    if name == "count":
        return Aggregation("count")
    if name in _SIMPLE or name in ("cardinality", "median") or _PERCENTILE.match(name):
        if not metric:
            raise RequestError(f'{what}: aggregation {name!r} needs a metric (for example "@amount")')
        field = facet_field(metric, f"{what} metric")
        if name == "cardinality" or name in _SIMPLE:
            return Aggregation(name, field)  # type: ignore[arg-type]
        if name == "median":
            return Aggregation("percentile", field, 0.5)
        percent = float(name[2:])
        if not 0 < percent < 100:
            raise RequestError(f"{what}: percentile {name!r} must be between pc0 and pc100, exclusive")
        return Aggregation("percentile", field, percent / 100)
    raise RequestError(
        f"{what}: unknown aggregation {name!r}; use count, cardinality, sum, avg, min, max, median or pcNN"
    )


def search_filter(query: str, what: str) -> Filter:
    try:
        return parse_search(query)
    except SearchSyntaxError as exc:
        raise RequestError(f"{what}: {exc}") from None


def occurrence(search: Search, data_source: str) -> Occurrence | None:
    if data_source not in DATA_SOURCES:
        raise RequestError(f"unknown data_source {data_source!r}; use one of {', '.join(DATA_SOURCES)}")
    if data_source == "product_analytics":
        return None
    spec = search.occurrences
    if spec is None:
        raise RequestError(
            "data_source product_analytics_occurrence needs search.occurrences {operator, value}"
        )
    op = _OPERATORS.get(spec.operator.strip())
    if op is None:
        raise RequestError(f"unknown occurrences.operator {spec.operator!r}; use =, >, >=, < or <=")
    if not spec.value.strip().isdigit():
        raise RequestError(f"occurrences.value must be a whole number as a string, got {spec.value!r}")
    return Occurrence(op, int(spec.value.strip()))  # type: ignore[arg-type]


class SegmentSource(Protocol):
    def segment(self, org_id: int, segment_id: str) -> list[str] | None:
        """The segment's user ids, or None when the organization has no such segment."""


def audience(spec: AudienceFilters | None, org_id: int, segments: SegmentSource) -> Audience | None:
    if spec is None or not (spec.users or spec.accounts or spec.segments):
        if spec is not None and spec.formula and spec.formula.strip():
            raise RequestError(
                "audience_filters.formula names sets, but no users, accounts or segments are defined"
            )
        return None
    sets: dict[str, AudienceSet] = {}

    def define(name: str, value: AudienceSet) -> None:
        if not name:
            raise RequestError("every audience filter needs a non-empty name")
        if name in sets:
            raise RequestError(f"audience filter name {name!r} is used twice; names must be unique")
        sets[name] = value

    for user in spec.users:
        define(
            user.name,
            EntitiesMatching(Field("usr.id"), search_filter(user.query, f"users[{user.name}].query")),
        )
    for account in spec.accounts:
        define(
            account.name,
            EntitiesMatching(
                Field("account.id"), search_filter(account.query, f"accounts[{account.name}].query")
            ),
        )
    for seg in spec.segments:
        if not re.fullmatch(r"[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", seg.segment_id):
            raise RequestError(f"segments[{seg.name}].segment_id {seg.segment_id!r} is not a UUID")
        ids = segments.segment(org_id, seg.segment_id)
        if ids is None:
            raise RequestError(f"segment {seg.segment_id} does not exist in this organization")
        define(seg.name, StoredSet(Field("usr.id"), tuple(ids)))
    try:
        formula = parse_audience_formula(spec.formula or "", list(sets))
    except FormulaError as exc:
        raise RequestError(str(exc)) from None
    return Audience(sets, formula)


@overload
def _checked(data: AnalyticsData, kind: str) -> AnalyticsAttributes: ...
@overload
def _checked(data: ListData, kind: str) -> ListAttributes: ...
def _checked(data: AnalyticsData | ListData, kind: str) -> AnalyticsAttributes | ListAttributes:
    """The request's attributes, once its type and time range are right."""
    if data.type != kind:
        raise RequestError(f"data.type must be {kind!r}, not {data.type!r}")
    if data.attributes.start >= data.attributes.to:
        raise RequestError(f"from ({data.attributes.start}) must be less than to ({data.attributes.to})")
    return data.attributes


def event_query(
    request: AnalyticsRequest, org_id: int, segments: SegmentSource, *, timeseries: bool
) -> tuple[EventQuery, AnalyticsQuery]:
    attrs = _checked(request.data, ANALYTICS_TYPE)
    spec = attrs.query
    if spec.indexes is not None and len(spec.indexes) > 1:
        raise RequestError(f"indexes holds at most one index; got {len(spec.indexes)}")
    compute = aggregation(spec.compute.aggregation, spec.compute.metric, "compute")
    groups = []
    for i, g in enumerate(spec.group_by):
        sort = g.sort or GroupBySort()
        rank = (
            compute
            if sort.aggregation is None
            else aggregation(sort.aggregation, sort.metric or spec.compute.metric, f"group_by[{i}].sort")
        )
        groups.append(
            GroupBy(
                field=facet_field(g.facet, f"group_by[{i}].facet"),
                limit=g.limit,
                rank_by=rank,
                descending=sort.order == "desc",
                include_missing=not g.should_exclude_missing,
                missing_label=MISSING_LABEL,
            )
        )
    interval = None
    if timeseries:
        interval = spec.compute.interval or default_interval_ms(attrs.start, attrs.to)
    query = EventQuery(
        org_id=org_id,
        start_ms=attrs.start,
        end_ms=attrs.to,
        filter=search_filter(spec.query.search.query, "search.query"),
        aggregation=compute,
        group_by=tuple(groups),
        interval_ms=interval,
        audience=audience(spec.audience_filters, org_id, segments),
        occurrence=occurrence(spec.query.search, spec.query.data_source),
    )
    try:
        check_limits(query)
    except QueryLimitError as exc:
        raise RequestError(str(exc)) from None
    return query, spec


def list_query(request: ListRequest, org_id: int, segments: SegmentSource) -> EventListQuery:
    attrs = _checked(request.data, LIST_TYPE)
    spec = attrs.query
    if not 1 <= spec.limit <= MAX_LIST_LIMIT:
        raise RequestError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {spec.limit}")
    sort = spec.sort or ListSort()
    return EventListQuery(
        org_id=org_id,
        start_ms=attrs.start,
        end_ms=attrs.to,
        filter=search_filter(spec.query.search.query, "search.query"),
        columns=tuple(facet_field(c, "columns") for c in spec.columns),
        limit=spec.limit,
        sort_field=None
        if sort.facet in (None, "", "timestamp", "@timestamp")
        else facet_field(sort.facet, "sort.facet"),
        descending=sort.order == "desc",
        audience=audience(spec.audience_filters, org_id, segments),
        occurrence=occurrence(spec.query.search, spec.query.data_source),
    )
