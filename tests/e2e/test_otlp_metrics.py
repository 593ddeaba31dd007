"""OTLP/HTTP metrics on a real server: the OpenTelemetry SDK's exporter on /v1/metrics and PostHog's
/i/v1/metrics, raw OTLP/JSON, partial success, every error with its body, limits and tenants."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from tests.faces.otlp.exports import NS, attrs, export
from tests.serverproc import RunningServer, provision, sextant, start_server

OTLP = "/v1/metrics"
CAPTURE = "/i/v1/metrics"
MIB = 1024 * 1024
PROTOBUF = "application/x-protobuf"
# The SDK's default explicit bucket boundaries.
SDK_BOUNDS = [
    0.0,
    5.0,
    10.0,
    25.0,
    50.0,
    75.0,
    100.0,
    250.0,
    500.0,
    750.0,
    1000.0,
    2500.0,
    5000.0,
    7500.0,
    10000.0,
]


def unique(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def stored(
    server: RunningServer, org: dict[str, Any], metric: str, points: int, *, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """The stored series of `metric`, which must hold exactly `points` points: waited for, since points are
    queryable within a second of the 200, not at once."""
    deadline = time.monotonic() + timeout
    while True:
        series = series_of(server, org, metric)
        found = sum(len(s["points"]) for s in series)
        if found >= points or time.monotonic() > deadline:
            assert found == points, series
            return series


def series_of(server: RunningServer, org: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """The stored series of `metric` in the organization, as they are now (points of the last 3 days)."""
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}
    now = now_ms()
    params = {"from": str(now - 3 * 86_400_000), "to": str(now + 2 * 3_600_000)}
    response = httpx.get(
        f"{server.url}/api/v2/sextant/metrics/{metric}/points", params=params, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    series: list[dict[str, Any]] = response.json()["series"]
    return series


def post(
    server: RunningServer,
    path: str,
    body: bytes,
    content_type: str | None = PROTOBUF,
    *,
    params: dict[str, str] | None = None,
    **headers: str,
) -> httpx.Response:
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    return httpx.post(server.url + path, content=body, headers=sent, params=params, timeout=60)


def dd(org: dict[str, Any]) -> dict[str, str]:
    return {"DD-API-KEY": org["keys"]["dd_api_key"]}


def bearer(org: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {org['keys']['posthog_project_token']}"}


def status_of(response: httpx.Response, status: int, content_type: str = PROTOBUF) -> Status:
    """The response is `status` with a google.rpc.Status body in `content_type`."""
    assert response.status_code == status, response.content
    assert response.headers["content-type"] == content_type
    if content_type == PROTOBUF:
        return Status.FromString(response.content)
    body = response.json()
    assert set(body) <= {"code", "message"}, body
    return Status(code=body.get("code", 0), message=body.get("message", ""))


def capture_error(response: httpx.Response, status: int) -> str:
    """PostHog's `{"error": "..."}` with `status`; the message."""
    assert response.status_code == status, response.content
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"], body
    message: str = body["error"]
    return message


# --- the OpenTelemetry SDK's exporter ---------------------------------------------------------------------


