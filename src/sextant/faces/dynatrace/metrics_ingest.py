"""Dynatrace metrics ingest v2: POST /api/v2/metrics/ingest (line protocol, text/plain).

Each line is judged on its own, as Dynatrace does: the valid ones are stored and the answer counts them;
invalid ones are reported by line number (the first ten) with what is wrong. 202 when every line is
valid, 400 when some are not (the valid ones are stored all the same), both once the stored points are
durable. Refusals of the whole request use Dynatrace's ErrorEnvelope.

Dimensions become `key:value` tags; a gauge is a GAUGE point (a summary keeps min, max and count, its
value is sum/count); `count,delta=` is a COUNT point with delta temporality. A `dt.meta.unit` metadata line
sets the unit of the points of its metric (and payload format) in the same request, wherever it stands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sextant.config import Limits
from sextant.control.directory import Directory
from sextant.core.metrics import (
    MetricKind,
    PointBatch,
    Temporality,
    check_point_time,
    check_series,
    normalize_tags,
)
from sextant.core.timeutil import now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.requests import request_id
from sextant.faces.dynatrace.auth import TokenRefused, require_token
from sextant.faces.dynatrace.errors import ErrorEnvelope, error_response
from sextant.faces.dynatrace.line_protocol import (
    DataLine,
    Gauge,
    LineError,
    MetadataLine,
    Parsed,
    PayloadFormat,
    Summary,
    check_timestamp,
    parse_payload,
)
from sextant.ingest.writer import GroupCommitWriter, submit
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.dynatrace")
PATH = "/api/v2/metrics/ingest"
SCOPE = "metrics.ingest"
# Dynatrace lists the first ten invalid lines and counts the rest.
REPORTED_LINES = 10
# Charsets a text/plain body may declare, and the codec that reads each.
CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "iso-8859-1": "latin-1",
    "latin-1": "latin-1",
    "latin1": "latin-1",
}


class InvalidLine(msgspec.Struct, omit_defaults=True):
    """A refused line: its 1-based number in the body, why, and its metric key when it could be read."""

    line: int
    error: str
    identifier: str | None = None


class MetricIngestError(msgspec.Struct):
    code: int
    message: str
    invalidLines: list[InvalidLine]


class WarningLine(msgspec.Struct):
    line: int
    warning: str


class Warnings(msgspec.Struct):
    """Never sent: Sextant keeps metric keys as sent (no `.count`/`.gauge` suffixes to warn about)."""

    message: str
    changedMetricKeys: list[WarningLine]


class ValidationResponse(msgspec.Struct):
    linesOk: int
    linesInvalid: int
    error: MetricIngestError | None
    warnings: Warnings | None


@dataclass
class LinesRead:
    """What a request's lines come to: the points to store and the verdict on every line."""

    batch: PointBatch = field(default_factory=PointBatch)
    lines_ok: int = 0
    lines_invalid: int = 0
    # The first REPORTED_LINES of them.
    invalid: list[InvalidLine] = field(default_factory=list)

    def refuse(self, number: int, error: str, identifier: str | None) -> None:
        self.lines_invalid += 1
        if len(self.invalid) < REPORTED_LINES:
            self.invalid.append(InvalidLine(number, error, identifier))

    def verdict(self) -> Response:
        if self.lines_invalid == 0:
            return json_response(ValidationResponse(self.lines_ok, 0, None, None), 202)
        message = (
            f"{self.lines_invalid} invalid lines"
            if self.lines_invalid <= REPORTED_LINES
            else f"First {REPORTED_LINES} errors reported"
        )
        error = MetricIngestError(400, message, self.invalid)
        return json_response(ValidationResponse(self.lines_ok, self.lines_invalid, error, None), 400)


_EMPTY = ValidationResponse(0, 0, MetricIngestError(400, "empty request", []), None)


def read_lines(parsed: Iterable[tuple[int, Parsed]], org_id: int, now: int) -> LinesRead | None:
    """The points of every valid line and the refusal of every other; None when no line carries
    anything (an empty request)."""
    result = LinesRead()
    units: dict[tuple[str, PayloadFormat], str] = {}
    accepted: list[tuple[DataLine, tuple[str, ...], int]] = []
    # Lines of a payload repeat their series: each is normalized and checked once.
    series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[tuple[str, ...], str | None]] = {}
    seen = False
    for number, item in parsed:
        seen = True
        if isinstance(item, LineError):
            result.refuse(number, item.message, item.identifier)
        elif isinstance(item, MetadataLine):
            # Dynatrace keeps the first metadata of a metric that a payload gives.
            if item.unit is not None:
                units.setdefault((item.metric, item.payload_format), item.unit)
            result.lines_ok += 1
        else:
            known = series.get((item.metric, item.dimensions))
            if known is None:
                tags = normalize_tags(f"{key}:{value}" for key, value in item.dimensions)
                known = series[(item.metric, item.dimensions)] = (tags, check_series(item.metric, tags))
            tags, reason = known
            time_ms = now if item.timestamp_ms is None else item.timestamp_ms
            reason = reason or check_timestamp(time_ms, now)
            if reason is None and (too_far := check_point_time(time_ms, now)) is not None:
                reason = f"timestamp {time_ms} {too_far}"
            if reason is None:
                accepted.append((item, tags, time_ms))
                result.lines_ok += 1
            else:
                result.refuse(number, reason, item.metric)
    if not seen:
        return None
    _add_points(result.batch, accepted, units, org_id)
    return result


