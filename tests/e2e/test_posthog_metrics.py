"""PostHog's Metrics API on a real server over HTTP, with metrics sent over OTLP (the OpenTelemetry SDK's
exporter, or OTLP protobuf where a test needs exact times): the reference's queue-depth scenario with
every expected outcome, counters and rate, histograms and histogram_quantile against an independent
computation, formulas, names, every refusal with its body, the limits, and tenants."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from tests.faces.otlp.exports import CUMULATIVE, DELTA, NS, attrs, export
from tests.serverproc import RunningServer, provision, sextant

CAPTURE = "/i/v1/metrics"
MINUTE = 60_000
DOC = Path(__file__).resolve().parents[2] / "docs" / "posthog-metrics.md"


def unique(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC).isoformat()


def minute_start(ago_ms: int) -> int:
    return (now_ms() - ago_ms) // MINUTE * MINUTE


def personal(org: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {org['keys']['posthog_personal_key']}"}


def url(
    server: RunningServer, org: dict[str, Any], action: str, base: str = "projects", slash: str = ""
) -> str:
    return f"{server.url}/api/{base}/{org['posthog_project_id']}/metrics/{action}{slash}"


def send(server: RunningServer, org: dict[str, Any], request: ExportMetricsServiceRequest) -> None:
    """An OTLP protobuf export on PostHog's capture path, with the organization's project token."""
    response = httpx.post(
        server.url + CAPTURE,
        content=request.SerializeToString(),
        headers={
            "Authorization": f"Bearer {org['keys']['posthog_project_token']}",
            "Content-Type": "application/x-protobuf",
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text


def gauge(name: str, points: list[tuple[int, float, dict[str, Any]]]) -> pb.Metric:
    return pb.Metric(
        name=name,
        gauge=pb.Gauge(
            data_points=[
                pb.NumberDataPoint(time_unix_nano=t * NS, as_double=v, attributes=attrs(**a))
                for t, v, a in points
            ]
        ),
    )


def counter(name: str, points: list[tuple[int, float]], temporality: int, **labels: Any) -> pb.Metric:
    return pb.Metric(
        name=name,
        sum=pb.Sum(
            aggregation_temporality=temporality,
            is_monotonic=True,
            data_points=[
                pb.NumberDataPoint(time_unix_nano=t * NS, as_double=v, attributes=attrs(**labels))
                for t, v in points
            ],
        ),
    )


def histogram(
    name: str, bounds: list[float], points: list[tuple[int, list[int]]], temporality: int, **labels: Any
) -> pb.Metric:
    return pb.Metric(
        name=name,
        histogram=pb.Histogram(
            aggregation_temporality=temporality,
            data_points=[
                pb.HistogramDataPoint(
                    time_unix_nano=t * NS,
                    count=sum(counts),
                    sum=0.0,
                    explicit_bounds=bounds,
                    bucket_counts=counts,
                    attributes=attrs(**labels),
                )
                for t, counts in points
            ],
        ),
    )


def call(
    server: RunningServer,
    org: dict[str, Any],
    action: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    base: str = "projects",
    slash: str = "",
) -> httpx.Response:
    sent = personal(org) if headers is None else headers
    target = url(server, org, action, base, slash)
    if action in ("values", "has_metrics"):
        return httpx.get(target, headers=sent, params=params, timeout=60)
    return httpx.post(target, json=body, headers=sent, params=params, timeout=60)


def answer(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """`check()` once it returns something truthy: points are visible within a second of the 200."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def refusal(
    response: httpx.Response, status: int, type_: str, code: str, detail: str, attr: str | None
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"type": type_, "code": code, "detail": detail, "attr": attr}


def query_body(metric: str, start: int, end: int, **fields: Any) -> dict[str, Any]:
    return {"query": {"metricName": metric, "dateFrom": iso(start), "dateTo": iso(end), **fields}}


def run_query(
    server: RunningServer, org: dict[str, Any], body: dict[str, Any], points: int
) -> list[dict[str, Any]]:
    """The query's series once they hold `points` points with a value in all."""

    def ready() -> list[dict[str, Any]] | None:
        results: list[dict[str, Any]] = answer(call(server, org, "query", body))["results"]
        found = sum(1 for s in results for p in s["points"] if p["value"] is not None)
        return results if found >= points else None

    results = eventually(ready)
    assert results is not None, answer(call(server, org, "query", body))
    return results


# --- the reference's queue-depth scenario -----------------------------------------------------------------


@pytest.fixture(scope="module")
def queue(server: RunningServer, acme: dict[str, Any]) -> dict[str, Any]:
    """Gauge `queue_depth`: shard a 10 for minutes 0-11 then 100 for 12-19, shard b 5 throughout, an hour
    ago; plus the gap, counter and service scenarios of PostHog's own tests."""
    start = minute_start(3_600_000)
    names = {kind: unique(f"ph.{kind}") for kind in ("queue_depth", "gap", "reqs_total", "svc", "flat")}
    a = [(start + m * MINUTE, 10.0 if m < 12 else 100.0, {"shard": "a"}) for m in range(20)]
    b = [(start + m * MINUTE, 5.0, {"shard": "b"}) for m in range(20)]
    gap = [(start + m * MINUTE, 10.0 if m < 5 else 100000.0 if m < 10 else 100.0, {}) for m in range(20)]
    send(
        server,
        acme,
        export(
            gauge(names["queue_depth"], a + b),
            gauge(names["gap"], gap),
            counter(
                names["reqs_total"], [(start + m * MINUTE, float(m * 60)) for m in range(20)], CUMULATIVE
            ),
            service="queue-worker",
        ),
    )
    for service, anomaly in (("svc-steady", 10.0), ("svc-spiky", 100.0)):
        points = [(start + m * MINUTE, 10.0 if m < 10 else anomaly, {}) for m in range(20)]
        send(server, acme, export(gauge(names["svc"], points), service=service))
    # Loads keep the order of the writes: once the last write is visible, all of them are.
    last = query_body(
        names["svc"], start, start + 20 * MINUTE, aggregation="count", groupBy=[{"key": "service_name"}]
    )
    run_query(server, acme, last, 40)
    return {"start": start, **names}


def characterize(
    server: RunningServer, org: dict[str, Any], queue: dict[str, Any], metric: str, **fields: Any
) -> httpx.Response:
    start = queue["start"]
    query = {
        "metricName": queue.get(metric, metric),
        "anomalyFrom": iso(start + 10 * MINUTE),
        "anomalyTo": iso(start + 20 * MINUTE),
        **fields,
    }
    return call(server, org, "characterize", {"query": query})


