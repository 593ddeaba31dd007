"""OTLP/HTTP metrics: POST /v1/metrics (Datadog API key) and /i/v1/metrics (PostHog project token).

`/v1/metrics` is OTLP/HTTP as the specification defines it: an `ExportMetricsServiceRequest` in binary
protobuf or OTLP/JSON by Content-Type (anything else is 415), gzip, deflate or zstd by
Content-Encoding; 200 with an `ExportMetricsServiceResponse` in the request's encoding, its
`partial_success` set when some points were refused; failures with a `google.rpc.Status` body.
Authenticated like Datadog's OTLP intake, by a Datadog API key with `metrics_write` in `DD-API-KEY`.

`/i/v1/metrics` is PostHog's capture endpoint for OTel metrics: the project token, errors as
`{"error": "..."}`, success as `{}` (OTLP/JSON's empty response), any Content-Type, gzip recognized by
its magic bytes too. Both store the same points from the same export (see `translate`).

Either way a 200 means every stored point is durable. A request whose every point is refused is a
400 (nothing was accepted, so it is not a partial success); the points refused from a request that
also stored some are counted in `partial_success`.
"""

from __future__ import annotations

import logging

import msgspec
from starlette.datastructures import Headers, QueryParams
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sextant.config import Limits
from sextant.control.directory import Directory
from sextant.core.timeutil import now_ms
from sextant.edge.body import BodyError, decode_content, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.requests import request_id
from sextant.faces.datadog.auth import AuthFailure, require_api_key
from sextant.faces.otlp.decode import UndecodableBody, decode_capture_request, decode_request
from sextant.faces.otlp.json_mapping import ExportMetricsServiceRequest, ExportMetricsServiceResponse
from sextant.faces.otlp.responses import Encoding, RpcStatus, encoding_of, export_response, status_response
from sextant.faces.otlp.translate import OtlpRequest, Translation, translate
from sextant.faces.posthog.project_token import TokenRefused, require_project_token
from sextant.ingest.writer import GroupCommitWriter, submit
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.otlp")
OTLP_PATH = "/v1/metrics"
POSTHOG_PATH = "/i/v1/metrics"
_GZIP_MAGIC = b"\x1f\x8b"


class CaptureError(msgspec.Struct):
    """PostHog capture's error body."""

    error: str


