"""`GET` and `PUT /api/v1/metrics/{metric_name}`: Datadog metric metadata.

What a user set (description, short name, type, units, StatsD interval) lives in the control plane; the
type and unit that ingestion last saw fill in whatever was not set, the unit read onto Datadog's unit names
(OTLP's `ms` is `millisecond`, `By/s` a `byte` per `second`; a unit the catalog cannot name is left out).
A unit or per-unit set that is not a Datadog unit name is a 400. A metric exists once a point of it
was stored or metadata was set for it: any other name is 404, as Datadog answers for a metric it has
never received. Authenticated like the Datadog query endpoints (API key + application key).
"""

from __future__ import annotations

from typing import Literal

import msgspec
import pyarrow.compute as pc
from msgspec import UNSET, UnsetType
from starlette.requests import Request
from starlette.responses import Response

from sextant.control.directory import Directory
from sextant.control.metric_metadata import (
    FIELDS,
    Field,
    StoredMetricMetadata,
    get_metric_metadata,
    set_metric_metadata,
)
from sextant.core.metrics import MetricKind
from sextant.core.units import parse_metric_unit
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.storage.backend import Backend, QueryTimeout

PATH = "/api/v1/metrics/{metric_name}"
READ_SCOPE = "metrics_read"
# Datadog's permission for editing metric metadata.
WRITE_SCOPE = "metrics_metadata_write"
MAX_BODY = 64 * 1024
TIMEOUT_S = 30.0

# Datadog's four in-app types. OTel histograms are distributions in Datadog too; an OTel summary is
# gauges there (its quantiles), so it reads as a gauge.
DATADOG_TYPES: dict[str, str] = {
    MetricKind.GAUGE: "gauge",
    MetricKind.COUNT: "count",
    MetricKind.RATE: "rate",
    MetricKind.DISTRIBUTION: "distribution",
    MetricKind.HISTOGRAM: "distribution",
    MetricKind.EXPONENTIAL_HISTOGRAM: "distribution",
    MetricKind.SUMMARY: "gauge",
}
# "" clears the type, as for the text fields.
DatadogType = Literal["gauge", "count", "rate", "distribution", ""]


class MetricMetadata(msgspec.Struct, omit_defaults=True):
    """Metadata of one metric; fields nobody knows are left out."""

    description: str | None = None
    integration: str | None = None
    per_unit: str | None = None
    short_name: str | None = None
    statsd_interval: int | None = None
    type: str | None = None
    unit: str | None = None


class MetricMetadataUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """The fields to change; absent ones stay as they are, null (or "") clears one. `integration` is
    read-only."""

    description: str | UnsetType | None = UNSET
    per_unit: str | UnsetType | None = UNSET
    short_name: str | UnsetType | None = UNSET
    statsd_interval: int | UnsetType | None = UNSET
    type: DatadogType | UnsetType | None = UNSET
    unit: str | UnsetType | None = UNSET
    integration: str | UnsetType | None = UNSET


class DatadogMetricMetadataApi:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        auth = ("DD-API-KEY", "DD-APPLICATION-KEY")
        reply = {
            code: Reply(text, APIErrorResponse)
            for code, text in [
                (400, "Bad Request"),
                (401, "Unauthorized"),
                (403, "Forbidden"),
                (404, "Not Found"),
                (504, "Gateway Timeout"),
            ]
        }
        tag = "Datadog metrics"
        return [
            Endpoint(
                "GET",
                PATH,
                guarded(self.get, api_error),
                "Get metric metadata",
                tag,
                responses={200: Reply("OK", MetricMetadata), **{c: r for c, r in reply.items() if c != 400}},
                auth_headers=auth,
            ),
            Endpoint(
                "PUT",
                PATH,
                guarded(self.put, api_error),
                "Edit metric metadata (the fields given; null clears one)",
                tag,
                request=MetricMetadataUpdate,
                responses={
                    200: Reply("OK", MetricMetadata),
                    413: Reply("Too large", APIErrorResponse),
                    **reply,
                },
                auth_headers=auth,
            ),
        ]

    async def get(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, READ_SCOPE).org_id
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        metric = request.path_params["metric_name"]
        try:
            ingested = self._ingested(org_id, metric)
        except QueryTimeout as exc:
            return api_error(504, str(exc))
        with self._directory.engine.connect() as conn:
            stored = get_metric_metadata(conn, org_id, metric)
        if ingested is None and stored is None:
            return _not_found(metric)
        return json_response(_merged(ingested, stored))

    async def put(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, WRITE_SCOPE).org_id
            body = await read_body(request.receive, request.headers, max_bytes=MAX_BODY, max_decoded=MAX_BODY)
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        try:
            update = msgspec.json.decode(body, type=MetricMetadataUpdate)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return api_error(400, f"Invalid metric metadata: {exc}")
        if update.integration not in (UNSET, None, ""):
            return api_error(400, "integration is read-only: it names the integration that sends the metric")
        metric = request.path_params["metric_name"]
        try:
            ingested = self._ingested(org_id, metric)
        except QueryTimeout as exc:
            return api_error(504, str(exc))
        changes: dict[Field, str | int | None] = {}
        for field in FIELDS:
            value = getattr(update, field)
            if value is not UNSET:
                changes[field] = value if value != "" else None
        try:
            with self._directory.engine.begin() as conn:
                if ingested is None and get_metric_metadata(conn, org_id, metric) is None:
                    return _not_found(metric)
                stored = set_metric_metadata(conn, org_id, metric, changes)
        except ValueError as exc:
            return api_error(400, f"Invalid metric metadata: {exc}")
        return json_response(_merged(ingested, stored))

    def _ingested(self, org_id: int, metric: str) -> dict[str, object] | None:
        """The latest kind and unit stored points of `metric` have, or None when there are none."""
        names = self._store.metric_names(org_id, TIMEOUT_S)
        rows = names.filter(pc.equal(names["metric"], metric)).to_pylist()
        return rows[0] if rows else None


def _not_found(metric: str) -> Response:
    return api_error(404, f"metric_name not found: no metric {metric!r} was received by this organization")


def _merged(ingested: dict[str, object] | None, stored: StoredMetricMetadata | None) -> MetricMetadata:
    """What was set, over what ingestion knows."""
    out = MetricMetadata()
    if ingested is not None:
        kind, unit = ingested["kind"], ingested["unit"]
        out.type = DATADOG_TYPES.get(str(kind))
        known = parse_metric_unit(unit) if isinstance(unit, str) else None
        if known is not None:
            out.unit = known.unit.name
            out.per_unit = None if known.per is None else known.per.name
    if stored is not None:
        for field in FIELDS:
            value = getattr(stored, field)
            if value is not None:
                setattr(out, field, value)
    return out