REPORT_KEYS = [
    "metric_name",
    "aggregation",
    "interval",
    "baseline_from",
    "baseline_to",
    "anomaly_from",
    "anomaly_to",
    "baseline_mean",
    "baseline_stddev",
    "anomaly_mean",
    "anomaly_peak",
    "change_ratio",
    "direction",
    "onset_time",
    "top_movers",
    "series",
]


def test_characterizes_magnitude_direction_and_onset(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    report = answer(characterize(server, acme, queue, "queue_depth"))
    start = queue["start"]
    assert list(report) == REPORT_KEYS
    assert report["metric_name"] == queue["queue_depth"]
    assert (report["aggregation"], report["interval"], report["direction"]) == ("avg", "minute", "up")
    assert report["baseline_mean"] == pytest.approx(7.5)
    assert report["baseline_stddev"] == 0.0
    assert report["anomaly_mean"] == pytest.approx(43.5)
    assert report["anomaly_peak"] == pytest.approx(52.5)
    assert report["change_ratio"] == pytest.approx(5.8)
    assert report["onset_time"] == iso(start + 12 * MINUTE)
    assert (report["baseline_from"], report["baseline_to"]) == (iso(start), iso(start + 10 * MINUTE))
    assert (report["anomaly_from"], report["anomaly_to"]) == (
        iso(start + 10 * MINUTE),
        iso(start + 20 * MINUTE),
    )
    series = report["series"]
    assert (series["labels"], series["metric_name"], series["clause"]) == (
        {},
        queue["queue_depth"],
        "anomaly",
    )
    assert [p["time"] for p in series["points"]] == [iso(start + m * MINUTE) for m in range(20)]
    assert [p["value"] for p in series["points"]] == [7.5] * 12 + [52.5] * 8


def test_top_movers_blame_the_right_label(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    report = answer(characterize(server, acme, queue, "queue_depth", candidateKeys=["shard"]))
    assert report["top_movers"] == [
        {
            "key": "shard",
            "label": "a",
            "baseline_value": 10.0,
            "anomaly_value": pytest.approx(82.0),
            "change_ratio": pytest.approx(8.2),
        }
    ]


def test_candidate_keys_are_discovered_with_service_name(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    report = answer(characterize(server, acme, queue, "queue_depth"))
    movers = [(m["key"], m["label"]) for m in report["top_movers"]]
    # shard a moved most (|log 8.2| x 82); the whole service moved with it; shard b did not move.
    assert movers == [("shard", "a"), ("service_name", "queue-worker")]
    assert report["top_movers"][1]["change_ratio"] == pytest.approx(5.8)


def test_service_name_candidate_key(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    report = answer(characterize(server, acme, queue, "svc", candidateKeys=["service_name"]))
    assert [(m["key"], m["label"]) for m in report["top_movers"]] == [("service_name", "svc-spiky")]
    assert report["top_movers"][0]["change_ratio"] == pytest.approx(10.0)


def test_filter_scopes_read_resource_or_data_point_attributes(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    # `region` is a resource attribute of one exporter and a data point attribute of another's points.
    name, start = unique("ph.scoped"), minute_start(600_000)
    send(server, acme, export(gauge(name, [(start, 1.0, {"tier": "a"})]), region="eu"))
    send(server, acme, export(gauge(name, [(start, 2.0, {"region": "eu"})])))
    send(server, acme, export(gauge(name, [(start, 4.0, {"region": "us"})]), region="eu"))

    def total(scope: str, value: str) -> Any:
        flt = {"key": "region", "value": value, "scope": scope}
        body = query_body(name, start, start + MINUTE, aggregation="sum", interval="minute", filters=[flt])
        (series,) = answer(call(server, acme, "query", body))["results"]
        return series["points"][0]["value"] if series["points"] else None

    run_query(server, acme, query_body(name, start, start + MINUTE, aggregation="count"), 1)
    eventually(lambda: total("auto", "eu") == 7.0)
    assert total("resource", "eu") == 5.0
    assert total("attribute", "eu") == 2.0
    assert total("attribute", "us") == 4.0
    # auto reads the resource's value where the resource has the key: the third series is "eu".
    assert total("auto", "us") is None


def test_explicit_disjoint_baseline_excludes_the_gap(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    start = queue["start"]
    report = answer(
        characterize(server, acme, queue, "gap", baselineFrom=iso(start), baselineTo=iso(start + 5 * MINUTE))
    )
    assert (report["baseline_mean"], report["anomaly_mean"], report["direction"]) == (10.0, 100.0, "up")
    # The gap is plotted all the same.
    assert len(report["series"]["points"]) == 20


def test_counter_auto_picks_rate(server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]) -> None:
    report = answer(characterize(server, acme, queue, "reqs_total"))
    assert report["aggregation"] == "rate"
    # 60 more per minute: a rate of 1/s, except the series' first minute (nothing to compare with).
    assert [p["value"] for p in report["series"]["points"]] == [0.0] + [1.0] * 19
    # 1.0 against a baseline of 0.9: up, but never 3 standard deviations (0.9) above it.
    assert (report["direction"], report["onset_time"]) == ("up", None)
    assert report["baseline_mean"] == pytest.approx(0.9)


def test_no_data_is_flat(server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]) -> None:
    report = answer(characterize(server, acme, queue, unique("nonexistent_metric")))
    assert (report["aggregation"], report["direction"], report["onset_time"], report["top_movers"]) == (
        "avg",
        "flat",
        None,
        [],
    )
    assert report["series"]["points"] == []
    for key in ("baseline_mean", "baseline_stddev", "anomaly_mean", "anomaly_peak", "change_ratio"):
        assert report[key] == 0.0


def test_characterize_with_an_aggregation_and_a_filter(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    only_b = [{"key": "shard", "value": "b"}]
    report = answer(characterize(server, acme, queue, "queue_depth", aggregation="max", filters=only_b))
    assert (report["aggregation"], report["direction"], report["baseline_mean"]) == ("max", "flat", 5.0)
    quantile = answer(characterize(server, acme, queue, "queue_depth", aggregation="p95"))
    assert quantile["aggregation"] == "p95"
    assert quantile["anomaly_peak"] == pytest.approx(5 + 95 * 0.95)


@pytest.mark.parametrize(
    ("window", "detail"),
    [
        ({"anomalyFrom": 20, "anomalyTo": 10}, "anomaly_to must be after anomaly_from"),
        ({"baselineTo": 15}, "the baseline window must end at or before anomaly_from"),
        ({"baselineFrom": 5, "baselineTo": 0}, "baseline_to must be after baseline_from"),
        ({"baselineFrom": -44 * 1440}, "date range too wide; the maximum span is 31 days"),
    ],
)
def test_characterize_rejects_bad_windows(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any], window: dict[str, int], detail: str
) -> None:
    start = queue["start"]
    response = characterize(
        server, acme, queue, "queue_depth", **{k: iso(start + v * MINUTE) for k, v in window.items()}
    )
    refusal(response, 400, "invalid_request", "parse_error", detail, None)


def test_characterize_quantile_out_of_range(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    response = characterize(server, acme, queue, "queue_depth", aggregation="histogram_quantile", quantile=1)
    refusal(
        response,
        400,
        "invalid_request",
        "parse_error",
        "histogram_quantile requires a quantile in (0, 1)",
        None,
    )


def test_characterize_validation(server: RunningServer, acme: dict[str, Any]) -> None:
    response = call(server, acme, "characterize", {"query": {"metricName": "x"}})
    refusal(response, 400, "validation_error", "required", "This field is required.", "query__anomalyFrom")
    response = call(
        server,
        acme,
        "characterize",
        {"query": {"metricName": "x", "anomalyFrom": "2024-01-01", "candidateKeys": "k"}},
    )
    refusal(
        response,
        400,
        "validation_error",
        "not_a_list",
        'Expected a list of items but got type "str".',
        "query__candidateKeys",
    )
    response = call(
        server,
        acme,
        "characterize",
        {"query": {"metricName": "x", "anomalyFrom": "2024-01-01", "aggregation": "median"}},
    )
    refusal(
        response,
        400,
        "validation_error",
        "invalid_choice",
        '"median" is not a valid choice.',
        "query__aggregation",
    )


def test_query_on_the_queue(server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]) -> None:
    start = queue["start"]
    body = query_body(
        queue["queue_depth"], start, start + 20 * MINUTE, aggregation="avg", groupBy=[{"key": "shard"}]
    )
    results = answer(call(server, acme, "query", body))["results"]
    # Largest first; every series on the same grid.
    assert [(s["labels"], s["metric_name"], s["clause"]) for s in results] == [
        ({"shard": "a"}, queue["queue_depth"], "a"),
        ({"shard": "b"}, queue["queue_depth"], "a"),
    ]
    assert list(results[0]) == ["labels", "points", "metric_name", "clause"]
    assert [p["value"] for p in results[0]["points"]] == [10.0] * 12 + [100.0] * 8
    assert [p["time"] for p in results[1]["points"]] == [iso(start + m * MINUTE) for m in range(20)]
    # The interval is picked for about 60 buckets: 20 minutes are 20 one-minute buckets; a day is hourly.
    day = query_body(queue["queue_depth"], start - 23 * 3_600_000, start + 3_600_000, aggregation="max")
    (series,) = answer(call(server, acme, "query", day))["results"]
    hours = sorted({(start + m * MINUTE) // 3_600_000 * 3_600_000 for m in range(20)})
    assert [p["time"] for p in series["points"]] == [iso(h) for h in hours]
    assert {p["value"] for p in series["points"]} <= {10.0, 100.0}


def test_filter_scopes(server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]) -> None:
    start = queue["start"]
    window = (start, start + 20 * MINUTE)

    def values(filters: list[dict[str, str]]) -> list[float | None]:
        body = query_body(queue["queue_depth"], *window, aggregation="max", filters=filters)
        (series,) = answer(call(server, acme, "query", body))["results"]
        return [p["value"] for p in series["points"]]

    # shard is a data point attribute, service.name a resource attribute: each is found in its own scope
    # and by auto, and not in the other.
    for scope in ("attribute", "auto"):
        assert values([{"key": "shard", "value": "b", "scope": scope}]) == [5.0] * 20
    for scope in ("resource", "auto"):
        assert (
            values([{"key": "service.name", "value": "queue-worker", "scope": scope}])
            == [10.0] * 12 + [100.0] * 8
        )
    assert values([{"key": "shard", "value": "b", "scope": "resource"}]) == []
    assert values([{"key": "service.name", "value": "queue-worker", "scope": "attribute"}]) == []
    assert values([{"key": "service_name", "op": "neq", "value": "queue-worker"}]) == []
    assert (
        values(
            [
                {"key": "shard", "op": "not_regex", "value": "^a"},
                {"key": "shard", "op": "regex", "value": "b|c"},
            ]
        )
        == [5.0] * 20
    )


def test_routes_slash_environments_and_key_sources(
    server: RunningServer, acme: dict[str, Any], queue: dict[str, Any]
) -> None:
    start = queue["start"]
    body = query_body(queue["queue_depth"], start, start + 20 * MINUTE, aggregation="count")
    key = acme["keys"]["posthog_personal_key"]
    expected = answer(call(server, acme, "query", body))
    for base in ("projects", "environments"):
        for slash in ("", "/"):
            assert answer(call(server, acme, "query", body, base=base, slash=slash)) == expected
    assert answer(call(server, acme, "query", body, headers={}, params={"personal_api_key": key})) == expected
    assert answer(call(server, acme, "query", {**body, "personal_api_key": key}, headers={})) == expected
    current = httpx.post(
        f"{server.url}/api/projects/@current/metrics/query", json=body, headers=personal(acme)
    )
    assert answer(current) == expected


# --- counters and rate ------------------------------------------------------------------------------------


def test_counters_increase_and_rate_with_a_reset(server: RunningServer, acme: dict[str, Any]) -> None:
    start = (now_ms() - 2 * 3_600_000) // (5 * MINUTE) * (5 * MINUTE)
    name = unique("ph.requests")
    cumulative = [(start + m * MINUTE, v) for m, v in enumerate([10.0, 70.0, 40.0, 100.0])]
    delta = [(start + m * MINUTE, v) for m, v in enumerate([6.0, 12.0, 0.0, 30.0])]
    send(
        server,
        acme,
        export(
            counter(name, cumulative, CUMULATIVE, route="/cart"),
            counter(name, delta, DELTA, route="/pay"),
        ),
    )
    window = (start, start + 4 * MINUTE)
    increase = run_query(
        server, acme, query_body(name, *window, aggregation="increase", groupBy=[{"key": "route"}]), 8
    )
    by_route = {s["labels"]["route"]: [p["value"] for p in s["points"]] for s in increase}
    # Cumulative: the first point has nothing before it (0); after a drop (a reset) the value is the increase.
    assert by_route == {"/cart": [0.0, 60.0, 40.0, 60.0], "/pay": [6.0, 12.0, 0.0, 30.0]}
    (rate,) = answer(call(server, acme, "query", query_body(name, *window, aggregation="rate")))["results"]
    assert [p["value"] for p in rate["points"]] == pytest.approx([0.1, 1.2, 40 / 60, 1.5])
    # Over five minutes, the increases add up within the one bucket.
    five = query_body(name, start, start + 4 * MINUTE, aggregation="increase", interval="minute_5")
    (total,) = answer(call(server, acme, "query", five))["results"]
    assert [p["value"] for p in total["points"]] == [208.0]


def sdk_provider(
    server: RunningServer,
    org: dict[str, Any],
    temporality: AggregationTemporality,
    bounds: list[float] | None = None,
) -> tuple[MeterProvider, list[MetricExportResult]]:
    """A meter provider exporting on demand to PostHog's capture path with the project token."""
    results: list[MetricExportResult] = []

    class Recording(OTLPMetricExporter):
        def export(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
        ) -> MetricExportResult:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            results.append(result)
            return result

    exporter = Recording(
        endpoint=server.url + CAPTURE,
        headers={"Authorization": f"Bearer {org['keys']['posthog_project_token']}"},
        preferred_temporality={Counter: temporality, Histogram: temporality},
    )
    views = (
        [View(instrument_type=Histogram, aggregation=ExplicitBucketHistogramAggregation(bounds))]
        if bounds
        else []
    )
    provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)],
        resource=Resource.create({"service.name": "checkout"}),
        views=views,
    )
    return provider, results


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_sdk_counter_increase(
    server: RunningServer, acme: dict[str, Any], temporality: AggregationTemporality
) -> None:
    name = unique("ph.sdk.orders")
    provider, results = sdk_provider(server, acme, temporality)
    orders = provider.get_meter("tests.posthog").create_counter(name)
    started = now_ms()
    try:
        for amount in (3, 4, 5):
            orders.add(amount, {"region": "eu"})
            assert provider.force_flush(30_000)
        assert results == [MetricExportResult.SUCCESS] * 3
        assert eventually(lambda: len(stored_times(server, acme, name)) == 3)
        body = query_body(name, started - MINUTE, now_ms() + MINUTE, aggregation="increase", interval="hour")
        series = answer(call(server, acme, "query", body))["results"]
        total = sum(p["value"] for s in series for p in s["points"])
        # Cumulative exports 3, 7, 12: the first has nothing before it, so 4 + 5; delta exports 3, 4, 5.
        assert total == (9.0 if temporality is AggregationTemporality.CUMULATIVE else 12.0)
    finally:
        provider.shutdown()


# --- histograms -------------------------------------------------------------------------------------------


def prometheus_quantile(q: float, bounds: list[float], counts: list[float]) -> float:
    """histogram_quantile as Prometheus documents it, written here on its own."""
    total = sum(counts)
    rank = q * total
    below = 0.0
    for i, count in enumerate(counts):
        if below + count >= rank:
            if i == len(bounds):
                return bounds[-1]
            lower = 0.0 if i == 0 else bounds[i - 1]
            return lower + (bounds[i] - lower) * (rank - below) / count
        below += count
    return bounds[-1]


def bucket_counts(bounds: list[float], values: list[float]) -> list[float]:
    """How many of `values` each bucket (upper bound inclusive, as OpenTelemetry counts) holds."""
    counts = [0.0] * (len(bounds) + 1)
    for v in values:
        counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
    return counts


def test_histogram_quantile_from_exact_buckets(server: RunningServer, acme: dict[str, Any]) -> None:
    start = minute_start(2 * 3_600_000)
    name = unique("ph.latency")
    bounds = [10.0, 50.0, 100.0, 500.0]
    # Cumulative per route, with a reset on /a; delta on /b.
    route_a = [[1, 2, 0, 0, 0], [3, 6, 2, 0, 1], [4, 9, 8, 1, 1], [0, 1, 2, 3, 0]]
    route_b = [[0, 5, 5, 0, 0], [2, 2, 2, 2, 2], [0, 0, 1, 0, 0], [9, 0, 0, 0, 0]]
    times = [start + m * MINUTE for m in range(4)]
    send(
        server,
        acme,
        export(
            histogram(name, bounds, list(zip(times, route_a, strict=True)), CUMULATIVE, route="/a"),
            histogram(name, bounds, list(zip(times, route_b, strict=True)), DELTA, route="/b"),
        ),
    )
    increases_a = [[0.0] * 5] + [
        [float(c - p) for c, p in zip(now, before, strict=True)]
        if all(c >= p for c, p in zip(now, before, strict=True))
        else [float(c) for c in now]
        for before, now in itertools.pairwise(route_a)
    ]
    for q in (0.5, 0.9, 0.99):
        body = query_body(name, start, start + 4 * MINUTE, aggregation="histogram_quantile", quantile=q)
        (series,) = run_query(server, acme, body, 4)
        expected = []
        for a, b in zip(increases_a, route_b, strict=True):
            expected.append(prometheus_quantile(q, bounds, [x + y for x, y in zip(a, b, strict=True)]))
        assert [p["value"] for p in series["points"]] == pytest.approx(expected)
        grouped = answer(
            call(server, acme, "query", {**body, "query": {**body["query"], "groupBy": [{"key": "route"}]}})
        )
        by_route = {s["labels"]["route"]: s["points"] for s in grouped["results"]}
        # /a's first minute has no increase: no quantile, zero-filled onto the shared grid.
        assert [p["value"] for p in by_route["/a"]] == pytest.approx(
            [0.0] + [prometheus_quantile(q, bounds, counts) for counts in increases_a[1:]]
        )
        assert [p["value"] for p in by_route["/b"]] == pytest.approx(
            [prometheus_quantile(q, bounds, [float(c) for c in counts]) for counts in route_b]
        )


def test_histogram_quantile_from_the_sdk(server: RunningServer, acme: dict[str, Any]) -> None:
    bounds = [5.0, 25.0, 100.0, 250.0, 1000.0]
    name = unique("ph.sdk.latency")
    provider, results = sdk_provider(server, acme, AggregationTemporality.DELTA, bounds)
    latency = provider.get_meter("tests.posthog").create_histogram(name, unit="ms")
    rounds = [[1, 7, 30, 30, 800], [2, 3, 140, 260, 260, 4000]]
    started = now_ms()
    try:
        for values in rounds:
            for v in values:
                latency.record(v)
            assert provider.force_flush(30_000)
        assert results == [MetricExportResult.SUCCESS] * 2
        assert eventually(lambda: len(stored_times(server, acme, name)) == 2)
        body = query_body(
            name,
            started - MINUTE,
            now_ms() + MINUTE,
            aggregation="histogram_quantile",
            quantile=0.75,
            interval="minute",
        )
        (series,) = answer(call(server, acme, "query", body))["results"]
        points = series["points"]
    finally:
        provider.shutdown()
    # Which minute each export landed in, then the quantile of the values recorded for that minute.
    by_minute: dict[int, list[float]] = {}
    for t, values in zip(stored_times(server, acme, name), rounds, strict=True):
        by_minute.setdefault(t // MINUTE * MINUTE, []).extend(float(v) for v in values)
    assert [p["time"] for p in points] == [iso(t) for t in sorted(by_minute)]
    assert [p["value"] for p in points] == pytest.approx(
        [prometheus_quantile(0.75, bounds, bucket_counts(bounds, by_minute[t])) for t in sorted(by_minute)]
    )


def stored_times(server: RunningServer, org: dict[str, Any], metric: str) -> list[int]:
    """The times of a metric's stored points (Sextant's raw read-back API)."""
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}
    params = {"from": str(now_ms() - 3_600_000), "to": str(now_ms() + 3_600_000)}
    response = httpx.get(
        f"{server.url}/api/v2/sextant/metrics/{metric}/points", params=params, headers=headers
    )
    assert response.status_code == 200, response.text
    return sorted(p["time_ms"] for s in response.json()["series"] for p in s["points"])


def test_histogram_bounds_that_differ_are_refused(server: RunningServer, acme: dict[str, Any]) -> None:
    start = minute_start(3_600_000)
    name = unique("ph.layouts")
    send(
        server,
        acme,
        export(
            histogram(name, [1.0, 2.0], [(start, [1, 1, 1])], DELTA, pod="x"),
            histogram(name, [5.0, 9.0], [(start, [1, 1, 1])], DELTA, pod="y"),
        ),
    )
    body = query_body(name, start, start + MINUTE, aggregation="histogram_quantile", quantile=0.5)
    run_query(server, acme, query_body(name, start, start + MINUTE, aggregation="count"), 1)
    refusal(
        call(server, acme, "query", body),
        400,
        "invalid_request",
        "parse_error",
        "histogram bounds differ across the selected series/time range; "
        "narrow the query with filters so all series share one bucket layout",
        None,
    )


# --- formulas ---------------------------------------------------------------------------------------------


def test_formulas(server: RunningServer, acme: dict[str, Any]) -> None:
    start = minute_start(90 * MINUTE)
    errors, total = unique("ph.errors"), unique("ph.total")
    send(
        server,
        acme,
        export(
            gauge(
                errors,
                [
                    (start, 1.0, {"host": "h1"}),
                    (start + MINUTE, 3.0, {"host": "h1"}),
                    (start, 2.0, {"host": "h2"}),
                ],
            ),
            gauge(
                total,
                [
                    (start, 10.0, {"host": "h1"}),
                    (start + MINUTE, 0.0, {"host": "h1"}),
                    (start, 4.0, {"host": "h2"}),
                ],
            ),
        ),
    )
    clauses = [
        {"name": "e", "metricName": errors, "aggregation": "sum", "groupBy": [{"key": "host"}]},
        {"name": "t", "metricName": total, "aggregation": "sum", "groupBy": [{"key": "host"}]},
    ]
    window = {"dateFrom": iso(start), "dateTo": iso(start + 2 * MINUTE)}
    run_query(server, acme, {"query": {"clauses": clauses, **window}}, 6)
    body = {"query": {"clauses": clauses, "formula": "e / t * 100", **window}}
    results = answer(call(server, acme, "query", body))["results"]
    # Matched host by host; division by zero is 0; h2 had no data in the second minute (zero-filled: 0 / 0).
    assert results == [
        {
            "labels": {"host": "h1"},
            "points": [{"time": iso(start), "value": 10.0}, {"time": iso(start + MINUTE), "value": 0.0}],
            "metric_name": None,
            "clause": "formula",
        },
        {
            "labels": {"host": "h2"},
            "points": [{"time": iso(start), "value": 50.0}, {"time": iso(start + MINUTE), "value": 0.0}],
            "metric_name": None,
            "clause": "formula",
        },
    ]
    # An ungrouped clause applies to every label set: each host's share of all errors.
    share = [clauses[0], {"name": "all", "metricName": errors, "aggregation": "sum"}]
    results = answer(
        call(server, acme, "query", {"query": {"clauses": share, "formula": "(all - e) / all", **window}})
    )["results"]
    assert [(s["labels"]["host"], [p["value"] for p in s["points"]]) for s in results] == [
        ("h1", [pytest.approx(2 / 3), 0.0]),
        ("h2", [pytest.approx(1 / 3), 1.0]),
    ]


@pytest.mark.parametrize(
    ("formula", "detail"),
    [
        ("a + c", "Unknown clause 'c' in formula; available clauses: ['a', 'b']"),
        ("(a + b", "Unexpected end of formula"),
        ("(a b", "Unbalanced parentheses in formula"),
        ("a % b", "Unexpected character in formula: '%'"),
        ("a b", "Unexpected token in formula: 'b'"),
        ("a +", "Unexpected end of formula"),
    ],
)
def test_formula_errors(server: RunningServer, acme: dict[str, Any], formula: str, detail: str) -> None:
    clauses = [{"name": "a", "metricName": "x"}, {"name": "b", "metricName": "y"}]
    body = {"query": {"clauses": clauses, "formula": formula, "dateFrom": iso(now_ms() - MINUTE)}}
    refusal(call(server, acme, "query", body), 400, "invalid_request", "parse_error", detail, None)


# --- values and has_metrics -------------------------------------------------------------------------------


def test_values_and_has_metrics(server: RunningServer, acme: dict[str, Any]) -> None:
    tag = uuid.uuid4().hex[:8]
    now = minute_start(0)
    names = [f"ph.{tag}.Disk", f"ph.{tag}.disk.used", f"ph.{tag}.disks", f"PH.{tag}.DISK"]
    send(
        server,
        acme,
        export(*[gauge(n, [(now - 5 * MINUTE + i * 1000, 1.0, {})]) for i, n in enumerate(names)]),
    )
    search = f"ph.{tag}.disk"

    def listed() -> list[dict[str, str]] | None:
        results: list[dict[str, str]] = answer(call(server, acme, "values", params={"value": search}))[
            "results"
        ]
        return results if len(results) == 4 else None

    results = eventually(listed)
    assert results is not None
    # Exact matches (any case) first, then the most recently seen.
    assert [r["name"] for r in results] == [
        f"PH.{tag}.DISK",
        f"ph.{tag}.Disk",
        f"ph.{tag}.disks",
        f"ph.{tag}.disk.used",
    ]
    assert {r["metric_type"] for r in results} == {"gauge"}
    assert list(results[0]) == ["name", "metric_type"]
    limited = answer(call(server, acme, "values", params={"value": search.upper(), "limit": "2"}))["results"]
    assert len(limited) == 2
    assert answer(call(server, acme, "has_metrics")) == {"hasMetrics": True}
    assert answer(call(server, acme, "has_metrics", slash="/")) == {"hasMetrics": True}


@pytest.mark.parametrize(
    ("limit", "code", "detail"),
    [
        ("0", "min_value", "Ensure this value is greater than or equal to 1."),
        ("1001", "max_value", "Ensure this value is less than or equal to 1000."),
        ("abc", "invalid_input", "A valid integer is required."),
    ],
)
def test_values_limit_is_checked(
    server: RunningServer, acme: dict[str, Any], limit: str, code: str, detail: str
) -> None:
    refusal(
        call(server, acme, "values", params={"limit": limit}), 400, "validation_error", code, detail, "limit"
    )


def test_values_limit_of_1000_is_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    assert "results" in answer(call(server, acme, "values", params={"limit": "1000"}))


# --- tenants ----------------------------------------------------------------------------------------------


def test_another_organization_sees_nothing(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any], queue: dict[str, Any]
) -> None:
    start = queue["start"]
    body = query_body(queue["queue_depth"], start, start + 20 * MINUTE, aggregation="count")
    # Another organization's project is not found for this key...
    other = httpx.post(url(server, acme, "query"), json=body, headers=personal(globex))
    refusal(other, 404, "invalid_request", "not_found", "Project not found.", None)
    refusal(
        call(server, acme, "values", headers=personal(globex)),
        404,
        "invalid_request",
        "not_found",
        "Project not found.",
        None,
    )
    # ...and its own project has none of acme's metrics.
    (empty,) = answer(call(server, globex, "query", body))["results"]
    assert empty == {"labels": {}, "points": [], "metric_name": queue["queue_depth"], "clause": "a"}
    names = answer(call(server, globex, "values", params={"value": queue["queue_depth"]}))["results"]
    assert names == []
    report = answer(characterize(server, globex, queue, "queue_depth"))
    assert (report["direction"], report["series"]["points"], report["top_movers"]) == ("flat", [], [])
    fresh = provision(server.data_dir, unique("ph-empty"))
    assert answer(call(server, fresh, "has_metrics")) == {"hasMetrics": False}


# --- authentication and projects --------------------------------------------------------------------------


def test_authentication(server: RunningServer, acme: dict[str, Any]) -> None:
    target = url(server, acme, "has_metrics")
    missing = httpx.get(target)
    refusal(
        missing,
        401,
        "authentication_error",
        "not_authenticated",
        "Authentication credentials were not provided.",
        None,
    )
    assert missing.headers["www-authenticate"] == "Bearer"
    for headers, params, source in [
        ({"Authorization": "Bearer phx_" + "x" * 43}, None, "Authorization header"),
        ({"Authorization": f"Bearer {acme['keys']['posthog_project_token']}"}, None, "Authorization header"),
        ({"Authorization": f"Bearer {acme['keys']['dd_api_key']}"}, None, "Authorization header"),
        ({}, {"personal_api_key": "phx_nope"}, "query string"),
    ]:
        refusal(
            httpx.get(target, headers=headers, params=params),
            401,
            "authentication_error",
            "authentication_failed",
            f"Personal API key found in request {source} is invalid.",
            None,
        )
    in_body = httpx.post(url(server, acme, "query"), json={"personal_api_key": "phx_nope"})
    refusal(
        in_body,
        401,
        "authentication_error",
        "authentication_failed",
        "Personal API key found in request body is invalid.",
        None,
    )


def create_key(server: RunningServer, org: dict[str, Any], *scopes: str) -> tuple[str, str]:
    """A personal key of the organization with these scopes: its id and secret."""
    args = ["keys", "create", "--org", str(org["org_id"]), "--kind", "posthog_personal_key"]
    for scope in scopes:
        args += ["--scope", scope]
    created = json.loads(sextant(*args, "--data-dir", str(server.data_dir), "--json").stdout)
    return created["id"], created["secret"]


@pytest.mark.parametrize(
    ("method", "action"), [("GET", "query"), ("DELETE", "characterize"), ("POST", "values")]
)
def test_a_method_a_route_does_not_take_is_refused_in_posthogs_format(
    server: RunningServer, acme: dict[str, Any], method: str, action: str
) -> None:
    for base in ("projects", "environments"):
        response = httpx.request(method, url(server, acme, action, base, ""), headers=personal(acme))
        assert response.status_code == 405
        assert response.json() == {
            "type": "invalid_request",
            "code": "method_not_allowed",
            "detail": f'Method "{method}" not allowed.',
            "attr": None,
        }
        assert response.headers["allow"]
    # Other faces keep the framework's answer.
    assert httpx.get(server.url + "/api/v2/prodlytics").status_code == 405


def test_scopes(server: RunningServer) -> None:
    org = provision(server.data_dir, unique("ph-scopes"))
    _, without = create_key(server, org, "query:read", "project:read")
    for action in ("values", "has_metrics", "query", "characterize"):
        response = call(server, org, action, {}, headers={"Authorization": f"Bearer {without}"})
        refusal(
            response,
            403,
            "authentication_error",
            "permission_denied",
            "API key missing required scope 'metrics:read'",
            None,
        )
    for scopes in (("metrics:read",), ("metrics:write",)):
        _, key = create_key(server, org, *scopes)
        assert answer(call(server, org, "has_metrics", headers={"Authorization": f"Bearer {key}"})) == {
            "hasMetrics": False
        }
    key_id, revoked = create_key(server, org, "metrics:read")
    sextant("keys", "revoke", key_id, "--data-dir", str(server.data_dir))
    refusal(
        call(server, org, "has_metrics", headers={"Authorization": f"Bearer {revoked}"}),
        401,
        "authentication_error",
        "authentication_failed",
        "Personal API key found in request Authorization header is invalid.",
        None,
    )


@pytest.mark.parametrize("project", ["999999", "abc", "-1", "1.5"])
def test_unknown_projects_are_404(server: RunningServer, acme: dict[str, Any], project: str) -> None:
    for base in ("projects", "environments"):
        response = httpx.get(f"{server.url}/api/{base}/{project}/metrics/has_metrics", headers=personal(acme))
        refusal(response, 404, "invalid_request", "not_found", "Project not found.", None)


# --- request validation -----------------------------------------------------------------------------------


DATE = "2024-05-01T10:00:00Z"


@pytest.mark.parametrize(
    ("body", "code", "detail", "attr"),
    [
        ({}, "required", "This field is required.", "query"),
        ({"query": None}, "null", "This field may not be null.", "query"),
        ([1], "invalid_input", "Invalid data. Expected a dictionary, but got list.", None),
        (
            {"query": "x"},
            "invalid_input",
            "Invalid data. Expected a dictionary, but got str.",
            "query__non_field_errors",
        ),
        ({"query": {"metricName": "m"}}, "required", "This field is required.", "query__dateFrom"),
        (
            {"query": {"metricName": " ", "dateFrom": DATE}},
            "blank",
            "This field may not be blank.",
            "query__metricName",
        ),
        (
            {"query": {"metricName": "m" * 256, "dateFrom": DATE}},
            "max_length",
            "Ensure this field has no more than 255 characters.",
            "query__metricName",
        ),
        (
            {"query": {"metricName": True, "dateFrom": DATE}},
            "invalid_input",
            "Not a valid string.",
            "query__metricName",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": "yesterday"}},
            "invalid_input",
            "Datetime has wrong format. Use one of these formats instead: "
            "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
            "query__dateFrom",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "aggregation": "median"}},
            "invalid_choice",
            '"median" is not a valid choice.',
            "query__aggregation",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "metricType": "counter"}},
            "invalid_choice",
            '"counter" is not a valid choice.',
            "query__metricType",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "quantile": 1.5}},
            "max_value",
            "Ensure this value is less than or equal to 1.0.",
            "query__quantile",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "quantile": "x"}},
            "invalid_input",
            "A valid number is required.",
            "query__quantile",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "interval": "month"}},
            "invalid_choice",
            '"month" is not a valid choice.',
            "query__interval",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "filters": {"key": "k"}}},
            "not_a_list",
            'Expected a list of items but got type "dict".',
            "query__filters__non_field_errors",
        ),
        (
            {
                "query": {
                    "metricName": "m",
                    "dateFrom": DATE,
                    "filters": [{"key": "k", "value": "v"}, {"key": "k"}],
                }
            },
            "required",
            "This field is required.",
            "query__filters__1__value",
        ),
        (
            {
                "query": {
                    "metricName": "m",
                    "dateFrom": DATE,
                    "filters": [{"key": "k", "value": "v", "op": "gt"}],
                }
            },
            "invalid_choice",
            '"gt" is not a valid choice.',
            "query__filters__0__op",
        ),
        (
            {
                "query": {
                    "metricName": "m",
                    "dateFrom": DATE,
                    "filters": [{"key": "k", "value": "v", "scope": "span"}],
                }
            },
            "invalid_choice",
            '"span" is not a valid choice.',
            "query__filters__0__scope",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "filters": ["k"]}},
            "invalid_input",
            "Invalid data. Expected a dictionary, but got str.",
            "query__filters__0__non_field_errors",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "filters": [{"key": "k", "value": "v" * 1025}]}},
            "max_length",
            "Ensure this field has no more than 1024 characters.",
            "query__filters__0__value",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "filters": [{"key": "k" * 256, "value": "v"}]}},
            "max_length",
            "Ensure this field has no more than 255 characters.",
            "query__filters__0__key",
        ),
        (
            {"query": {"metricName": "m", "dateFrom": DATE, "groupBy": [{"scope": "auto"}]}},
            "required",
            "This field is required.",
            "query__groupBy__0__key",
        ),
        (
            {"query": {"dateFrom": DATE}},
            "invalid_input",
            "Provide exactly one of 'metricName' or 'clauses'.",
            "query__non_field_errors",
        ),
        (
            {"query": {"metricName": "m", "clauses": [{"name": "a", "metricName": "m"}], "dateFrom": DATE}},
            "invalid_input",
            "Provide exactly one of 'metricName' or 'clauses'.",
            "query__non_field_errors",
        ),
        (
            {"query": {"metricName": "m", "formula": "a", "dateFrom": DATE}},
            "invalid_input",
            "'formula' requires 'clauses'.",
            "query__non_field_errors",
        ),
        (
            {
                "query": {
                    "clauses": [{"name": "a", "metricName": "m"}],
                    "metricType": "gauge",
                    "dateFrom": DATE,
                }
            },
            "invalid_input",
            "'metricType' applies to the single-clause shorthand; set it per clause instead.",
            "query__non_field_errors",
        ),
        (
            {
                "query": {
                    "clauses": [{"name": str(i), "metricName": "m"} for i in range(11)],
                    "dateFrom": DATE,
                }
            },
            "max_length",
            "Ensure this field has no more than 10 elements.",
            "query__clauses__non_field_errors",
        ),
        (
            {
                "query": {
                    "clauses": [{"name": "a", "metricName": "m"}, {"name": "b" * 65, "metricName": "m"}],
                    "dateFrom": DATE,
                }
            },
            "max_length",
            "Ensure this field has no more than 64 characters.",
            "query__clauses__1__name",
        ),
        (
            {"query": {"clauses": [{"name": "a"}], "dateFrom": DATE}},
            "required",
            "This field is required.",
            "query__clauses__0__metricName",
        ),
        (
            {
                "query": {
                    "clauses": [{"name": "a", "metricName": "m"}],
                    "formula": "a" * 513,
                    "dateFrom": DATE,
                }
            },
            "max_length",
            "Ensure this field has no more than 512 characters.",
            "query__formula",
        ),
        (
            {"query": {"clauses": [{"name": "a", "metricName": "m"}], "formula": "", "dateFrom": DATE}},
            "blank",
            "This field may not be blank.",
            "query__formula",
        ),
    ],
)
def test_query_validation(
    server: RunningServer, acme: dict[str, Any], body: Any, code: str, detail: str, attr: str | None
) -> None:
    refusal(call(server, acme, "query", body), 400, "validation_error", code, detail, attr)


