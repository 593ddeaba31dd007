"""PostHog's Metrics API (`/api/projects/{id}/metrics/...` and `/api/environments/{id}/metrics/...`).

`POST query` (time series by clause, or a formula over clauses), `POST characterize` (what changed in an
anomaly window), `GET values` (metric names) and `GET has_metrics`, each with or without a trailing
slash, authenticated by a personal API key with the `metrics:read` scope (`metrics:write` holds it too),
for a project of the key's organization. Refusals are PostHog's error bodies; response keys are
PostHog's (snake_case), request keys camelCase.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import MIB
from sextant.control.directory import Directory
from sextant.core.timeutil import now_ms
from sextant.edge.body import BodyError, BodyTooLarge, UnsupportedEncoding, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.faces.posthog.errors import ErrorBody, PostHogError, parse_error, server_error
from sextant.faces.posthog.metrics_request import (
    CHARACTERIZE_REQUEST,
    QUERY_REQUEST,
    VALUES_PARAMETERS,
    characterize_request,
    metrics_query,
)
from sextant.faces.posthog.personal_key import presented_key, require_personal_key
from sextant.faces.posthog.projects import require_project
from sextant.query import posthog_metrics as pm
from sextant.query.posthog_formula import FormulaError, evaluate, parse_formula
from sextant.storage.backend import Backend, QueryTimeout

PREFIXES = ("/api/projects/{project_id}/metrics", "/api/environments/{project_id}/metrics")
# Where a method a route does not take is refused in PostHog's format (see server.py).
PATH_PREFIXES = ("/api/projects/", "/api/environments/")
SCOPE = "metrics:read"
MAX_BODY = 1 * MIB
TIMEOUT_S = 30.0
_JSON_TYPES = ("application/json", "")


class Point(msgspec.Struct):
    time: str
    value: float | None


class Series(msgspec.Struct):
    labels: dict[str, str]
    points: list[Point]
    metric_name: str | None
    clause: str | None


class QueryResponse(msgspec.Struct):
    results: list[Series]


class Mover(msgspec.Struct):
    key: str
    label: str
    baseline_value: float
    anomaly_value: float
    change_ratio: float


class AnomalyReport(msgspec.Struct):
    metric_name: str
    aggregation: str
    interval: str
    baseline_from: str
    baseline_to: str
    anomaly_from: str
    anomaly_to: str
    baseline_mean: float
    baseline_stddev: float
    anomaly_mean: float
    anomaly_peak: float
    change_ratio: float
    direction: str
    onset_time: str | None
    top_movers: list[Mover]
    series: Series


class MetricName(msgspec.Struct):
    name: str
    metric_type: str


class MetricNames(msgspec.Struct):
    results: list[MetricName]


class HasMetrics(msgspec.Struct):
    hasMetrics: bool


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_time(time_ms: int) -> str:
    """A time as PostHog writes bucket starts and windows: ISO 8601 in UTC, `+00:00`."""
    return (_EPOCH + dt.timedelta(milliseconds=time_ms)).isoformat()


def _strict_constant(name: str) -> float:
    raise ValueError(f"Out of range float values are not JSON compliant: {name!r}")


def decode_body(body: bytes, content_type: str) -> Any:
    """The JSON body as Django REST framework's JSON parser reads it; `{}` for an empty body."""
    if not body:
        return {}
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise PostHogError(
            415,
            "invalid_request",
            "unsupported_media_type",
            f'Unsupported media type "{content_type}" in request.',
        )
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_strict_constant)
    except (ValueError, RecursionError) as exc:
        reason = "maximum nesting depth exceeded" if isinstance(exc, RecursionError) else str(exc)
        raise parse_error(f"JSON parse error - {reason}") from None


def _body_refusal(exc: BodyError) -> PostHogError:
    if isinstance(exc, BodyTooLarge):
        return PostHogError(413, "invalid_request", "payload_too_large", str(exc))
    if isinstance(exc, UnsupportedEncoding):
        return PostHogError(415, "invalid_request", "unsupported_media_type", str(exc))
    return parse_error(str(exc))


