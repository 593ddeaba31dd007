"""Assembling and running the server: one process, one event loop, a writer and a loader thread."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sextant.allocator import keep_freed_memory
from sextant.config import Settings
from sextant.control.db import open_control
from sextant.control.directory import Directory
from sextant.control.orgs import ProvisionedOrg, bootstrap_default_org
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.fast import FastPaths
from sextant.edge.openapi import openapi_document
from sextant.edge.requests import RequestContext
from sextant.faces.datadog.analytics import ProductAnalyticsQueries
from sextant.faces.datadog.dashboards import DatadogDashboardsApi
from sextant.faces.datadog.logs_intake import DatadogLogsIntake
from sextant.faces.datadog.logs_search import DatadogLogsSearch
from sextant.faces.datadog.metric_metadata import DatadogMetricMetadataApi
from sextant.faces.datadog.metric_queries import DatadogMetricQueries
from sextant.faces.datadog.metrics_intake import DatadogMetricsIntake
from sextant.faces.datadog.prodlytics import ProductAnalyticsIntake
from sextant.faces.dynatrace.metrics_ingest import DynatraceMetricsIngest
from sextant.faces.dynatrace.timeseries_v1 import DynatraceTimeseriesApi
from sextant.faces.otlp.metrics_intake import OtlpMetricsIntake
from sextant.faces.posthog.errors import method_not_allowed as posthog_method_not_allowed
from sextant.faces.posthog.metrics_api import PATH_PREFIXES as POSTHOG_PATH_PREFIXES
from sextant.faces.posthog.metrics_api import PostHogMetricsApi
from sextant.faces.sextant.graph import GraphApi
from sextant.faces.sextant.metric_points import MetricPointsApi
from sextant.faces.sextant.segments import SegmentsApi
from sextant.ingest.log import IngestLog
from sextant.ingest.writer import GroupCommitWriter
from sextant.logs import configure_logging
from sextant.storage.duckdb.store import DuckDBStore

log = logging.getLogger("sextant.server")


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    # True while the store does background work (filling columns for newly hot attributes).
    background_work: bool | None = None


@dataclass
class Runtime:
    """Everything a running server owns, opened in order and closed in reverse."""

    settings: Settings
    directory: Directory
    store: DuckDBStore
    writer: GroupCommitWriter
    bootstrapped: ProvisionedOrg | None
    flush_access_log: Callable[[], None] = lambda: None


def open_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_control(settings.control_db_path)
    bootstrapped = bootstrap_default_org(engine, settings.credentials_path)
    directory = Directory(engine, settings.control_db_path)
    store = DuckDBStore(settings.store_path)
    writer = GroupCommitWriter(
        store,
        IngestLog(settings.ingest_log_dir),
        max_queued_events=settings.limits.write_queue_events,
        max_queued_points=settings.limits.write_queue_points,
        max_commit_events=settings.limits.commit_events,
        queue_wait_s=settings.limits.queue_wait_s,
    )
    return Runtime(settings, directory, store, writer, bootstrapped)


def _system_endpoints(runtime: Runtime, all_endpoints: list[Endpoint]) -> list[Endpoint]:
    ok = json_response(Health("ok"))

    async def health(_: Request) -> Response:
        return ok

    async def ready(_: Request) -> Response:
        if runtime.writer.running:
            state = Health("ok", background_work=runtime.store.has_maintenance)
            return json_response(state)
        return json_response(Health("starting or stopping"), 503)

    async def openapi(_: Request) -> Response:
        return json_response(openapi_document(all_endpoints))

    health_reply = {200: Reply("The process is up", Health)}
    return [
        Endpoint("GET", "/health", health, "Liveness: the process answers", "System", responses=health_reply),
        Endpoint(
            "GET",
            "/ready",
            ready,
            "Readiness: the store is open and the writer is running",
            "System",
            responses={**health_reply, 503: Reply("Not ready", Health)},
        ),
        Endpoint(
            "GET",
            "/openapi.json",
            openapi,
            "This OpenAPI document",
            "System",
            responses={200: Reply("OpenAPI 3.1 document")},
        ),
    ]


def build_app(runtime: Runtime) -> ASGIApp:
    endpoints: list[Endpoint] = []
    endpoints.extend(
        ProductAnalyticsIntake(runtime.directory, runtime.writer, runtime.settings.limits).endpoints()
    )
    endpoints.extend(ProductAnalyticsQueries(runtime.directory, runtime.store).endpoints())
    endpoints.extend(SegmentsApi(runtime.directory).endpoints())
    intake_parts = (runtime.directory, runtime.writer, runtime.store, runtime.settings.limits)
    for intake in (DatadogMetricsIntake, DatadogLogsIntake, OtlpMetricsIntake, DynatraceMetricsIngest):
        endpoints.extend(intake(*intake_parts).endpoints())
    endpoints.extend(MetricPointsApi(runtime.directory, runtime.store).endpoints())
    endpoints.extend(DatadogDashboardsApi(runtime.directory).endpoints())
    endpoints.extend(DatadogLogsSearch(runtime.directory, runtime.store).endpoints())
    endpoints.extend(DatadogMetricMetadataApi(runtime.directory, runtime.store).endpoints())
    endpoints.extend(DatadogMetricQueries(runtime.directory, runtime.store).endpoints())
    endpoints.extend(GraphApi(runtime.directory, runtime.store).endpoints())
    endpoints.extend(
        DynatraceTimeseriesApi(runtime.directory, runtime.store, runtime.settings.limits).endpoints()
    )
    endpoints.extend(PostHogMetricsApi(runtime.directory, runtime.store).endpoints())
    endpoints.extend(_system_endpoints(runtime, endpoints))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runtime.writer.start()
        try:
            yield
        finally:
            # Uvicorn has stopped taking requests: commit what is queued, then close the store cleanly.
            await runtime.writer.stop()
            runtime.flush_access_log()
            runtime.store.close()
            runtime.directory.close()
            log.info("stopped; every acknowledged write is on disk")

    routes = [Route(ep.path, ep.handler, methods=[ep.method]) for ep in endpoints if ep.handler is not None]
    fast = {(ep.method, ep.path): ep.asgi for ep in endpoints if ep.asgi is not None}
    method_refusals = {prefix: posthog_method_not_allowed for prefix in POSTHOG_PATH_PREFIXES}

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        # A face whose clients read its error body answers an unsupported method in its own format.
        assert isinstance(exc, HTTPException)
        allow = (exc.headers or {}).get("Allow", "")
        for prefix, refuse in method_refusals.items():
            if request.url.path.startswith(prefix):
                return refuse(request.method, allow)
        return PlainTextResponse(exc.detail, 405, headers=exc.headers)

    # Request ids and hot paths wrap the framework rather than sit inside its middleware stack, so that
    # the intake does not pay for the framework's layers.
    context = RequestContext(
        FastPaths(
            Starlette(routes=routes, lifespan=lifespan, exception_handlers={405: method_not_allowed}),
            routes=fast,
        ),
        access_log=runtime.settings.access_log,
    )
    runtime.flush_access_log = context.flush
    return context


def _print_credentials(provisioned: ProvisionedOrg, settings: Settings) -> None:
    print(
        "Created organization 'default'. Its keys are shown once here and saved to", settings.credentials_path
    )
    print(json.dumps(provisioned.as_json(), indent=2), flush=True)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: ASGIApp) -> uvicorn.Config:
    """The HTTP stack every server of ours runs on (the benchmark's ceiling app too)."""
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
        server_header=False,
        # Forwarded headers are not trusted by default: the client address is the peer's.
        proxy_headers=False,
    )


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM; on either, finish in-flight requests, commit pending writes and exit 0."""
    configure_logging()
    sock = bind(settings.host, settings.port)
    runtime = open_runtime(settings)
    if runtime.bootstrapped is not None:
        _print_credentials(runtime.bootstrapped, settings)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"Sextant listening on http://{shown}:{port}  (data dir: {settings.data_dir})", flush=True)
    config = uvicorn_config(build_app(runtime))
    keep_freed_memory()
    # Everything allocated so far lives as long as the process: keep the collector from rescanning it,
    # and let it run less often (a batch of events decodes to thousands of short-lived dicts).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    _Server(config).run(sockets=[sock])


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Uvicorn re-raises SIGTERM/SIGINT once its graceful shutdown is done, so the process would die
        # of the signal (status 143). Here a requested stop that completed cleanly exits 0.
        with super().capture_signals():
            yield
            self._captured_signals.clear()