def test_ten_clauses_are_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    clauses = [{"name": f"c{i}", "metricName": unique("none")} for i in range(10)]
    (series,) = answer(
        call(server, acme, "query", {"query": {"clauses": clauses, "dateFrom": iso(now_ms() - MINUTE)}})
    )["results"]
    assert (series["clause"], series["points"]) == ("c0", [])


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"aggregation": "histogram_quantile"}, "histogram_quantile requires a quantile"),
        ({"aggregation": "histogram_quantile", "quantile": 0}, "quantile must be in (0, 1)"),
        ({"dateTo": "2020-01-01T00:00:00Z"}, "date_to must be after date_from"),
        (
            {"dateFrom": "2024-01-01T00:00:00Z", "dateTo": "2024-02-01T00:00:01Z"},
            "date range too wide; the maximum span is 31 days",
        ),
        (
            {"dateFrom": "2024-01-01T00:00:00Z", "dateTo": "2024-01-01T03:00:00Z", "interval": "second"},
            "interval 'second' produces more than 10000 buckets over this range; "
            "use a coarser interval or a narrower range",
        ),
        (
            {
                "dateTo": "2024-01-02T00:00:00Z",
                "filters": [{"key": "pod", "op": "regex", "value": "web-[0-9"}],
            },
            "Invalid regular expression for filter 'pod': unterminated character set at position 4",
        ),
    ],
)
def test_query_parse_errors(
    server: RunningServer, acme: dict[str, Any], fields: dict[str, Any], detail: str
) -> None:
    body = {"query": {"metricName": "m", "dateFrom": "2024-01-01T00:00:00Z", **fields}}
    refusal(call(server, acme, "query", body), 400, "invalid_request", "parse_error", detail, None)


