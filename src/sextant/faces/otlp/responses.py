"""OTLP/HTTP responses: `ExportMetricsServiceResponse` on success, `google.rpc.Status` on failure, each in
the encoding of the request (binary protobuf or OTLP/JSON), as the specification requires.

The specification leaves `Status.code` to the server; it is the gRPC code the Collector's receiver
maps each HTTP status to (400 INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED,
503 UNAVAILABLE), with RESOURCE_EXHAUSTED for 413 (what a gRPC server answers to an oversized message),
INVALID_ARGUMENT for 415 (a request the client must change) and INTERNAL for 500.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from starlette.responses import Response

from sextant.faces.otlp.json_mapping import ExportMetricsPartialSuccess, ExportMetricsServiceResponse


class Encoding(StrEnum):
    """The two OTLP/HTTP payload encodings, by their Content-Type."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


def encoding_of(content_type: str | None) -> Encoding | None:
    """The encoding a Content-Type names (parameters such as charset ignored), or None."""
    media = (content_type or "").partition(";")[0].strip().lower()
    try:
        return Encoding(media)
    except ValueError:
        return None


class RpcStatus(msgspec.Struct, omit_defaults=True):
    """`google.rpc.Status`: the body of every OTLP/HTTP error (`details` is never set)."""

    code: int = 0
    message: str = ""


GRPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 500: 13, 503: 14}
_encode_json = msgspec.json.Encoder().encode


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def encode_status(code: int, message: str, encoding: Encoding) -> bytes:
    """A `google.rpc.Status` (`code` field 1, `message` field 2) in `encoding`."""
    if encoding is Encoding.JSON:
        return _encode_json(RpcStatus(code, message))
    text = message.encode()
    out = b"\x08" + _varint(code) if code else b""
    return out + (b"\x12" + _varint(len(text)) + text if text else b"")


def status_response(
    status: int, message: str, encoding: Encoding, headers: dict[str, str] | None = None
) -> Response:
    body = encode_status(GRPC_CODES[status], message, encoding)
    return Response(body, status, headers=headers, media_type=encoding.value)


def export_response(encoding: Encoding, rejected: int, error_message: str) -> Response:
    """200 with `partial_success` set when points were refused or there is something to say."""
    if encoding is Encoding.JSON:
        partial = (
            ExportMetricsPartialSuccess(str(rejected), error_message) if rejected or error_message else None
        )
        body = _encode_json(ExportMetricsServiceResponse(partial))
    else:
        response = metrics_service_pb2.ExportMetricsServiceResponse()
        if rejected or error_message:
            response.partial_success.rejected_data_points = rejected
            response.partial_success.error_message = error_message
        body = response.SerializeToString()
    return Response(body, 200, media_type=encoding.value)
