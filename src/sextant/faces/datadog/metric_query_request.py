"""The request shapes of Datadog's metric query APIs (`/api/v2/query/timeseries`, `/api/v2/query/scalar`)
as the official clients send them. Unknown fields are ignored, as the clients add new ones."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from sextant.faces.datadog.analytics_request import Compute, GroupBySpec


class QuerySearch(msgspec.Struct):
    query: str = "*"


class FormulaLimit(msgspec.Struct):
    count: int | None = None
    order: Literal["asc", "desc"] = "desc"


class QueryFormula(msgspec.Struct):
    formula: str
    limit: FormulaLimit | None = None
    alias: str | None = None


class DataQuery(msgspec.Struct):
    """A metrics query (`query`, and `aggregator` for scalars) or an events query (`compute`, `search`,
    `group_by`) of a data source such as logs or product_analytics."""

    data_source: str
    name: str | None = None
    query: str | None = None
    aggregator: str | None = None
    compute: Compute | None = None
    search: QuerySearch | None = None
    group_by: list[GroupBySpec] | None = None
    indexes: list[str] | None = None


class QueryAttributes(msgspec.Struct, rename={"start": "from", "end": "to"}):
    start: int
    end: int
    queries: list[DataQuery]
    formulas: list[QueryFormula] | None = None
    interval: int | None = None


class QueryData(msgspec.Struct):
    type: str
    attributes: QueryAttributes


class QueryRequest(msgspec.Struct):
    """Body of `POST /api/v2/query/timeseries` and `/api/v2/query/scalar`."""

    data: QueryData


# --- responses -------------------------------------------------------------------------------------------


class UnitObject(msgspec.Struct):
    """Datadog's description of one unit (`id` is in real answers, though not in the OpenAPI spec)."""

    family: str
    name: str
    plural: str
    scale_factor: float
    short_name: str
    id: int


# `[unit, per_unit or null]`.
UnitField = list[UnitObject | None]


class TimeseriesSeries(msgspec.Struct):
    group_tags: list[str]
    query_index: int
    unit: UnitField | None = None


class TimeseriesAttributes(msgspec.Struct):
    series: list[TimeseriesSeries]
    times: list[int]
    values: list[list[float | None]]


class TimeseriesData(msgspec.Struct):
    attributes: TimeseriesAttributes
    id: str = "0"
    type: str = "timeseries_response"


class TimeseriesResponse(msgspec.Struct):
    data: TimeseriesData


class ColumnMeta(msgspec.Struct):
    unit: UnitField | None = None


class GroupColumn(msgspec.Struct, tag_field="type", tag="group"):
    name: str
    values: list[list[str]]


class NumberColumn(msgspec.Struct, tag_field="type", tag="number"):
    name: str
    values: list[float | None]
    meta: ColumnMeta = msgspec.field(default_factory=ColumnMeta)


class ScalarAttributes(msgspec.Struct):
    columns: list[GroupColumn | NumberColumn]


class ScalarData(msgspec.Struct):
    attributes: ScalarAttributes
    id: str = "0"
    type: str = "scalar_response"


class ScalarResponse(msgspec.Struct):
    data: ScalarData


# --- GET /api/v1/query ------------------------------------------------------------------------------------


class V1Series(msgspec.Struct):
    metric: str
    display_name: str
    expression: str
    scope: str
    tag_set: list[str]
    aggr: str | None
    attributes: dict[str, Any]
    query_index: int
    interval: int
    length: int
    start: int
    end: int
    pointlist: list[tuple[int, float | None]]
    unit: UnitField | None = None


class V1QueryResponse(msgspec.Struct):
    status: str
    res_type: str
    resp_version: int
    query: str
    message: str
    from_date: int
    to_date: int
    group_by: list[str]
    series: list[V1Series]
    times: list[int] = msgspec.field(default_factory=list)
    values: list[float] = msgspec.field(default_factory=list)