def test_clause_names_must_be_unique(server: RunningServer, acme: dict[str, Any]) -> None:
    clauses = [{"name": "a", "metricName": "m"}, {"name": "a", "metricName": "n"}]
    body = {"query": {"clauses": clauses, "dateFrom": DATE}}
    refusal(
        call(server, acme, "query", body),
        400,
        "invalid_request",
        "parse_error",
        "clause names must be unique",
        None,
    )


def test_bodies_that_are_not_json(server: RunningServer, acme: dict[str, Any]) -> None:
    target = url(server, acme, "query")
    bad = httpx.post(target, content=b"{nope", headers={**personal(acme), "Content-Type": "application/json"})
    refusal(
        bad,
        400,
        "invalid_request",
        "parse_error",
        "JSON parse error - Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        None,
    )
    nan = httpx.post(
        target, content=b'{"query": NaN}', headers={**personal(acme), "Content-Type": "application/json"}
    )
    refusal(
        nan,
        400,
        "invalid_request",
        "parse_error",
        "JSON parse error - Out of range float values are not JSON compliant: 'NaN'",
        None,
    )
    # The header's key is checked before the body is read; without one, the body is read for a key.
    bad_key = {"Authorization": "Bearer phx_nope", "Content-Type": "application/json"}
    refusal(
        httpx.post(target, content=b"{nope", headers=bad_key),
        401,
        "authentication_error",
        "authentication_failed",
        "Personal API key found in request Authorization header is invalid.",
        None,
    )
    unread = httpx.post(target, content=b"{nope", headers={"Content-Type": "application/json"})
    assert (unread.status_code, unread.json()["code"]) == (400, "parse_error")
    deep = httpx.post(
        target, content=b"[" * 100_000, headers={**personal(acme), "Content-Type": "application/json"}
    )
    refusal(
        deep, 400, "invalid_request", "parse_error", "JSON parse error - maximum nesting depth exceeded", None
    )
    form = httpx.post(target, content=b"query=1", headers={**personal(acme), "Content-Type": "text/plain"})
    refusal(
        form,
        415,
        "invalid_request",
        "unsupported_media_type",
        'Unsupported media type "text/plain" in request.',
        None,
    )