class _Refusal(Exception):
    """An export that is answered with an error; each face writes it in its own format."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class OtlpMetricsIntake:
    def __init__(
        self, directory: Directory, writer: GroupCommitWriter, store: Backend, limits: Limits
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._store = store
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                method="POST",
                path=OTLP_PATH,
                asgi=self.otlp,
                summary="OTLP/HTTP metrics export: ExportMetricsServiceRequest as application/x-protobuf "
                "or application/json (OTLP/JSON, shown); the response is in the request's encoding",
                tag="OpenTelemetry",
                request=ExportMetricsServiceRequest,
                responses={
                    200: Reply(
                        "Stored and durable; partialSuccess counts the points refused and says why",
                        ExportMetricsServiceResponse,
                    ),
                    400: Reply("Undecodable body, or every point refused (google.rpc.Status)", RpcStatus),
                    401: Reply("No DD-API-KEY (google.rpc.Status)", RpcStatus),
                    403: Reply("The API key is not valid for metrics_write (google.rpc.Status)", RpcStatus),
                    413: Reply("Body too large, compressed or decompressed (google.rpc.Status)", RpcStatus),
                    415: Reply("Content-Type or -Encoding not supported (google.rpc.Status)", RpcStatus),
                    503: Reply("Busy or stopping; retry after Retry-After (google.rpc.Status)", RpcStatus),
                },
                auth_headers=("DD-API-KEY",),
            ),
            Endpoint(
                method="POST",
                path=POSTHOG_PATH,
                asgi=self.capture,
                summary="PostHog's OTel metrics capture: OTLP protobuf, OTLP/JSON or JSON Lines, with the "
                "project token in Authorization: Bearer or ?token=",
                tag="PostHog",
                request=ExportMetricsServiceRequest,
                responses={
                    200: Reply(
                        "Stored and durable: {} (partialSuccess when some points were refused)",
                        ExportMetricsServiceResponse,
                    ),
                    400: Reply("Undecodable body, or every point refused", CaptureError),
                    401: Reply("No token provided, or not a valid project token", CaptureError),
                    413: Reply("Body too large, compressed or decompressed", CaptureError),
                    415: Reply("Content-Encoding not supported", CaptureError),
                    503: Reply("Busy or stopping; retry after Retry-After", CaptureError),
                },
                auth_headers=("Authorization",),
            ),
        ]

    async def otlp(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/metrics."""
        headers = Headers(scope=scope)
        content_type = headers.get("content-type")
        encoding = encoding_of(content_type)
        # Errors are written in the request's encoding; for one that is neither, in protobuf, OTLP's own.
        answer_in = encoding or Encoding.PROTOBUF
        try:
            org_id = require_api_key(headers, self._directory, "metrics_write").org_id
            if encoding is None:
                raise _Refusal(
                    415,
                    f"Content-Type {content_type!r} is not supported; send application/x-protobuf or "
                    "application/json",
                )
            body = await self._read(receive, headers)
            translation = await self._accept(decode_request(body, encoding), org_id, scope)
            response = export_response(encoding, translation.rejected, translation.error_message())
        except ClientDisconnect:
            return
        except AuthFailure as exc:
            response = status_response(exc.status, exc.detail, answer_in)
        except BodyError as exc:
            response = status_response(exc.status, str(exc), answer_in)
        except _Refusal as exc:
            response = status_response(exc.status, exc.message, answer_in, exc.headers)
        except UndecodableBody as exc:
            response = status_response(400, str(exc), answer_in)
        except Exception:
            rid = request_id(scope)
            log.exception("unexpected failure serving POST %s (request id %s)", OTLP_PATH, rid)
            response = status_response(500, f"Internal Server Error (request id {rid})", answer_in)
        await response(scope, receive, send)

    async def capture(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /i/v1/metrics."""
        headers = Headers(scope=scope)
        try:
            query = QueryParams(scope["query_string"])
            org_id = require_project_token(headers, query, self._directory).org_id
            body = await self._read(receive, headers)
            if body.startswith(_GZIP_MAGIC):
                # PostHog gunzips by the magic bytes, whatever the headers say.
                body = decode_content(body, "gzip", self._limits.otlp_decoded_bytes)
            request = decode_capture_request(body, encoding_of(headers.get("content-type")))
            translation = await self._accept(request, org_id, scope)
            response = export_response(Encoding.JSON, translation.rejected, translation.error_message())
        except ClientDisconnect:
            return
        except TokenRefused as exc:
            response = _capture_error(exc.status, exc.detail)
        except BodyError as exc:
            response = _capture_error(exc.status, str(exc))
        except _Refusal as exc:
            response = _capture_error(exc.status, exc.message, exc.headers)
        except UndecodableBody as exc:
            response = _capture_error(400, str(exc))
        except Exception:
            rid = request_id(scope)
            log.exception("unexpected failure serving POST %s (request id %s)", POSTHOG_PATH, rid)
            response = _capture_error(500, f"Internal server error (request id {rid})")
        await response(scope, receive, send)

    async def _read(self, receive: Receive, headers: Headers) -> bytes:
        return await read_body(
            receive,
            headers,
            max_bytes=self._limits.otlp_body_bytes,
            max_decoded=self._limits.otlp_decoded_bytes,
            allow_zstd=True,
        )

    async def _accept(self, request: OtlpRequest, org_id: int, scope: Scope) -> Translation:
        """Store what can be stored; returns once it is durable. _Refusal when nothing is accepted."""
        translation = translate(request, org_id, now_ms())
        if translation.problems:
            log.warning(
                "OTLP metrics for organization %d (request id %s): %s",
                org_id,
                request_id(scope),
                translation.error_message(),
            )
        if translation.rejected and not translation.stored:
            raise _Refusal(400, translation.error_message())
        busy = await submit(self._writer, translation.batch, "points")
        if busy is not None:
            raise _Refusal(503, busy.message, busy.headers)
        return translation


def _capture_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(CaptureError(message), status, headers)
