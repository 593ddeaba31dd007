"""Dynatrace Timeseries API v1 (`/api/v1/timeseries`): stored metrics as Dynatrace's clients read them.

- `GET /api/v1/timeseries`: every definition (`source`, `detailedSource` filters); with `timeseriesId`,
  as older clients ask, that timeseries' data points in `{"result": ...}`.
- `GET /api/v1/timeseries/{id}`: its definition; with `includeData=true` also its `dataResult`.
- `POST /api/v1/timeseries/{id}` (and `POST /api/v1/timeseries` with `timeseriesId` in the body, as the
  documentation's example sends it): its data points, `{"result": ...}`.
- `PUT` / `DELETE /api/v1/timeseries/{id}`: register / remove a `custom:` timeseries (201 / 204).

Tokens need the `DataExport` scope. Refusals are Dynatrace's ErrorEnvelope; a parameter at fault is named
in `constraintViolations` with where it was. The metric id is the path's rest, so that ids with colons,
spaces (URL-encoded) and slashes are read whole.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pyarrow.compute as pc
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import Limits
from sextant.control.custom_timeseries import (
    CustomTimeseries,
    DisplayNameRequired,
    delete_custom_timeseries,
    get_custom_timeseries,
    list_custom_timeseries,
    put_custom_timeseries,
)
from sextant.control.directory import Directory
from sextant.core.timeutil import now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import GuardedRoutes
from sextant.faces.dynatrace.auth import TokenRefused, require_token
from sextant.faces.dynatrace.errors import ConstraintViolation, ErrorEnvelope, error_response
from sextant.faces.dynatrace.timeseries_definitions import StoredMetric, definition, selected
from sextant.faces.dynatrace.timeseries_messages import (
    DataPoint,
    TimeseriesDataPointQueryResult,
    TimeseriesDefinition,
    TimeseriesQueryMessage,
    TimeseriesQueryResult,
    TimeseriesQueryResultWrapper,
    TimeseriesRegistrationMessage,
)
from sextant.faces.dynatrace.timeseries_parameters import InvalidParameters, Parameters, from_body, from_query
from sextant.faces.dynatrace.timeseries_registration import registration
from sextant.faces.dynatrace.units import COUNT
from sextant.query.dynatrace_timeseries import DataAnswer, DataRequest, UnknownEntities, run, stored_series
from sextant.storage.backend import Backend, QueryTimeout

PATH = "/api/v1/timeseries"
ITEM_PATH = PATH + "/{timeseriesIdentifier:path}"
SCOPE = "DataExport"
TIMEOUT_S = 30.0
CONSTRAINTS_VIOLATED = "Constraints violated."


class NotFound(Exception):
    def __init__(self, timeseries_id: str) -> None:
        super().__init__(timeseries_id)
        self.timeseries_id = timeseries_id


@dataclass(frozen=True)
class _Metric:
    definition: TimeseriesDefinition
    stored: StoredMetric | None


def _refusal(exc: Exception) -> Response:
    """The ErrorEnvelope for an exception the handlers expect."""
    if isinstance(exc, TokenRefused):
        return error_response(exc.status, exc.message)
    if isinstance(exc, InvalidParameters):
        return error_response(400, CONSTRAINTS_VIOLATED, exc.violations)
    if isinstance(exc, NotFound):
        return error_response(
            404,
            f"Timeseries {exc.timeseries_id} not found: list the timeseries with GET {PATH}",
            [ConstraintViolation("no such timeseries", "timeseriesIdentifier", "PATH")],
        )
    if isinstance(exc, BodyError):
        return error_response(exc.status, str(exc))
    assert isinstance(exc, QueryTimeout)
    return error_response(504, str(exc))


_EXPECTED = (TokenRefused, InvalidParameters, NotFound, BodyError, QueryTimeout)


def _points(answer: DataAnswer, row: int) -> list[DataPoint]:
    record = answer.records[row]
    times = answer.times.tolist()
    # msgspec writes NaN as null, which is what an empty slot is.
    values = record.values.tolist()
    cut = answer.predicted_from
    points: list[DataPoint] = list(zip(times[:cut], values[:cut], strict=True))
    if record.lower is not None and record.upper is not None:
        band = zip(
            times[cut:], values[cut:], record.lower[cut:].tolist(), record.upper[cut:].tolist(), strict=True
        )
        points.extend(band)
    return points


class DynatraceTimeseriesApi:
    def __init__(self, directory: Directory, store: Backend, limits: Limits | None = None) -> None:
        self._directory = directory
        self._store = store
        self._body_bytes = (limits or Limits()).dynatrace_body_bytes

    def endpoints(self) -> list[Endpoint]:
        envelope = Reply("Error", ErrorEnvelope)
        errors = {400: envelope, 401: envelope, 403: envelope, 404: envelope, 504: envelope}
        endpoint = GuardedRoutes(
            "Dynatrace Timeseries API v1", ("Authorization",), error_response, errors
        ).endpoint

        return [
            endpoint(
                "GET",
                PATH,
                self.list_definitions,
                "List timeseries definitions (source, detailedSource); with timeseriesId, its data points",
                responses={200: Reply("Success", TimeseriesDefinition)},
            ),
            endpoint(
                "POST",
                PATH,
                self.read_body_named,
                "Read the data points of the timeseries named by the body's timeseriesId",
                request=TimeseriesQueryMessage,
                responses={200: Reply("Success", TimeseriesQueryResultWrapper), 413: envelope},
            ),
            endpoint(
                "GET",
                ITEM_PATH,
                self.read_definition,
                "A timeseries definition and, with includeData=true, its data points",
                responses={200: Reply("Success", TimeseriesQueryResult)},
            ),
            endpoint(
                "POST",
                ITEM_PATH,
                self.read_complex,
                "The data points of a timeseries, parameters in a TimeseriesQueryMessage body",
                request=TimeseriesQueryMessage,
                responses={200: Reply("Success", TimeseriesQueryResultWrapper), 413: envelope},
            ),
            endpoint(
                "PUT",
                ITEM_PATH,
                self.register,
                "Register (or update) a custom: timeseries",
                request=TimeseriesRegistrationMessage,
                responses={201: Reply("Success", TimeseriesDefinition), 413: envelope},
            ),
            endpoint(
                "DELETE",
                ITEM_PATH,
                self.delete,
                "Delete a custom: timeseries registration",
                responses={204: Reply("Success. The custom metric has been deleted.")},
            ),
        ]

    # --- handlers ------------------------------------------------------------------------------------

    def _org(self, request: Request) -> int:
        return require_token(
            request.headers, request.scope.get("query_string", b""), self._directory, SCOPE
        ).org_id

    async def _body(self, request: Request) -> bytes:
        limit = self._body_bytes
        return await read_body(request.receive, request.headers, max_bytes=limit, max_decoded=limit)

    async def list_definitions(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
            params = from_query(request.query_params.multi_items(), now_ms(), data=False)
            if params.timeseries_id is not None:
                # The older form of a data request: GET /api/v1/timeseries?timeseriesId=...
                params = from_query(request.query_params.multi_items(), now_ms(), data=True)
                assert params.timeseries_id is not None
                result = await asyncio.to_thread(self._data, org_id, params.timeseries_id, params)
                return json_response(TimeseriesQueryResultWrapper(result))
            definitions = await asyncio.to_thread(self._definitions, org_id)
        except _EXPECTED as exc:
            return _refusal(exc)
        return json_response(selected(definitions, params.source, params.detailed_source))

    async def read_definition(self, request: Request) -> Response:
        timeseries_id = request.path_params["timeseriesIdentifier"]
        try:
            org_id = self._org(request)
            params = from_query(request.query_params.multi_items(), now_ms())
            found = await asyncio.to_thread(self._metric, org_id, timeseries_id)
            result = None
            if params.include_data:
                result = await asyncio.to_thread(self._data, org_id, timeseries_id, params, found)
        except _EXPECTED as exc:
            return _refusal(exc)
        fields = {f: getattr(found.definition, f) for f in found.definition.__struct_fields__}
        return json_response(TimeseriesQueryResult(**fields, dataResult=result))

    async def read_complex(self, request: Request) -> Response:
        return await self._read_posted(request, request.path_params["timeseriesIdentifier"])

    async def read_body_named(self, request: Request) -> Response:
        return await self._read_posted(request, None)

    async def _read_posted(self, request: Request, path_id: str | None) -> Response:
        try:
            org_id = self._org(request)
            params = from_body(await self._body(request), now_ms())
            # The path's id wins over the body's, as Dynatrace documents.
            timeseries_id = path_id or params.timeseries_id
            if timeseries_id is None:
                raise InvalidParameters(
                    [
                        ConstraintViolation(
                            f"required when the path is {PATH}: name the timeseries to read",
                            "timeseriesId",
                            "PAYLOAD_BODY",
                        )
                    ]
                )
            result = await asyncio.to_thread(self._data, org_id, timeseries_id, params)
        except _EXPECTED as exc:
            return _refusal(exc)
        return json_response(TimeseriesQueryResultWrapper(result))

    async def register(self, request: Request) -> Response:
        timeseries_id = request.path_params["timeseriesIdentifier"]
        try:
            org_id = self._org(request)
            wanted = registration(timeseries_id, await self._body(request))
            with self._directory.engine.begin() as conn:
                stored, _ = put_custom_timeseries(
                    conn,
                    org_id,
                    timeseries_id,
                    display_name=wanted.display_name,
                    unit=wanted.unit,
                    dimensions=wanted.dimensions,
                    types=wanted.types,
                )
            ingested = await asyncio.to_thread(self._stored, org_id, timeseries_id)
        except DisplayNameRequired:
            violation = ConstraintViolation(
                "required to register a new custom timeseries", "displayName", "PAYLOAD_BODY"
            )
            return error_response(400, CONSTRAINTS_VIOLATED, [violation])
        except _EXPECTED as exc:
            return _refusal(exc)
        # 201 for an update too: the only success Dynatrace specifies, which its clients check for.
        return json_response(definition(ingested, stored, wanted.warnings), 201)

    async def delete(self, request: Request) -> Response:
        timeseries_id = request.path_params["timeseriesIdentifier"]
        try:
            org_id = self._org(request)
            with self._directory.engine.begin() as conn:
                deleted = delete_custom_timeseries(conn, org_id, timeseries_id)
            if not deleted:
                if await asyncio.to_thread(self._stored, org_id, timeseries_id) is None:
                    raise NotFound(timeseries_id)
                violation = ConstraintViolation(
                    "only custom timeseries registered with PUT can be deleted; this one is ingested data",
                    "timeseriesIdentifier",
                    "PATH",
                )
                raise InvalidParameters([violation])
        except _EXPECTED as exc:
            return _refusal(exc)
        return Response(status_code=204)

    # --- reading (in a worker thread) ---------------------------------------------------------------

    def _stored(self, org_id: int, metric: str) -> StoredMetric | None:
        names = self._store.metric_names(org_id, TIMEOUT_S)
        rows = names.filter(pc.equal(names["metric"], metric)).to_pylist()
        if not rows:
            return None
        row = rows[0]
        tags = stored_series(self._store, org_id, metric, TIMEOUT_S).tags
        return StoredMetric(metric, row["kind"], row["unit"], row["temporality"], tags)

    def _registered(self, org_id: int, timeseries_id: str) -> CustomTimeseries | None:
        with self._directory.engine.connect() as conn:
            return get_custom_timeseries(conn, org_id, timeseries_id)

    def _metric(self, org_id: int, timeseries_id: str) -> _Metric:
        stored = self._stored(org_id, timeseries_id)
        registered = self._registered(org_id, timeseries_id)
        if stored is None and registered is None:
            raise NotFound(timeseries_id)
        return _Metric(definition(stored, registered), stored)

    def _definitions(self, org_id: int) -> list[TimeseriesDefinition]:
        names = self._store.metric_names(org_id, TIMEOUT_S).to_pylist()
        with self._directory.engine.connect() as conn:
            registered = {r.timeseries_id: r for r in list_custom_timeseries(conn, org_id)}
        out = []
        for row in names:
            tags = stored_series(self._store, org_id, row["metric"], TIMEOUT_S).tags
            stored = StoredMetric(row["metric"], row["kind"], row["unit"], row["temporality"], tags)
            out.append(definition(stored, registered.pop(row["metric"], None)))
        out.extend(definition(None, r) for r in registered.values())
        return sorted(out, key=lambda d: d.timeseriesId)

    def _data(
        self, org_id: int, timeseries_id: str, params: Parameters, found: _Metric | None = None
    ) -> TimeseriesDataPointQueryResult:
        metric = found or self._metric(org_id, timeseries_id)
        assert params.aggregation is not None and params.start_ms is not None and params.end_ms is not None
        supported = metric.definition.aggregationTypes
        if params.aggregation not in supported:
            raise InvalidParameters(
                [
                    params.violation(
                        "aggregationType",
                        f"timeseries {timeseries_id} does not support {params.aggregation}: use one of "
                        f"{', '.join(supported)}",
                    )
                ]
            )
        stored = metric.stored
        request = DataRequest(
            org_id=org_id,
            metric=timeseries_id,
            kind=stored.kind if stored else None,
            temporality=stored.temporality if stored else None,
            aggregation=params.aggregation,
            start_ms=params.start_ms,
            end_ms=params.end_ms,
            percentile=params.percentile,
            total=params.total,
            predict=params.predict,
            entities=params.entities,
            tags=params.tags,
            filters=params.filters,
            include_parent_ids=params.include_parent_ids,
        )
        try:
            answer = run(self._store, request, now_ms(), TIMEOUT_S)
        except UnknownEntities as exc:
            message = f"delivers no data of timeseries {timeseries_id}"
            raise InvalidParameters(
                [params.violation("entities", f"{e} {message}") for e in exc.entities]
            ) from None
        unit = COUNT if params.aggregation == "COUNT" else metric.definition.unit
        return TimeseriesDataPointQueryResult(
            dataPoints={record.key: _points(answer, i) for i, record in enumerate(answer.records)},
            unit=unit,
            resolutionInMillisUTC=answer.resolution_ms,
            aggregationType=params.aggregation,
            entities=answer.entities,
            timeseriesId=timeseries_id,
        )
