"""`POST /api/v2/product-analytics/analytics/{scalar,timeseries,list}`: rendering core results exactly in
the shapes Datadog's clients parse (`scalar_response`, `timeseries_response`, `list_response`)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import MIB
from sextant.control.directory import Directory
from sextant.core.events import STANDARD_PATHS
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.edge.requests import request_id
from sextant.faces.datadog.analytics_request import (
    AnalyticsRequest,
    ListRequest,
    RequestError,
    decode,
    event_query,
    list_query,
)
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.query.events import EventQuery
from sextant.query.planning import QUERY_TIMEOUT_S
from sextant.series.buckets import bucket_times, densify
from sextant.storage.backend import Backend, QueryTimeout

PREFIX = "/api/v2/product-analytics/analytics"
MAX_QUERY_BODY = 1 * MIB
_KEY_SEPARATOR = "\x1f"


class ScalarResponse(msgspec.Struct):
    """`ProductAnalyticsScalarResponse`."""

    data: dict[str, Any]
    meta: dict[str, Any]


class TimeseriesResponse(msgspec.Struct):
    """`ProductAnalyticsTimeseriesResponse`."""

    data: dict[str, Any]
    meta: dict[str, Any]


class ListResponse(msgspec.Struct):
    """`ProductAnalyticsAnalyticsListResponse`."""

    data: dict[str, Any]
    meta: dict[str, Any]


class ProductAnalyticsQueries:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        errors = {
            400: Reply("Bad Request", APIErrorResponse),
            401: Reply("Unauthorized", APIErrorResponse),
            403: Reply("Forbidden", APIErrorResponse),
            413: Reply("Payload Too Large", APIErrorResponse),
            504: Reply("Query timed out", APIErrorResponse),
        }
        routes = [
            ("scalar", self.scalar, "Compute scalar analytics: one value per group",
             AnalyticsRequest, ScalarResponse),
            ("timeseries", self.timeseries, "Compute timeseries analytics: values per time bucket and group",
             AnalyticsRequest, TimeseriesResponse),
            ("list", self.list, "List the events matching a query, newest first", ListRequest, ListResponse),
        ]  # fmt: skip
        return [
            Endpoint(
                "POST",
                f"{PREFIX}/{name}",
                guarded(handler, api_error),
                summary,
                tag="Datadog Product Analytics",
                request=request,
                responses={200: Reply("OK", response), **errors},
                auth_headers=("DD-API-KEY", "DD-APPLICATION-KEY"),
            )
            for name, handler, summary, request, response in routes
        ]

    async def _begin(
        self, request: Request, kind: type[msgspec.Struct]
    ) -> tuple[int, msgspec.Struct] | Response:
        try:
            principal = require_app_key(request.headers, self._directory, "rum_apps_read")
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        try:
            body = await read_body(
                request.receive, request.headers, max_bytes=MAX_QUERY_BODY, max_decoded=MAX_QUERY_BODY
            )
            return principal.org_id, decode(body, kind)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except RequestError as exc:
            return api_error(400, str(exc))

    async def _run(self, query: EventQuery) -> pa.Table:
        return await asyncio.to_thread(self._store.query_events, query, QUERY_TIMEOUT_S)

    async def scalar(self, request: Request) -> Response:
        return await self._aggregate(request, timeseries=False)

    async def timeseries(self, request: Request) -> Response:
        return await self._aggregate(request, timeseries=True)

    async def _aggregate(self, request: Request, *, timeseries: bool) -> Response:
        begun = await self._begin(request, AnalyticsRequest)
        if isinstance(begun, Response):
            return begun
        org_id, decoded = begun
        assert isinstance(decoded, AnalyticsRequest)
        try:
            query, spec = event_query(decoded, org_id, self._directory, timeseries=timeseries)
        except RequestError as exc:
            return api_error(400, str(exc))
        try:
            table = await self._run(query)
        except QueryTimeout as exc:
            return api_error(504, f"Query timed out: {exc}; narrow the time range or the search")
        rid = request_id(request.scope)
        facets = [g.facet for g in spec.group_by]
        meta = {"request_id": rid, "status": "done"}
        if not timeseries:
            return json_response(
                {
                    "data": {"id": rid, "type": "scalar_response", "attributes": _scalar(table, facets)},
                    "meta": meta,
                }
            )
        assert query.interval_ms is not None
        explicit = spec.compute.interval is not None
        attributes = _timeseries(table, facets, query, explicit)
        return json_response(
            {"data": {"id": rid, "type": "timeseries_response", "attributes": attributes}, "meta": meta}
        )

    async def list(self, request: Request) -> Response:
        begun = await self._begin(request, ListRequest)
        if isinstance(begun, Response):
            return begun
        org_id, decoded = begun
        assert isinstance(decoded, ListRequest)
        try:
            query = list_query(decoded, org_id, self._directory)
        except RequestError as exc:
            return api_error(400, str(exc))
        try:
            rows, total = await asyncio.to_thread(self._store.list_events, query, QUERY_TIMEOUT_S)
        except QueryTimeout as exc:
            return api_error(504, f"Query timed out: {exc}; narrow the time range or the search")
        rid = request_id(request.scope)
        records = _records(rows, decoded.data.attributes.query.columns)
        return json_response(
            {
                "data": {
                    "id": rid,
                    "type": "list_response",
                    "attributes": {"records": records, "total_count": total},
                },
                "meta": {"request_id": rid, "status": "done"},
            }
        )


def _scalar(table: pa.Table, facets: list[str]) -> dict[str, Any]:
    columns: list[dict[str, Any]] = [
        {"name": facet, "type": "group", "values": [[v] for v in table.column(f"k{j}").to_pylist()]}
        for j, facet in enumerate(facets)
    ]
    values = table.column("value").to_pylist()
    if not facets and not values:
        values = [0]
    columns.append({"name": "query", "type": "number", "values": values, "meta": {"unit": None}})
    return {"columns": columns}


def _series_keys(table: pa.Table, count: int) -> tuple[np.ndarray[Any, Any], list[list[str]]]:
    """Each row's series number, and each series' group values, in the order rows rank them."""
    if count == 0:
        return np.zeros(table.num_rows, dtype=np.int64), [[]] if table.num_rows else []
    parts = [table.column(f"k{j}").combine_chunks() for j in range(count)]
    joined = pc.binary_join_element_wise(*parts, _KEY_SEPARATOR) if count > 1 else parts[0]
    encoded = pc.dictionary_encode(joined)
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    keys = [str(k).split(_KEY_SEPARATOR) for k in encoded.dictionary.to_pylist()]
    return indices, keys


def _timeseries(table: pa.Table, facets: list[str], query: EventQuery, explicit: bool) -> dict[str, Any]:
    assert query.interval_ms is not None
    times = bucket_times(query.start_ms, query.end_ms, query.interval_ms)
    index, keys = _series_keys(table, len(facets))
    if not facets and not keys:
        keys = [[]]
    counting = query.aggregation.kind in ("count", "cardinality")
    matrix = densify(
        times,
        index,
        table.column("bucket").to_numpy(zero_copy_only=False).astype(np.int64),
        table.column("value").to_numpy(zero_copy_only=False).astype(np.float64),
        len(keys),
        0.0 if counting else np.nan,
    )
    values: list[list[Any]] = (
        matrix.astype(np.int64).tolist()
        if counting
        else [[None if np.isnan(v) else v for v in row] for row in matrix.tolist()]
    )
    times_list = times.tolist()
    return {
        "times": times_list,
        "values": values,
        "series": [
            {
                "group_tags": [f"{facet}:{value}" for facet, value in zip(facets, key, strict=True)],
                "query_index": 0,
            }
            for key in keys
        ],
        "intervals": [
            {
                "milliseconds": query.interval_ms,
                "start_time": times_list[0] if times_list else query.start_ms,
                "times": times_list,
                "type": "fixed" if explicit else "auto",
            }
        ],
    }


_decode_json = msgspec.json.Decoder().decode


def _records(rows: pa.Table, columns: list[str]) -> list[dict[str, Any]]:
    data = rows.to_pydict()
    records: list[dict[str, Any]] = []
    for i in range(rows.num_rows):
        record: dict[str, Any] = {"id": str(data["event_id"][i]), "timestamp": data["time_ms"][i]}
        if columns:
            for j, name in enumerate(columns):
                raw = data[f"c{j}"][i]
                record[name] = None if raw is None else _decode_json(raw)
        else:
            for path in STANDARD_PATHS:
                if data[path][i] is not None:
                    record["@" + path] = data[path][i]
            for path, value in _decode_json(data["attributes"][i]).items():
                record["@" + path] = value
        records.append(record)
    return records