class RecordingExporter(OTLPMetricExporter):
    """The SDK's exporter, keeping the result of each export (the reader discards it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[MetricExportResult] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        self.results.append(result)
        return result


class Instruments:
    """A counter, an up-down counter, a histogram and an observable gauge, exported on demand."""

    def __init__(self, endpoint: str, headers: dict[str, str], temporality: AggregationTemporality) -> None:
        self.names = {kind: unique(f"sdk.{kind}") for kind in ("counter", "updown", "histogram", "gauge")}
        self.exporter = RecordingExporter(
            endpoint=endpoint,
            headers=headers,
            compression=Compression.Gzip,
            preferred_temporality={
                Counter: temporality,
                UpDownCounter: temporality,
                Histogram: temporality,
                ObservableGauge: temporality,
            },
        )
        reader = PeriodicExportingMetricReader(self.exporter, export_interval_millis=3_600_000)
        resource = Resource.create({"service.name": "checkout", "deployment.environment": "test"})
        self.provider = MeterProvider(metric_readers=[reader], resource=resource)
        meter = self.provider.get_meter("tests.otlp")
        self.counter = meter.create_counter(self.names["counter"], unit="{order}")
        self.updown = meter.create_up_down_counter(self.names["updown"], unit="{item}")
        self.histogram = meter.create_histogram(self.names["histogram"], unit="ms")
        self.temperature = 21.5

        def observe(_: CallbackOptions) -> Iterator[Observation]:
            yield Observation(self.temperature, {"room": "lab"})

        meter.create_observable_gauge(self.names["gauge"], callbacks=[observe], unit="Cel")

    def flush(self) -> None:
        assert self.provider.force_flush(30_000)
        assert self.exporter.results[-1] == MetricExportResult.SUCCESS, self.exporter.results

    def close(self) -> None:
        self.provider.shutdown()


def _record_twice(instruments: Instruments) -> None:
    instruments.counter.add(3, {"region": "eu"})
    instruments.updown.add(5)
    instruments.updown.add(-2)
    for value in (1, 7, 30, 800):
        instruments.histogram.record(value, {"route": "/cart"})
    instruments.flush()
    instruments.counter.add(4, {"region": "eu"})
    instruments.updown.add(1)
    instruments.histogram.record(2, {"route": "/cart"})
    instruments.temperature = 19.0
    instruments.flush()


RESOURCE_TAGS = {"service.name:checkout", "service:checkout", "deployment.environment:test"}


def _only_series(series: list[dict[str, Any]], *tags: str) -> list[dict[str, Any]]:
    (one,) = series
    assert RESOURCE_TAGS | set(tags) <= set(one["tags"]), one["tags"]
    assert "telemetry.sdk.language:python" in one["tags"]
    points: list[dict[str, Any]] = one["points"]
    return points


def _check_sdk_points(
    server: RunningServer, org: dict[str, Any], instruments: Instruments, temporality: str
) -> None:
    delta = temporality == "delta"
    names = instruments.names
    first, second = _only_series(stored(server, org, names["counter"], 2), "region:eu")
    for point in (first, second):
        assert (point["kind"], point["temporality"], point["monotonic"], point["unit"]) == (
            "count",
            temporality,
            True,
            "{order}",
        )
        assert point["interval_ms"] == point["time_ms"] - point["start_time_ms"]
    assert (first["value"], second["value"]) == ((3.0, 4.0) if delta else (3.0, 7.0))
    if delta:
        assert second["start_time_ms"] == first["time_ms"]
    else:
        assert second["start_time_ms"] == first["start_time_ms"]

    first, second = _only_series(stored(server, org, names["updown"], 2))
    assert (first["kind"], first["temporality"], first["monotonic"], first["unit"]) == (
        "count",
        temporality,
        False,
        "{item}",
    )
    assert (first["value"], second["value"]) == ((3.0, 1.0) if delta else (3.0, 4.0))

    first, second = _only_series(stored(server, org, names["histogram"], 2), "route:/cart")
    assert {
        k: first[k] for k in ("kind", "temporality", "value", "count", "min", "max", "bounds", "unit")
    } == {
        "kind": "histogram",
        "temporality": temporality,
        "value": 838.0,
        "count": 4,
        "min": 1.0,
        "max": 800.0,
        "bounds": SDK_BOUNDS,
        "unit": "ms",
    }
    assert first["bucket_counts"] == [0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert "monotonic" not in first
    if delta:
        assert (second["value"], second["count"], second["min"], second["max"]) == (2.0, 1, 2.0, 2.0)
        assert second["bucket_counts"] == [0, 1] + [0] * 14
    else:
        assert (second["value"], second["count"], second["min"], second["max"]) == (840.0, 5, 1.0, 800.0)
        assert second["bucket_counts"] == [0, 2, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]

    first, second = _only_series(stored(server, org, names["gauge"], 2), "room:lab")
    assert (first["kind"], first["value"], second["value"], first["unit"]) == ("gauge", 21.5, 19.0, "Cel")
    assert not {"temporality", "monotonic", "start_time_ms", "interval_ms"} & set(first)


@pytest.mark.parametrize("temporality", [AggregationTemporality.DELTA, AggregationTemporality.CUMULATIVE])
def test_sdk_exporter_with_gzip(
    server: RunningServer, acme: dict[str, Any], temporality: AggregationTemporality
) -> None:
    instruments = Instruments(server.url + OTLP, dd(acme), temporality)
    try:
        _record_twice(instruments)
        _check_sdk_points(server, acme, instruments, temporality.name.lower())
    finally:
        # Shutting down exports once more: checked before.
        instruments.close()


@pytest.mark.parametrize("where", ["bearer", "query"])
def test_sdk_exporter_on_posthogs_path(server: RunningServer, acme: dict[str, Any], where: str) -> None:
    token = acme["keys"]["posthog_project_token"]
    if where == "bearer":
        endpoint, headers = server.url + CAPTURE, {"Authorization": f"Bearer {token}"}
    else:
        endpoint, headers = f"{server.url}{CAPTURE}?token={token}", {}
    instruments = Instruments(endpoint, headers, AggregationTemporality.CUMULATIVE)
    try:
        _record_twice(instruments)
        _check_sdk_points(server, acme, instruments, "cumulative")
    finally:
        instruments.close()


def test_sdk_exporter_reports_a_refused_key(server: RunningServer) -> None:
    exporter = RecordingExporter(endpoint=server.url + OTLP, headers={"DD-API-KEY": "0" * 32})
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, 3_600_000)])
    provider.get_meter("t").create_counter(unique("refused")).add(1)
    provider.force_flush()
    # A 403 is not retried: one attempt, reported as a failure.
    assert exporter.results == [MetricExportResult.FAILURE]
    provider.shutdown()


# --- OTLP/JSON as sent by hand ----------------------------------------------------------------------------


def json_export(names: dict[str, str], now: int) -> dict[str, Any]:
    t, start = str(now * NS), str((now - 60_000) * NS)
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "json-svc"}},
                        {"key": "host.cores", "value": {"intValue": "8"}},
                        {"key": "canary", "value": {"boolValue": False}},
                    ]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "by-hand", "version": "1.0"},
                        "metrics": [
                            {
                                "name": names["gauge"],
                                "unit": "Cel",
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": t,
                                            "asDouble": 21.5,
                                            "attributes": [
                                                {"key": "room", "value": {"stringValue": "lab"}},
                                                {"key": "ratio", "value": {"doubleValue": 0.25}},
                                            ],
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": t,
                                                    "asDouble": 21.5,
                                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                                    "spanId": "EEE19B7EC3C1B174",
                                                }
                                            ],
                                        }
                                    ]
                                },
                            },
                            {
                                "name": names["sum"],
                                "unit": "{request}",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {"startTimeUnixNano": start, "timeUnixNano": t, "asInt": "42"}
                                    ],
                                },
                            },
                            {
                                "name": names["histogram"],
                                "unit": "ms",
                                "histogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": start,
                                            "timeUnixNano": t,
                                            "count": "4",
                                            "sum": 55.5,
                                            "min": 0.5,
                                            "max": 40,
                                            "explicitBounds": [1, 10],
                                            "bucketCounts": ["1", "2", "1"],
                                            "attributes": [
                                                {
                                                    "key": "tags",
                                                    "value": {
                                                        "arrayValue": {
                                                            "values": [
                                                                {"stringValue": "a"},
                                                                {"intValue": "2"},
                                                            ]
                                                        }
                                                    },
                                                }
                                            ],
                                        }
                                    ],
                                },
                            },
                            {
                                "name": names["exponential"],
                                "unit": "By",
                                "exponentialHistogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": start,
                                            "timeUnixNano": t,
                                            "count": "7",
                                            "sum": 11.5,
                                            "scale": 1,
                                            "zeroCount": "1",
                                            "zeroThreshold": 0.001,
                                            "positive": {"offset": 2, "bucketCounts": ["2", "3"]},
                                            "negative": {"offset": -1, "bucketCounts": ["1"]},
                                            "min": -0.8,
                                            "max": 3.5,
                                        }
                                    ],
                                },
                            },
                            {
                                "name": names["summary"],
                                "unit": "s",
                                "summary": {
                                    "dataPoints": [
                                        {
                                            "startTimeUnixNano": start,
                                            "timeUnixNano": t,
                                            "count": "10",
                                            "sum": 12.5,
                                            "quantileValues": [
                                                {"quantile": 0, "value": 0.1},
                                                {"quantile": 0.5, "value": 1},
                                                {"quantile": 1, "value": 3.25},
                                            ],
                                        }
                                    ]
                                },
                            },
                        ],
                    }
                ],
            }
        ]
    }


JSON_RESOURCE_TAGS = ["canary:false", "host.cores:8", "service.name:json-svc", "service:json-svc"]


def _expected_json_points(now: int) -> dict[str, tuple[list[str], dict[str, Any]]]:
    started = {"time_ms": now, "start_time_ms": now - 60_000, "interval_ms": 60_000}
    return {
        "gauge": (
            sorted([*JSON_RESOURCE_TAGS, "room:lab", "ratio:0.25"]),
            {"time_ms": now, "kind": "gauge", "value": 21.5, "unit": "Cel"},
        ),
        "sum": (
            JSON_RESOURCE_TAGS,
            {
                **started,
                "kind": "count",
                "value": 42.0,
                "temporality": "cumulative",
                "monotonic": True,
                "unit": "{request}",
            },
        ),
        "histogram": (
            sorted([*JSON_RESOURCE_TAGS, 'tags:["a",2]']),
            {
                **started,
                "kind": "histogram",
                "value": 55.5,
                "count": 4,
                "min": 0.5,
                "max": 40.0,
                "bounds": [1.0, 10.0],
                "bucket_counts": [1, 2, 1],
                "temporality": "delta",
                "unit": "ms",
            },
        ),
        "exponential": (
            JSON_RESOURCE_TAGS,
            {
                **started,
                "kind": "exponential_histogram",
                "value": 11.5,
                "count": 7,
                "min": -0.8,
                "max": 3.5,
                # scale 1, base √2: negative index -1 holds |v| in (√2/2, 1]; positive 2 and 3 hold
                # (2, 2√2] and (2√2, 4].
                "bounds": [-1.0, -(2**-0.5), 2.0, 2**1.5, 4.0],
                "bucket_counts": [0, 1, 1, 2, 3, 0],
                "temporality": "delta",
                "unit": "By",
            },
        ),
        "summary": (
            JSON_RESOURCE_TAGS,
            {
                **started,
                "kind": "summary",
                "value": 12.5,
                "count": 10,
                "bounds": [0.0, 0.5, 1.0],
                "samples": [0.1, 1.0, 3.25],
                "unit": "s",
            },
        ),
    }


@pytest.mark.parametrize("path", [OTLP, CAPTURE])
def test_otlp_json_with_every_kind(server: RunningServer, acme: dict[str, Any], path: str) -> None:
    names = {kind: unique(f"json.{kind}") for kind in ("gauge", "sum", "histogram", "exponential", "summary")}
    now = now_ms()
    credentials = dd(acme) if path == OTLP else bearer(acme)
    response = post(
        server, path, json.dumps(json_export(names, now)).encode(), "application/json", **credentials
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == b"{}"
    for kind, (tags, point) in _expected_json_points(now).items():
        (series,) = stored(server, acme, names[kind], 1)
        assert series["metric"] == names[kind]
        assert series["tags"] == tags
        assert series["points"] == [point], kind


def test_deflate_and_zstd_bodies(server: RunningServer, acme: dict[str, Any]) -> None:
    now = now_ms()
    for encoding, compress in (("deflate", zlib.compress), ("zstd", zstandard.ZstdCompressor().compress)):
        name = unique(f"enc.{encoding}")
        body = _gauges(name, now, 3).SerializeToString()
        response = post(server, OTLP, compress(body), **dd(acme), **{"Content-Encoding": encoding})
        assert response.status_code == 200, response.content
        assert response.content == b""
        assert len(stored(server, acme, name, 3)[0]["points"]) == 3


def test_empty_export_is_a_success(server: RunningServer, acme: dict[str, Any]) -> None:
    response = post(server, OTLP, b"", **dd(acme))
    assert (response.status_code, response.content, response.headers["content-type"]) == (200, b"", PROTOBUF)
    response = post(server, OTLP, b"{}", "application/json", **dd(acme))
    assert (response.status_code, response.content) == (200, b"{}")
    assert post(server, CAPTURE, b"", None, **bearer(acme)).content == b"{}"


def test_capture_decodes_json_lines_and_gzip_without_a_header(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    names = {
        kind: unique(f"lines.{kind}") for kind in ("gauge", "sum", "histogram", "exponential", "summary")
    }
    now = now_ms()
    line = json.dumps(json_export(names, now)).encode()
    lines = line + b"\n" + line.replace(str(now * NS).encode(), str((now - 1000) * NS).encode()) + b"\n"
    response = post(server, CAPTURE, gzip.compress(lines), "text/plain", **bearer(acme))
    assert (response.status_code, response.content) == (200, b"{}")
    assert len(stored(server, acme, names["gauge"], 2)[0]["points"]) == 2


# --- partial success --------------------------------------------------------------------------------------


def _gauges(name: str, now: int, n: int, **point: Any) -> ExportMetricsServiceRequest:
    points = [
        pb.NumberDataPoint(time_unix_nano=(now - i) * NS, as_double=float(i), **point) for i in range(n)
    ]
    return export(pb.Metric(name=name, gauge=pb.Gauge(data_points=points)))


def _mixed(name: str, now: int) -> ExportMetricsServiceRequest:
    """3 good gauge points; 2 NaN points, 1 point 2 days ahead, a sum of unspecified temporality."""
    request = _gauges(name, now, 3)
    metrics = request.resource_metrics[0].scope_metrics[0].metrics
    bad = metrics.add(name=name + ".bad")
    bad.gauge.data_points.add(time_unix_nano=now * NS, as_double=math.nan)
    bad.gauge.data_points.add(time_unix_nano=(now - 1) * NS, as_double=math.nan)
    bad.gauge.data_points.add(time_unix_nano=(now + 2 * 86_400_000) * NS, as_double=1)
    unspecified = metrics.add(name=name + ".sum")
    unspecified.sum.data_points.add(time_unix_nano=now * NS, as_int=1)
    return request


def _check_partial(rejected: int, message: str, name: str) -> None:
    assert rejected == 4
    assert message.startswith("4 data points refused: ")
    assert f"metric '{name}.bad': value is NaN; only finite numbers are stored (2 data points)" in message
    assert f"metric '{name}.bad': point time is more than 1 hour in the future" in message
    assert f"metric '{name}.sum': aggregation_temporality 0 is not 1 (delta) or 2 (cumulative)" in message


def test_partial_success_in_protobuf(server: RunningServer, acme: dict[str, Any]) -> None:
    name, now = unique("partial.pb"), now_ms()
    response = post(server, OTLP, _mixed(name, now).SerializeToString(), **dd(acme))
    assert response.status_code == 200 and response.headers["content-type"] == PROTOBUF
    partial = ExportMetricsServiceResponse.FromString(response.content).partial_success
    _check_partial(partial.rejected_data_points, partial.error_message, name)
    assert [p["value"] for p in stored(server, acme, name, 3)[0]["points"]] == [2.0, 1.0, 0.0]
    stored(server, acme, name + ".bad", 0, timeout=0)


def test_partial_success_in_json(server: RunningServer, acme: dict[str, Any]) -> None:
    name, now = unique("partial.json"), now_ms()
    body = json_format.MessageToJson(_mixed(name, now), use_integers_for_enums=True).encode()
    for path, credentials in ((OTLP, dd(acme)), (CAPTURE, bearer(acme))):
        response = post(server, path, body, "application/json", **credentials)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        partial = response.json()["partialSuccess"]
        assert isinstance(partial["rejectedDataPoints"], str)
        _check_partial(int(partial["rejectedDataPoints"]), partial["errorMessage"], name)
    # The same 3 points twice, one per request (stored again, as OTLP allows duplicates).
    assert len(stored(server, acme, name, 6)[0]["points"]) == 6


def test_no_recorded_value_points_are_not_refused(server: RunningServer, acme: dict[str, Any]) -> None:
    name, now = unique("stale"), now_ms()
    request = _gauges(name, now, 2)
    request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points.add(
        time_unix_nano=now * NS, flags=pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    )
    response = post(server, OTLP, request.SerializeToString(), **dd(acme))
    assert (response.status_code, response.content) == (200, b"")
    assert len(stored(server, acme, name, 2)[0]["points"]) == 2


# --- errors -----------------------------------------------------------------------------------------------


def _valid(name: str = "errors") -> bytes:
    return _gauges(unique(name), now_ms(), 1).SerializeToString()


def test_missing_key_is_401(server: RunningServer) -> None:
    status = status_of(post(server, OTLP, _valid()), 401)
    assert (status.code, status.message) == (
        16,
        "API key is missing: send your Datadog API key in the DD-API-KEY header",
    )
    assert status_of(post(server, OTLP, b"{}", "application/json"), 401, "application/json").code == 16


@pytest.mark.parametrize(
    "kind", ["dd_app_key", "dynatrace_token", "posthog_personal_key", "posthog_project_token"]
)
def test_key_of_another_kind_is_403(server: RunningServer, acme: dict[str, Any], kind: str) -> None:
    status = status_of(post(server, OTLP, _valid(), **{"DD-API-KEY": acme["keys"][kind]}), 403)
    assert status.code == 7 and kind in status.message


def test_unknown_key_and_key_without_the_scope_are_403(server: RunningServer, acme: dict[str, Any]) -> None:
    status = status_of(
        post(server, OTLP, b"{}", "application/json", **{"DD-API-KEY": "f" * 32}), 403, "application/json"
    )
    assert status.message == "API key is not valid: it is unknown or has been revoked"
    created = json.loads(
        sextant(
            "keys",
            "create",
            "--org",
            "acme",
            "--kind",
            "dd_api_key",
            "--scope",
            "events_write",
            "--json",
            "--data-dir",
            str(server.data_dir),
        ).stdout
    )
    status = status_of(post(server, OTLP, _valid(), **{"DD-API-KEY": created["secret"]}), 403)
    assert status.message == "API key is not valid: it lacks the metrics_write scope"


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/protobuf", "application/x-www-form-urlencoded"]
)
def test_other_content_types_are_415(
    server: RunningServer, acme: dict[str, Any], content_type: str | None
) -> None:
    status = status_of(post(server, OTLP, _valid(), content_type, **dd(acme)), 415)
    assert status.code == 3
    assert status.message == (
        f"Content-Type {content_type!r} is not supported; send application/x-protobuf or application/json"
    )


def test_unsupported_content_encoding_is_415(server: RunningServer, acme: dict[str, Any]) -> None:
    status = status_of(
        post(server, OTLP, b"{}", "application/json", **dd(acme), **{"Content-Encoding": "br"}),
        415,
        "application/json",
    )
    assert status.message == "Content-Encoding 'br' is not supported; use gzip, deflate, zstd or identity"
    response = post(server, CAPTURE, b"{}", "application/json", **bearer(acme), **{"Content-Encoding": "br"})
    assert capture_error(response, 415) == status.message


BAD_BODIES = [
    (PROTOBUF, b"\xff\xff\xff\xff", "body is not a protobuf ExportMetricsServiceRequest"),
    (PROTOBUF, _gauges("truncated", 0, 1).SerializeToString()[:-3], "body is not a protobuf"),
    ("application/json", b'{"resourceMetrics": [', "body is not valid JSON"),
    (
        "application/json",
        b'{"resourceMetrics": "all"}',
        "Expected `array`, got `str` - at `$.resourceMetrics`",
    ),
    (
        "application/json",
        json.dumps(
            {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {
                                "metrics": [
                                    {
                                        "name": "m",
                                        "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA"},
                                    }
                                ]
                            }
                        ]
                    }
                ]
            }
        ).encode(),
        "Expected `int`, got `str`",
    ),
]


@pytest.mark.parametrize(("content_type", "body", "fragment"), BAD_BODIES)
def test_undecodable_body_is_400(
    server: RunningServer, acme: dict[str, Any], content_type: str, body: bytes, fragment: str
) -> None:
    status = status_of(post(server, OTLP, body, content_type, **dd(acme)), 400, content_type)
    assert status.code == 3 and fragment in status.message, status.message


def test_bad_gzip_is_400(server: RunningServer, acme: dict[str, Any]) -> None:
    status = status_of(post(server, OTLP, _valid(), **dd(acme), **{"Content-Encoding": "gzip"}), 400)
    assert "not valid gzip" in status.message


def test_every_point_refused_is_400(server: RunningServer, acme: dict[str, Any]) -> None:
    name, now = unique("all.refused"), now_ms()
    body = _gauges(name, now - 500 * 86_400_000, 2).SerializeToString()
    status = status_of(post(server, OTLP, body, **dd(acme)), 400)
    assert status.message.startswith(
        f"2 data points refused: metric '{name}': point time is more than 15 months"
    )
    message = capture_error(post(server, CAPTURE, body, **bearer(acme)), 400)
    assert message.startswith(f"2 data points refused: metric '{name}': point time is more than 15 months")
    stored(server, acme, name, 0, timeout=0)


# --- limits -----------------------------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """A valid export of one point, padded to `size` bytes with an unknown field (which decoders skip)."""
    body = _valid("padded")
    tag = _varint((1000 << 3) | 2)  # field 1000, length-delimited
    room = size - len(body) - len(tag)
    length = _varint(room - len(_varint(room)))
    padding = tag + length + b"\0" * (room - len(length))
    assert len(body + padding) == size
    assert len(ExportMetricsServiceRequest.FromString(body + padding).resource_metrics) == 1
    return body + padding


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_body_at_the_limit_is_accepted_and_over_it_is_413(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    assert post(server, OTLP, _padded(8 * MIB), **dd(acme)).status_code == 200
    status = status_of(post(server, OTLP, _padded(8 * MIB + 1), **dd(acme)), 413)
    assert (status.code, status.message) == (
        8,
        f"request body is {8 * MIB + 1} bytes; the limit is {8 * MIB} bytes",
    )
    message = capture_error(post(server, CAPTURE, _padded(8 * MIB + 1), **bearer(acme)), 413)
    assert message == status.message


def test_decompressed_limit_and_gzip_bomb_are_413(server: RunningServer, acme: dict[str, Any]) -> None:
    gz = {"Content-Encoding": "gzip"}
    assert post(server, OTLP, gzip.compress(_padded(32 * MIB)), **dd(acme), **gz).status_code == 200
    expected = f"decompressed request body is larger than allowed; the limit is {32 * MIB} bytes"
    status = status_of(post(server, OTLP, gzip.compress(_padded(32 * MIB + 1)), **dd(acme), **gz), 413)
    assert status.message == expected
    bomb = gzip.compress(b"\0" * (200 * MIB), compresslevel=9)
    assert len(bomb) < MIB
    assert status_of(post(server, OTLP, bomb, **dd(acme), **gz), 413).message == expected
    # PostHog's path gunzips by the magic bytes alone, within the same limit.
    assert capture_error(post(server, CAPTURE, bomb, **bearer(acme)), 413) == expected


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir, "--max-queued-points", "1000", "--max-queue-wait", "0")
    try:
        org = provision(data_dir, "busy")
        name = unique("busy")
        request = export(
            pb.Metric(
                name=name,
                gauge=pb.Gauge(
                    data_points=[
                        pb.NumberDataPoint(time_unix_nano=now_ms() * NS, as_double=1, attributes=attrs(n=i))
                        for i in range(1000)
                    ]
                ),
            )
        )
        body = request.SerializeToString()
        headers = {"Content-Type": PROTOBUF, **dd(org)}
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
            responses = list(
                pool.map(lambda _: client.post(running.url + OTLP, content=body, headers=headers), range(48))
            )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["retry-after"] == "1"
        status = status_of(refused, 503)
        assert (status.code, status.message) == (
            14,
            "Too many points are waiting to be written; retry shortly",
        )
        # Exactly the acknowledged exports were stored: a refusal writes nothing.
        series = stored(running, org, name, 1000 * statuses.count(200), timeout=10)
        assert len(series) == 1000
    finally:
        assert running.stop() == 0


# --- PostHog's path ---------------------------------------------------------------------------------------


def test_capture_without_a_token_is_401(server: RunningServer) -> None:
    assert capture_error(post(server, CAPTURE, _valid()), 401) == "No token provided"
    assert capture_error(post(server, CAPTURE, _valid(), params={"token": ""}), 401) == "No token provided"
    assert capture_error(post(server, CAPTURE, _valid(), Authorization="Bearer"), 401) == "No token provided"


def test_capture_with_a_token_that_is_not_a_project_token_is_401(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    hint = "Use your project API key, which you can find in your PostHog project settings."
    message = capture_error(post(server, CAPTURE, _valid(), Authorization="Bearer phc_unknown"), 401)
    assert message == f"Invalid project API key (unknown or revoked). {hint}"
    message = capture_error(
        post(server, CAPTURE, _valid(), params={"token": acme["keys"]["posthog_personal_key"]}), 401
    )
    assert message == f"Invalid project API key (a posthog_personal_key is not a project token). {hint}"
    # The bearer header wins over the query parameter.
    response = post(
        server,
        CAPTURE,
        _valid(),
        params={"token": acme["keys"]["posthog_project_token"]},
        Authorization="Bearer nope",
    )
    assert "unknown or revoked" in capture_error(response, 401)


def test_capture_undecodable_body_is_400(server: RunningServer, acme: dict[str, Any]) -> None:
    message = capture_error(post(server, CAPTURE, b"\xff{", None, **bearer(acme)), 400)
    assert message.startswith("Failed to decode JSON: body is not valid JSON")
    assert " or Protobuf: body is not a protobuf ExportMetricsServiceRequest" in message
    message = capture_error(post(server, CAPTURE, b"\xff{", PROTOBUF, **bearer(acme)), 400)
    assert message.startswith("Failed to decode Protobuf: body is not a protobuf")


def test_revoked_project_token_is_401(server: RunningServer, acme: dict[str, Any]) -> None:
    created = json.loads(
        sextant(
            "keys",
            "create",
            "--org",
            "acme",
            "--kind",
            "posthog_project_token",
            "--json",
            "--data-dir",
            str(server.data_dir),
        ).stdout
    )
    headers = {"Authorization": f"Bearer {created['secret']}"}
    assert post(server, CAPTURE, _valid(), **headers).status_code == 200
    sextant("keys", "revoke", created["id"], "--data-dir", str(server.data_dir))
    assert "unknown or revoked" in capture_error(post(server, CAPTURE, _valid(), **headers), 401)


# --- tenants and documentation ----------------------------------------------------------------------------


def test_another_organization_sees_nothing(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    name, now = unique("tenant"), now_ms()
    assert post(server, OTLP, _gauges(name, now, 2).SerializeToString(), **dd(acme)).status_code == 200
    assert (
        post(server, CAPTURE, _gauges(name, now, 1).SerializeToString(), **bearer(globex)).status_code == 200
    )
    assert len(stored(server, acme, name, 2)[0]["points"]) == 2
    assert len(stored(server, globex, name, 1)[0]["points"]) == 1


def test_openapi_lists_both_paths(server: RunningServer) -> None:
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for path in (OTLP, CAPTURE):
        operation = paths[path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]
        assert set(operation["responses"]) >= {"200", "400", "401", "413"}
    assert paths[OTLP]["post"]["security"] == [{"DD-API-KEY": []}]


DOC = Path(__file__).resolve().parents[2] / "docs" / "opentelemetry.md"
_BLOCK = re.compile(r"```(sh|python)\n(.*?)```", re.S)
CURL_SERIES_TAGS = ["region:eu", "service.name:checkout", "service:checkout"]


def _run(script: str, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _expected_output(script: str) -> str | None:
    """What the example says it prints: its `# ` comment line."""
    lines = [line[2:] for line in script.splitlines() if line.startswith("# ")]
    return lines[0] if lines else None


def test_the_documentation_examples_work(server: RunningServer, acme: dict[str, Any], tmp_path: Path) -> None:
    """Every shell and Python example of docs/opentelemetry.md, run as written against the server (only the
    host differs), in a directory holding a data/credentials.json as `make run` writes it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "credentials.json").write_text(json.dumps(acme))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    blocks = [
        (kind, text.replace("http://127.0.0.1:8080", server.url))
        for kind, text in _BLOCK.findall(DOC.read_text())
    ]
    (program,) = [text for kind, text in blocks if kind == "python"]
    (tmp_path / "send_metrics.py").write_text(program)
    shell = [text for kind, text in blocks if kind == "sh"]
    (read_back,) = [text for text in shell if "/points" in text]
    sending = [text for text in shell if text is not read_back]
    assert sum("python3 send_metrics.py" in text for text in sending) == 2
    assert sum("curl" in text for text in sending) == 2
    for script in sending:
        output = _run(script, tmp_path, env)
        expected = _expected_output(script)
        if expected is not None:
            assert output.strip() == expected
    deadline = time.monotonic() + 5
    while True:
        series = series_of(server, acme, "checkout.orders")
        sdk = [s for s in series if {"telemetry.sdk.language:python", "region:eu"} <= set(s["tags"])]
        by_hand = [s for s in series if s["tags"] == CURL_SERIES_TAGS]
        if (len(sdk) >= 2 and by_hand) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    # The SDK program ran twice (Datadog's and PostHog's path), each process its own service.instance.id.
    assert len(sdk) >= 2 and by_hand, series
    assert all(p["kind"] == "count" and p["unit"] == "{order}" for s in sdk for p in s["points"])
    output = _run(read_back, tmp_path, env)
    expected = _expected_output(read_back)
    assert expected is not None
    for fragment in expected.split("..."):
        assert fragment.strip() in output