class PostHogMetricsApi:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        errors = {
            code: Reply(text, ErrorBody)
            for code, text in [
                (400, "Bad Request"),
                (401, "Unauthorized"),
                (403, "Forbidden"),
                (404, "Project not found"),
            ]
        }
        actions: list[tuple[str, str, Callable[[Request], Awaitable[Response]], str, type]] = [
            (
                "POST",
                "query",
                self.query,
                "Time series of metrics, by clause or a formula over clauses",
                QueryResponse,
            ),
            (
                "POST",
                "characterize",
                self.characterize,
                "Characterize a metric anomaly: baseline versus anomaly window, onset, top movers",
                AnomalyReport,
            ),
            (
                "GET",
                "values",
                self.values,
                "Metric names seen in the last 7 days (query: value, limit)",
                MetricNames,
            ),
            ("GET", "has_metrics", self.has_metrics, "Whether the project has any metrics", HasMetrics),
        ]
        endpoints = []
        for prefix in PREFIXES:
            for method, action, handler, summary, reply in actions:
                for slash in ("", "/"):
                    endpoints.append(
                        Endpoint(
                            method,
                            f"{prefix}/{action}{slash}",
                            guarded(handler, server_error),
                            summary,
                            "PostHog metrics",
                            responses={200: Reply("OK", reply), **errors},
                            auth_headers=("Authorization",),
                        )
                    )
        return endpoints

    def _org(self, request: Request, body: Any) -> int:
        principal = require_personal_key(
            request.headers,
            body if isinstance(body, dict) else None,
            request.query_params,
            self._directory,
            SCOPE,
        )
        require_project(request.path_params["project_id"], principal, self._directory)
        return principal.org_id

    async def _authorized_body(self, request: Request) -> tuple[int, Any]:
        """The caller's organization and the JSON body. As in PostHog, a key in the Authorization header
        is checked before the body is read, and the body (where the key may be) before any other key."""
        try:
            raw = await read_body(request.receive, request.headers, max_bytes=MAX_BODY, max_decoded=MAX_BODY)
            body, unreadable = decode_body(raw, request.headers.get("content-type", "")), None
        except BodyError as exc:
            body, unreadable = None, _body_refusal(exc)
        except PostHogError as exc:
            body, unreadable = None, exc
        if unreadable is not None and presented_key(request.headers, None, {}) is None:
            raise unreadable
        org_id = self._org(request, body)
        if unreadable is not None:
            raise unreadable
        return org_id, body

    async def _answer(self, work: Callable[[], Awaitable[msgspec.Struct]]) -> Response:
        try:
            return json_response(await work())
        except PostHogError as exc:
            return exc.response()
        except (pm.QueryError, FormulaError) as exc:
            return parse_error(str(exc)).response()
        except QueryTimeout as exc:
            return PostHogError(504, "server_error", "timeout", str(exc)).response()

    async def query(self, request: Request) -> Response:
        async def work() -> msgspec.Struct:
            org_id, body = await self._authorized_body(request)
            query = metrics_query(QUERY_REQUEST.validate(body), dt.datetime.now(dt.UTC))
            return await asyncio.to_thread(self._query, org_id, query)

        return await self._answer(work)

    def _query(self, org_id: int, query: pm.MetricsQuery) -> QueryResponse:
        results = pm.run_clauses(self._store, org_id, query, TIMEOUT_S)
        formula: pm.FormulaFunction | None = None
        if query.formula is not None:
            # Checked once the clauses have run, as PostHog does (their errors come first).
            node = parse_formula(query.formula, frozenset(c.name for c in query.clauses))

            def formula(values: Any) -> Any:
                return evaluate(node, values)

        grid, series = pm.assemble(results, formula)
        times = [iso_time(t) for t in grid.tolist()]
        return QueryResponse([_series(s.labels, times, s.values, s.metric_name, s.clause) for s in series])

    async def characterize(self, request: Request) -> Response:
        async def work() -> msgspec.Struct:
            org_id, body = await self._authorized_body(request)
            asked = characterize_request(CHARACTERIZE_REQUEST.validate(body), dt.datetime.now(dt.UTC))
            return await asyncio.to_thread(self._characterize, org_id, asked)

        return await self._answer(work)

    def _characterize(self, org_id: int, asked: pm.CharacterizeRequest) -> AnomalyReport:
        report = pm.characterize(self._store, org_id, asked, now_ms(), TIMEOUT_S)
        stats, windows = report.statistics, report.windows
        onset = report.onset_ms
        return AnomalyReport(
            metric_name=report.metric,
            aggregation=report.aggregation,
            interval=report.interval,
            baseline_from=iso_time(windows.baseline_from),
            baseline_to=iso_time(windows.baseline_to),
            anomaly_from=iso_time(windows.anomaly_from),
            anomaly_to=iso_time(windows.anomaly_to),
            baseline_mean=stats.baseline_mean,
            baseline_stddev=stats.baseline_stddev,
            anomaly_mean=stats.anomaly_mean,
            anomaly_peak=stats.anomaly_peak,
            change_ratio=stats.change_ratio,
            direction=stats.direction,
            onset_time=None if onset is None else iso_time(onset),
            top_movers=[
                Mover(m.key, m.label, m.baseline_value, m.anomaly_value, m.change_ratio)
                for m in report.movers
            ],
            series=_series(
                {},
                [iso_time(t) for t, _ in report.points],
                [v for _, v in report.points],
                report.metric,
                "anomaly",
            ),
        )

    async def values(self, request: Request) -> Response:
        async def work() -> msgspec.Struct:
            org_id = self._org(request, None)
            params = VALUES_PARAMETERS.validate(dict(request.query_params))
            names = await asyncio.to_thread(
                pm.metric_names, self._store, org_id, params["value"], params["limit"], now_ms(), TIMEOUT_S
            )
            return MetricNames([MetricName(name, metric_type) for name, metric_type in names])

        return await self._answer(work)

    async def has_metrics(self, request: Request) -> Response:
        async def work() -> msgspec.Struct:
            org_id = self._org(request, None)
            found = await asyncio.to_thread(pm.has_metrics, self._store, org_id, now_ms(), TIMEOUT_S)
            return HasMetrics(found)

        return await self._answer(work)


def _series(
    labels: dict[str, str],
    times: list[str],
    values: list[float | None],
    metric: str | None,
    clause: str | None,
) -> Series:
    return Series(labels, [Point(t, v) for t, v in zip(times, values, strict=True)], metric, clause)
