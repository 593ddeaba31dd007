"""One store behind every metric intake: the same series sent through Datadog, OTLP and Dynatrace is one
series, each point stored once with its kind, tags and unit."""

from __future__ import annotations

import time
from typing import Any

import httpx
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.serverproc import RunningServer, provision


def test_one_series_whichever_intake_sent_it(server: RunningServer) -> None:
    org: dict[str, Any] = provision(server.data_dir, "intakes-agree")
    keys = org["keys"]
    now_s = int(time.time())
    # Datadog v2: host from the resources, env as a tag.
    datadog = {
        "series": [
            {
                "metric": "queue.depth",
                "type": 3,
                "unit": "item",
                "points": [{"timestamp": now_s - 30, "value": 1.0}],
                "resources": [{"name": "h1", "type": "host"}],
                "tags": ["env:prod"],
            }
        ]
    }
    response = httpx.post(
        server.url + "/api/v2/series", json=datadog, headers={"DD-API-KEY": keys["dd_api_key"]}
    )
    assert response.status_code == 202, response.text
    # OTLP: the same tags as a resource attribute and a point attribute.
    export = ExportMetricsServiceRequest()
    resource = export.resource_metrics.add()
    resource.resource.attributes.append(KeyValue(key="host", value=AnyValue(string_value="h1")))
    gauge = resource.scope_metrics.add().metrics.add()
    gauge.name, gauge.unit = "queue.depth", "item"
    point = gauge.gauge.data_points.add()
    point.time_unix_nano, point.as_double = (now_s - 20) * 1_000_000_000, 2.0
    point.attributes.append(KeyValue(key="env", value=AnyValue(string_value="prod")))
    response = httpx.post(
        server.url + "/v1/metrics",
        content=export.SerializeToString(),
        headers={"DD-API-KEY": keys["dd_api_key"], "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200, response.text
    # Dynatrace: dimensions in the other order.
    line = f"queue.depth,env=prod,host=h1 gauge,3 {(now_s - 10) * 1000}\n#queue.depth gauge dt.meta.unit=item"
    response = httpx.post(
        server.url + "/api/v2/metrics/ingest",
        content=line.encode(),
        headers={"Authorization": f"Api-Token {keys['dynatrace_token']}", "Content-Type": "text/plain"},
    )
    assert response.status_code == 202, response.text
    time.sleep(1.2)
    read = httpx.get(
        server.url + "/api/v2/sextant/metrics/queue.depth/points",
        params={"from": (now_s - 60) * 1000, "to": (now_s + 1) * 1000},
        headers={"DD-API-KEY": keys["dd_api_key"], "DD-APPLICATION-KEY": keys["dd_app_key"]},
    )
    assert read.status_code == 200, read.text
    (series,) = read.json()["series"]
    assert series["tags"] == ["env:prod", "host:h1"]
    assert [(p["time_ms"], p["kind"], p["value"], p["unit"]) for p in series["points"]] == [
        ((now_s - 30) * 1000, "gauge", 1.0, "item"),
        ((now_s - 20) * 1000, "gauge", 2.0, "item"),
        ((now_s - 10) * 1000, "gauge", 3.0, "item"),
    ]
