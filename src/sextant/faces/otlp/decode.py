"""Request bodies to exports: binary protobuf or OTLP/JSON, by Content-Type or, where none names one,
by trying both (as PostHog's capture does)."""

from __future__ import annotations

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from sextant.faces.otlp.json_mapping import (
    InvalidJson,
    NotJson,
    decode_json_request,
    decode_ndjson_request,
)
from sextant.faces.otlp.responses import Encoding
from sextant.faces.otlp.translate import OtlpRequest


class UndecodableBody(ValueError):
    """A body that is not a metrics export in the encoding it claims (or in any, when it claims none)."""


def decode_protobuf(body: bytes) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise UndecodableBody(f"body is not a protobuf ExportMetricsServiceRequest ({exc})") from exc
    return request


def decode_request(body: bytes, encoding: Encoding) -> OtlpRequest:
    """OTLP/HTTP: the encoding is the one the Content-Type names."""
    if encoding is Encoding.PROTOBUF:
        return decode_protobuf(body)
    try:
        return decode_json_request(body)
    except InvalidJson as exc:
        raise UndecodableBody(str(exc)) from exc


def decode_capture_request(body: bytes, encoding: Encoding | None) -> OtlpRequest:
    """PostHog's capture: JSON may also be JSON Lines; without a known Content-Type, protobuf is tried
    first, then JSON. The errors read as PostHog's (`Failed to decode JSON: ... or Protobuf: ...`)."""
    if encoding is Encoding.PROTOBUF:
        try:
            return decode_protobuf(body)
        except UndecodableBody as exc:
            raise UndecodableBody(f"Failed to decode Protobuf: {exc}") from exc
    proto_error = None
    if encoding is None:
        try:
            return decode_protobuf(body)
        except UndecodableBody as exc:
            proto_error = exc
    try:
        try:
            return decode_json_request(body)
        except NotJson:
            if b"\n" not in body.strip():
                raise
            return decode_ndjson_request(body)
    except InvalidJson as exc:
        also = f" or Protobuf: {proto_error}" if proto_error is not None else ""
        raise UndecodableBody(f"Failed to decode JSON: {exc}{also}") from exc
