"""`/api/v2/sextant/metrics`: the stored metric names, and the raw points of one metric as stored.

What every intake wrote, before any aggregation: for checking what a sender sends, and for the tests
that cross-check one intake against another. Authenticated like the Datadog query endpoints (API key +
application key), with Datadog's error body.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from sextant.control.directory import Directory
from sextant.core.timeutil import HOUR_MS, now_ms
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.storage.backend import Backend, QueryTimeout

PATH = "/api/v2/sextant/metrics"
TIMEOUT_S = 30.0


class MetricName(msgspec.Struct):
    metric: str
    kind: str
    unit: str | None
    temporality: str | None
    monotonic: bool | None
    first_seen_ms: int
    last_seen_ms: int


class MetricNames(msgspec.Struct):
    data: list[MetricName]


class StoredPoint(msgspec.Struct, omit_defaults=True):
    """One point with the columns its kind uses (absent ones omitted)."""

    time_ms: int
    kind: str
    value: float | None = None
    count: int | None = None
    min: float | None = None
    max: float | None = None
    bounds: list[float] | None = None
    bucket_counts: list[int] | None = None
    samples: list[float] | None = None
    interval_ms: int | None = None
    start_time_ms: int | None = None
    temporality: str | None = None
    monotonic: bool | None = None
    unit: str | None = None


class StoredSeries(msgspec.Struct):
    metric: str
    tags: list[str]
    # As text: a 64-bit id does not survive JavaScript's numbers.
    series_id: str
    points: list[StoredPoint]


class StoredPoints(msgspec.Struct):
    series: list[StoredSeries]


class MetricPointsApi:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        auth = ("DD-API-KEY", "DD-APPLICATION-KEY")
        errors = {
            code: Reply(text, APIErrorResponse)
            for code, text in [(400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden")]
        }
        tag = "Sextant metrics"
        return [
            Endpoint(
                "GET",
                PATH,
                guarded(self.names, api_error),
                "List stored metric names with their latest kind and unit",
                tag,
                responses={200: Reply("OK", MetricNames), **errors},
                auth_headers=auth,
            ),
            Endpoint(
                "GET",
                PATH + "/{metric_name}/points",
                guarded(self.points, api_error),
                "The stored points of one metric, by series (query: from, to in epoch ms; default the "
                "last hour)",
                tag,
                responses={200: Reply("OK", StoredPoints), **errors},
                auth_headers=auth,
            ),
        ]

    def _org(self, request: Request) -> int:
        return require_app_key(request.headers, self._directory, "metrics_read").org_id

    async def names(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        table = self._store.metric_names(org_id, TIMEOUT_S)
        return json_response(MetricNames([MetricName(**row) for row in table.to_pylist()]))

    async def points(self, request: Request) -> Response:
        try:
            org_id = self._org(request)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        now = now_ms()
        bounds: dict[str, int] = {}
        for name, default in (("from", now - HOUR_MS), ("to", now + HOUR_MS)):
            raw = request.query_params.get(name)
            try:
                bounds[name] = default if raw is None else int(raw)
            except ValueError:
                return api_error(400, f"'{name}' must be a time in epoch milliseconds, not {raw!r}")
        if bounds["from"] >= bounds["to"]:
            return api_error(400, "'from' must be earlier than 'to'")
        try:
            table = self._store.read_points(
                org_id, request.path_params["metric_name"], bounds["from"], bounds["to"], TIMEOUT_S
            )
        except QueryTimeout as exc:
            return api_error(504, str(exc))
        series: dict[int, StoredSeries] = {}
        for row in table.to_pylist():
            sid = row.pop("series_id")
            metric, tags = row.pop("metric"), row.pop("tags")
            entry = series.get(sid)
            if entry is None:
                entry = series[sid] = StoredSeries(metric, tags, str(sid), [])
            entry.points.append(StoredPoint(**row))
        return json_response(StoredPoints(list(series.values())))
