"""OTLP/HTTP response bodies, read back with the official `google.rpc.Status` and OTLP messages."""

from __future__ import annotations

import json

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from sextant.faces.otlp.responses import (
    Encoding,
    encode_status,
    encoding_of,
    export_response,
    status_response,
)


@pytest.mark.parametrize(
    ("code", "message"),
    [(3, "bad"), (0, ""), (16, ""), (0, "only a message"), (14, "é" * 300), (2**31 - 1, "x" * 20_000)],
)
def test_status_in_protobuf_reads_back(code: int, message: str) -> None:
    status = Status.FromString(encode_status(code, message, Encoding.PROTOBUF))
    assert (status.code, status.message, list(status.details)) == (code, message, [])


def test_status_in_json() -> None:
    assert json.loads(encode_status(7, "nope", Encoding.JSON)) == {"code": 7, "message": "nope"}


@pytest.mark.parametrize(
    ("http", "grpc"), [(400, 3), (401, 16), (403, 7), (413, 8), (415, 3), (500, 13), (503, 14)]
)
def test_status_codes(http: int, grpc: int) -> None:
    response = status_response(http, "m", Encoding.PROTOBUF, {"Retry-After": "1"})
    assert response.status_code == http
    assert response.headers["content-type"] == "application/x-protobuf"
    assert response.headers["retry-after"] == "1"
    assert Status.FromString(response.body).code == grpc


def test_export_responses() -> None:
    full = export_response(Encoding.PROTOBUF, 0, "")
    assert (full.status_code, full.body, full.headers["content-type"]) == (200, b"", "application/x-protobuf")
    assert not ExportMetricsServiceResponse.FromString(full.body).HasField("partial_success")
    partial = ExportMetricsServiceResponse.FromString(export_response(Encoding.PROTOBUF, 3, "why").body)
    assert (partial.partial_success.rejected_data_points, partial.partial_success.error_message) == (3, "why")
    assert export_response(Encoding.JSON, 0, "").body == b"{}"
    body = json.loads(export_response(Encoding.JSON, 3, "why").body)
    assert body == {"partialSuccess": {"rejectedDataPoints": "3", "errorMessage": "why"}}
    # A warning without refusals still says rejected 0, as the specification asks.
    warning = json.loads(export_response(Encoding.JSON, 0, "note").body)
    assert warning == {"partialSuccess": {"rejectedDataPoints": "0", "errorMessage": "note"}}


def test_encoding_of_content_types() -> None:
    assert encoding_of("application/x-protobuf") is Encoding.PROTOBUF
    assert encoding_of("Application/JSON; charset=utf-8") is Encoding.JSON
    assert encoding_of("application/protobuf") is None
    assert encoding_of("text/plain") is None
    assert encoding_of(None) is None