def _add_points(
    batch: PointBatch,
    accepted: list[tuple[DataLine, tuple[str, ...], int]],
    units: dict[tuple[str, PayloadFormat], str],
    org_id: int,
) -> None:
    # Plain values go in column by column, one call per series and kind.
    plain: dict[tuple[int, PayloadFormat, bool | None], tuple[list[int], list[float]]] = {}
    series_unit: dict[tuple[int, PayloadFormat], str | None] = {}
    ids: dict[tuple[str, tuple[str, ...]], int] = {}
    for line, tags, time_ms in accepted:
        sid = ids.get((line.metric, tags))
        if sid is None:
            sid = ids[(line.metric, tags)] = batch.add_series(org_id, line.metric, tags)
        payload = line.payload
        if isinstance(payload, Summary):
            batch.add(
                org_id=org_id,
                series_id=sid,
                time_ms=time_ms,
                kind=MetricKind.GAUGE,
                value=payload.sum / payload.count,
                count=payload.count,
                min=payload.min,
                max=payload.max,
                unit=units.get((line.metric, "gauge")),
            )
            continue
        fmt: PayloadFormat = "gauge" if isinstance(payload, Gauge) else "count"
        # A negative delta (Dynatrace counts take them, as from an OTel UpDownCounter) is not monotonic.
        monotonic = None if isinstance(payload, Gauge) else payload.value >= 0
        series_unit[(sid, fmt)] = units.get((line.metric, fmt))
        times, values = plain.setdefault((sid, fmt, monotonic), ([], []))
        times.append(time_ms)
        values.append(payload.value)
    for (sid, fmt, monotonic), (times, values) in plain.items():
        batch.add_values(
            org_id=org_id,
            series_id=sid,
            kind=MetricKind.GAUGE if fmt == "gauge" else MetricKind.COUNT,
            times_ms=times,
            values=values,
            temporality=None if fmt == "gauge" else Temporality.DELTA,
            monotonic=monotonic,
            unit=series_unit[(sid, fmt)],
        )


def body_encoding(content_type: str | None) -> str | Response:
    """The codec for a body of this Content-Type, or the 415 to answer. No Content-Type is taken as
    text/plain; charset=utf-8, which is what every Dynatrace example sends."""
    if not content_type:
        return "utf-8"
    media, _, parameters = content_type.partition(";")
    media = media.strip().lower()
    if media != "text/plain":
        return error_response(
            415, f"Content-Type {media!r} is not supported: send the lines as text/plain; charset=utf-8"
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            codec = CHARSETS.get(charset)
            if codec is None:
                return error_response(
                    415, f"charset {charset!r} is not supported: send the lines as UTF-8 (charset=utf-8)"
                )
            return codec
    return "utf-8"


class DynatraceMetricsIngest:
    def __init__(
        self, directory: Directory, writer: GroupCommitWriter, store: Backend, limits: Limits
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._store = store
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        envelope = Reply("Error", ErrorEnvelope)
        return [
            Endpoint(
                method="POST",
                path=PATH,
                asgi=self.asgi,
                summary=(
                    "Ingest data points in the Dynatrace metric ingestion protocol (text/plain, one line "
                    "per data point or metadata; token scope metrics.ingest)"
                ),
                tag="Dynatrace",
                responses={
                    202: Reply(
                        "Every line is valid; the data points are durable and visible to queries within "
                        "one second",
                        ValidationResponse,
                    ),
                    400: Reply(
                        "Some lines are invalid (the valid ones are stored, as with 202), or the body is "
                        "empty",
                        ValidationResponse,
                    ),
                    401: envelope,
                    403: envelope,
                    413: envelope,
                    415: envelope,
                    503: envelope,
                },
                auth_headers=("Authorization",),
            )
        ]

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self._serve(scope, receive)
        except ClientDisconnect:
            return
        except Exception:
            rid = request_id(scope)
            log.exception("unexpected failure serving POST %s (request id %s)", PATH, rid)
            response = error_response(500, f"Internal Server Error (request id {rid})")
        await response(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive) -> Response:
        headers = Headers(scope=scope)
        try:
            caller = require_token(headers, scope.get("query_string", b""), self._directory, SCOPE)
        except TokenRefused as exc:
            return error_response(exc.status, exc.message)
        encoding = body_encoding(headers.get("content-type"))
        if isinstance(encoding, Response):
            return encoding
        try:
            body = await read_body(
                receive,
                headers,
                max_bytes=self._limits.dynatrace_body_bytes,
                max_decoded=self._limits.dynatrace_decoded_bytes,
            )
        except BodyError as exc:
            return error_response(exc.status, str(exc))
        lines = read_lines(parse_payload(body, encoding), caller.org_id, now_ms())
        if lines is None:
            return json_response(_EMPTY, 400)
        busy = await submit(self._writer, lines.batch, "data points")
        if busy is not None:
            return error_response(503, busy.message, headers=busy.headers)
        return lines.verdict()