def test_body_limit(server: RunningServer, acme: dict[str, Any]) -> None:
    target = url(server, acme, "query")
    padding = " " * (1024 * 1024 - 200)
    body = json.dumps({"query": {"metricName": "m", "dateFrom": iso(now_ms() - MINUTE)}})
    at_limit = (body[:-1] + padding + "}").encode()
    assert len(at_limit) <= 1024 * 1024
    response = httpx.post(
        target, content=at_limit, headers={**personal(acme), "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    over = at_limit + b" " * 300
    refused = httpx.post(target, content=over, headers={**personal(acme), "Content-Type": "application/json"})
    assert refused.status_code == 413
    assert refused.json()["type"] == "invalid_request" and refused.json()["code"] == "payload_too_large"


# --- limits -----------------------------------------------------------------------------------------------


def test_series_cap_and_row_limit(server: RunningServer, acme: dict[str, Any]) -> None:
    start = minute_start(4 * 3_600_000)
    many, dense = unique("ph.many"), unique("ph.dense")
    send(
        server,
        acme,
        export(
            gauge(many, [(start, float(i), {"i": f"{i:03d}"}) for i in range(101)]),
            gauge(dense, [(start + k * 1000, 1.0, {}) for k in range(10_000)]),
        ),
    )
    grouped = query_body(many, start, start + MINUTE, groupBy=[{"key": "i"}])
    run_query(server, acme, grouped, 100)
    results = answer(call(server, acme, "query", grouped))["results"]
    # The 100 largest of 101 series.
    assert len(results) == 100
    assert [s["labels"]["i"] for s in results[:2]] == ["100", "099"]
    assert "000" not in {s["labels"]["i"] for s in results}
    fits = query_body(dense, start, start + 9_999_000, interval="second")
    assert len(run_query(server, acme, fits, 9_999)[0]["points"]) == 9_999
    full = query_body(dense, start, start + 10_000_000, interval="second")
    refusal(
        call(server, acme, "query", full),
        400,
        "invalid_request",
        "parse_error",
        "query produced too many (time bucket, group) rows; "
        "use a coarser interval, a narrower range, or a lower-cardinality group_by",
        None,
    )


def test_thirty_one_days_are_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    end = now_ms()
    body = query_body(unique("none"), end - 31 * 86_400_000, end)
    assert answer(call(server, acme, "query", body))["results"][0]["points"] == []


# --- the documentation ------------------------------------------------------------------------------------


_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def test_the_documentation_example_works(server: RunningServer, acme: dict[str, Any], tmp_path: Path) -> None:
    """docs/posthog-metrics.md's shell example, run as written (only the host differs), in a directory
    holding a data/credentials.json as `make run` writes it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "credentials.json").write_text(json.dumps(acme))
    (script,) = [s for s in _BLOCK.findall(DOC.read_text()) if "metrics/query" in s]
    script = script.replace("http://127.0.0.1:8080", server.url)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    deadline = time.monotonic() + 10
    while True:
        proc = subprocess.run(
            ["sh", "-ec", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        if '"value":21.5' in proc.stdout.replace(" ", "") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert '"value":21.5' in proc.stdout.replace(" ", ""), proc.stdout
    assert '"hasMetrics":true' in proc.stdout.replace(" ", "")


def test_openapi_lists_every_route(server: RunningServer) -> None:
    paths = httpx.get(server.url + "/openapi.json", timeout=30).json()["paths"]
    for base in ("projects", "environments"):
        for method, action in [
            ("post", "query"),
            ("post", "characterize"),
            ("get", "values"),
            ("get", "has_metrics"),
        ]:
            for slash in ("", "/"):
                assert method in paths[f"/api/{base}/{{project_id}}/metrics/{action}{slash}"]
