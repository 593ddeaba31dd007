"""Datadog metric intake on a real server: the official client, every refusal and limit, durability.

Points are read back through `GET /api/v2/sextant/metrics/{name}/points`, as stored. Every test uses metric
names of its own, so that tests sharing the session's server do not see each other's points.
"""

from __future__ import annotations

import gzip
import json
import signal
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException, UnauthorizedException
from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
from datadog_api_client.v1.model.distribution_point import DistributionPoint
from datadog_api_client.v1.model.distribution_points_content_encoding import (
    DistributionPointsContentEncoding,
)
from datadog_api_client.v1.model.distribution_points_payload import DistributionPointsPayload
from datadog_api_client.v1.model.distribution_points_series import DistributionPointsSeries
from datadog_api_client.v1.model.metric_content_encoding import MetricContentEncoding as V1Encoding
from datadog_api_client.v1.model.metrics_payload import MetricsPayload
from datadog_api_client.v1.model.point import Point
from datadog_api_client.v1.model.series import Series
from datadog_api_client.v2.api.metrics_api import MetricsApi
from datadog_api_client.v2.model.metric_content_encoding import MetricContentEncoding
from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
from datadog_api_client.v2.model.metric_payload import MetricPayload
from datadog_api_client.v2.model.metric_point import MetricPoint
from datadog_api_client.v2.model.metric_resource import MetricResource
from datadog_api_client.v2.model.metric_series import MetricSeries

from tests.serverproc import RunningServer, provision, sextant, start_server

V2 = "/api/v2/series"
V1 = "/api/v1/series"
DIST = "/api/v1/distribution_points"
MIB = 1024 * 1024
DAY_S = 86_400


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def now_s() -> int:
    return int(time.time())


def post(
    server: RunningServer, path: str, body: bytes | Any, key: str | None = None, **headers: str
) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if key is not None:
        sent["DD-API-KEY"] = key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + path, content=content, headers=sent, timeout=60)


def assert_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """`status` with Datadog's `{"errors": ["..."]}` holding one message that contains every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    (message,) = body["errors"]
    assert isinstance(message, str)
    for fragment in fragments:
        assert fragment in message, message
    return message


V2_OK = b'{"errors":[]}'
V1_OK = b'{"status":"ok"}'


def assert_accepted(response: httpx.Response, body: bytes) -> None:
    assert response.status_code == 202, response.text
    assert response.content == body
    assert response.headers["content-type"] == "application/json"


def query_headers(org: dict[str, Any]) -> dict[str, str]:
    return {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}


def read_series(url: str, org: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Every stored series of `metric` with its points, over the whole retention window."""
    now_ms = int(time.time() * 1000)
    response = httpx.get(
        f"{url}/api/v2/sextant/metrics/{metric}/points",
        params={"from": now_ms - 470 * DAY_S * 1000, "to": now_ms + 2 * 3_600_000},
        headers=query_headers(org),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    series: list[dict[str, Any]] = response.json()["series"]
    return series


def stored(
    url: str, org: dict[str, Any], metric: str, points: int, timeout: float = 15
) -> list[dict[str, Any]]:
    """The series of `metric` once at least `points` points are visible (the store loads within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        series = read_series(url, org, metric)
        if sum(len(s["points"]) for s in series) >= points:
            return series
        assert time.monotonic() < deadline, f"only {series} stored for {metric}"
        time.sleep(0.05)


def by_tags(series: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    return {tuple(s["tags"]): s["points"] for s in series}


# --- the official client ----------------------------------------------------------------------------------


@pytest.fixture
def client_config(server: RunningServer, acme: dict[str, Any]) -> Configuration:
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = acme["keys"]["dd_api_key"]
    return configuration


def test_v2_client_submits_every_type(
    server: RunningServer, acme: dict[str, Any], client_config: Configuration
) -> None:
    metric = unique("client.v2")
    t = now_s()
    body = MetricPayload(
        series=[
            MetricSeries(
                metric=metric,
                type=MetricIntakeType.GAUGE,
                points=[MetricPoint(timestamp=t - 20, value=0.7), MetricPoint(timestamp=t - 10, value=0.9)],
                unit="percent",
                tags=["env:prod", "team:core"],
                resources=[
                    MetricResource(name="web-1", type="host"),
                    MetricResource(name="eu", type="region"),
                ],
            ),
            MetricSeries(
                metric=metric,
                type=MetricIntakeType.COUNT,
                interval=10,
                points=[MetricPoint(timestamp=t, value=42.0)],
                tags=["kind:count"],
                unit="request",
            ),
            MetricSeries(
                metric=metric,
                type=MetricIntakeType.RATE,
                interval=15,
                points=[MetricPoint(timestamp=t, value=2.5)],
                tags=["kind:rate"],
            ),
            MetricSeries(
                metric=metric,
                type=MetricIntakeType.UNSPECIFIED,
                interval=30,
                points=[MetricPoint(timestamp=t, value=-1.0)],
                tags=["kind:unspecified"],
            ),
        ]
    )
    with ApiClient(client_config) as client:
        accepted = MetricsApi(client).submit_metrics(body=body)
    assert accepted.errors == []

    series = by_tags(stored(server.url, acme, metric, 5))
    assert set(series) == {
        ("env:prod", "host:web-1", "region:eu", "team:core"),
        ("kind:count",),
        ("kind:rate",),
        ("kind:unspecified",),
    }
    gauge = series[("env:prod", "host:web-1", "region:eu", "team:core")]
    assert gauge == [
        {"time_ms": (t - 20) * 1000, "kind": "gauge", "value": 0.7, "unit": "percent"},
        {"time_ms": (t - 10) * 1000, "kind": "gauge", "value": 0.9, "unit": "percent"},
    ]
    assert series[("kind:count",)] == [
        {
            "time_ms": t * 1000,
            "kind": "count",
            "value": 42.0,
            "interval_ms": 10_000,
            "temporality": "delta",
            "unit": "request",
        }
    ]
    assert series[("kind:rate",)] == [
        {"time_ms": t * 1000, "kind": "rate", "value": 2.5, "interval_ms": 15_000}
    ]
    # Unspecified is stored as a gauge, which has no interval.
    assert series[("kind:unspecified",)] == [{"time_ms": t * 1000, "kind": "gauge", "value": -1.0}]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd1"])
def test_v2_client_compressed(
    server: RunningServer, acme: dict[str, Any], client_config: Configuration, encoding: str
) -> None:
    metric = unique(f"client.v2.{encoding}")
    t = now_s()
    body = MetricPayload(series=[MetricSeries(metric=metric, points=[MetricPoint(timestamp=t, value=3.0)])])
    with ApiClient(client_config) as client:
        accepted = MetricsApi(client).submit_metrics(
            body=body, content_encoding=MetricContentEncoding(encoding)
        )
    assert accepted.errors == []
    (only,) = stored(server.url, acme, metric, 1)
    assert only["tags"] == [] and only["points"] == [{"time_ms": t * 1000, "kind": "gauge", "value": 3.0}]


@pytest.mark.parametrize("encoding", [None, "gzip", "deflate"])
def test_v1_client_submits(
    server: RunningServer, acme: dict[str, Any], client_config: Configuration, encoding: str | None
) -> None:
    metric = unique("client.v1")
    t = now_s()
    body = MetricsPayload(
        series=[
            Series(
                metric=metric,
                type="gauge",
                points=[Point([float(t - 5), 1.25])],
                host="db-1",
                tags=["env:dev"],
            ),
            Series(
                metric=metric, type="count", interval=20, points=[Point([float(t), 7.0])], tags=["kind:count"]
            ),
            Series(
                metric=metric, type="rate", interval=10, points=[Point([float(t), 0.5])], tags=["kind:rate"]
            ),
            Series(metric=metric, points=[Point([float(t), 9.0])], tags=["kind:default"]),
        ]
    )
    kwargs = {} if encoding is None else {"content_encoding": V1Encoding(encoding)}
    with ApiClient(client_config) as client:
        accepted = MetricsApiV1(client).submit_metrics(body=body, **kwargs)
    assert accepted.status == "ok"
    series = by_tags(stored(server.url, acme, metric, 4))
    assert series == {
        ("env:dev", "host:db-1"): [{"time_ms": (t - 5) * 1000, "kind": "gauge", "value": 1.25}],
        ("kind:count",): [
            {
                "time_ms": t * 1000,
                "kind": "count",
                "value": 7.0,
                "interval_ms": 20_000,
                "temporality": "delta",
            }
        ],
        ("kind:rate",): [{"time_ms": t * 1000, "kind": "rate", "value": 0.5, "interval_ms": 10_000}],
        ("kind:default",): [{"time_ms": t * 1000, "kind": "gauge", "value": 9.0}],
    }


@pytest.mark.parametrize("deflate", [False, True])
def test_client_submits_distribution_points(
    server: RunningServer, acme: dict[str, Any], client_config: Configuration, deflate: bool
) -> None:
    metric = unique("client.dist")
    t = now_s()
    body = DistributionPointsPayload(
        series=[
            DistributionPointsSeries(
                metric=metric,
                points=[
                    DistributionPoint([float(t - 10), [1.0, 2.0, 6.0]]),
                    DistributionPoint([float(t), [-4.5]]),
                ],
                host="api-1",
                tags=["env:prod"],
            )
        ]
    )
    kwargs = {"content_encoding": DistributionPointsContentEncoding.DEFLATE} if deflate else {}
    with ApiClient(client_config) as client:
        accepted = MetricsApiV1(client).submit_distribution_points(body=body, **kwargs)
    assert accepted.status == "ok"
    (only,) = stored(server.url, acme, metric, 2)
    assert only["tags"] == ["env:prod", "host:api-1"]
    assert only["points"] == [
        {
            "time_ms": (t - 10) * 1000,
            "kind": "distribution",
            "value": 9.0,
            "count": 3,
            "min": 1.0,
            "max": 6.0,
            "samples": [1.0, 2.0, 6.0],
        },
        {
            "time_ms": t * 1000,
            "kind": "distribution",
            "value": -4.5,
            "count": 1,
            "min": -4.5,
            "max": -4.5,
            "samples": [-4.5],
        },
    ]


def test_client_exceptions_carry_our_error_bodies(
    server: RunningServer, client_config: Configuration
) -> None:
    old = now_s() - 500 * DAY_S
    body = MetricPayload(
        series=[MetricSeries(metric="client.old", points=[MetricPoint(timestamp=old, value=1.0)])]
    )
    with ApiClient(client_config) as client, pytest.raises(ApiException) as raised:
        MetricsApi(client).submit_metrics(body=body)
    assert raised.value.status == 400
    (message,) = raised.value.body["errors"]
    assert message.startswith(f"series[0].points[0].timestamp: {old} (epoch seconds) is more than 15 months")

    for key, expected in (("0" * 32, ForbiddenException), (None, UnauthorizedException)):
        configuration = Configuration(host=server.url)
        if key is not None:
            configuration.api_key["apiKeyAuth"] = key
        with ApiClient(configuration) as client, pytest.raises(expected) as refused:
            MetricsApiV1(client).submit_metrics(
                body=MetricsPayload(series=[Series(metric="m", points=[Point([float(now_s()), 1.0])])])
            )
        assert list(refused.value.body) == ["errors"], refused.value.body


# --- what is stored ---------------------------------------------------------------------------------------


def test_the_same_series_sent_twice_is_one_series(server: RunningServer, acme: dict[str, Any]) -> None:
    metric = unique("same")
    key = acme["keys"]["dd_api_key"]
    t = now_s()
    first = {
        "series": [{"metric": metric, "points": [{"timestamp": t - 1, "value": 1}], "tags": ["b:2", "a:1"]}]
    }
    # Same tags in another order, one of them twice.
    second = {
        "series": [
            {
                "metric": metric,
                "points": [{"timestamp": t, "value": 2}],
                "tags": ["a:1", "b:2", "a:1"],
            }
        ]
    }
    assert_accepted(post(server, V2, first, key), V2_OK)
    assert_accepted(post(server, V2, second, key), V2_OK)
    # The v1 intake with the same name and tags lands in the same series too.
    v1 = {"series": [{"metric": metric, "points": [[t + 1, 3]], "tags": ["a:1", "b:2"]}]}
    assert_accepted(post(server, V1, v1, key), V1_OK)
    (only,) = stored(server.url, acme, metric, 3)
    assert only["tags"] == ["a:1", "b:2"]
    assert [p["value"] for p in only["points"]] == [1.0, 2.0, 3.0]


def test_host_from_resources_and_from_the_host_field_is_one_tag(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    metric = unique("host")
    key = acme["keys"]["dd_api_key"]
    t = now_s()
    v2 = {
        "series": [
            {
                "metric": metric,
                "points": [{"timestamp": t, "value": 1}],
                "resources": [{"name": "h", "type": "host"}],
            }
        ]
    }
    v1 = {"series": [{"metric": metric, "points": [[t, 2]], "host": "h"}]}
    dist = {"series": [{"metric": metric + ".d", "points": [[t, [1]]], "host": "h"}]}
    assert_accepted(post(server, V2, v2, key), V2_OK)
    assert_accepted(post(server, V1, v1, key), V1_OK)
    assert_accepted(post(server, DIST, dist, key), V1_OK)
    (only,) = stored(server.url, acme, metric, 2)
    assert only["tags"] == ["host:h"]
    (dist_series,) = stored(server.url, acme, metric + ".d", 1)
    assert dist_series["tags"] == ["host:h"]


def test_v1_fractional_seconds_and_nulls_for_optional_fields(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    metric = unique("v1.fraction")
    key = acme["keys"]["dd_api_key"]
    t = now_s()
    body = {
        "series": [
            {
                "metric": metric,
                "points": [[t + 0.123, 5], [t + 0.5, 6.5]],
                "type": None,
                "interval": None,
                "host": None,
                "tags": None,
            },
            {"metric": metric, "points": [[t, 1]], "type": "", "host": "", "tags": ["empty:host"]},
        ]
    }
    assert_accepted(post(server, V1, body, key), V1_OK)
    series = by_tags(stored(server.url, acme, metric, 3))
    assert [p["time_ms"] for p in series[()]] == [t * 1000 + 123, t * 1000 + 500]
    assert [p["value"] for p in series[()]] == [5.0, 6.5]
    assert series[("empty:host",)] == [{"time_ms": t * 1000, "kind": "gauge", "value": 1.0}]


def test_v2_nulls_and_unknown_fields_are_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    metric = unique("v2.nulls")
    t = now_s()
    body = {
        "series": [
            {
                "metric": metric,
                "points": [{"timestamp": t, "value": 1}],
                "type": None,
                "interval": None,
                "unit": None,
                "tags": None,
                "resources": None,
                "source_type_name": "my-app",
                "metadata": {"origin": {"metric_type": 1, "product": 2, "service": 3}},
                "a_field_from_a_newer_client": {"x": [1, 2]},
            }
        ]
    }
    assert_accepted(post(server, V2, body, acme["keys"]["dd_api_key"]), V2_OK)
    (only,) = stored(server.url, acme, metric, 1)
    assert only["points"] == [{"time_ms": t * 1000, "kind": "gauge", "value": 1.0}]


def test_points_at_the_edges_of_the_time_window(server: RunningServer, acme: dict[str, Any]) -> None:
    metric = unique("window")
    t = now_s()
    times = [t - 400 * DAY_S, t + 30 * 60]
    body = {"series": [{"metric": metric, "points": [{"timestamp": ts, "value": 1} for ts in times]}]}
    assert_accepted(post(server, V2, body, acme["keys"]["dd_api_key"]), V2_OK)
    (only,) = stored(server.url, acme, metric, 2)
    assert [p["time_ms"] for p in only["points"]] == [ts * 1000 for ts in times]


def test_empty_series_list_and_series_without_points_store_nothing(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    metric = unique("empty")
    key = acme["keys"]["dd_api_key"]
    assert_accepted(post(server, V2, {"series": []}, key), V2_OK)
    assert_accepted(post(server, V1, {"series": []}, key), V1_OK)
    assert_accepted(post(server, DIST, {"series": []}, key), V1_OK)
    assert_accepted(post(server, V2, {"series": [{"metric": metric, "points": []}]}, key), V2_OK)
    assert_accepted(post(server, V1, {"series": [{"metric": metric, "points": []}]}, key), V1_OK)
    marker = {"series": [{"metric": metric, "points": [[now_s(), 1]], "tags": ["marker"]}]}
    assert_accepted(post(server, V1, marker, key), V1_OK)
    series = stored(server.url, acme, metric, 1)
    assert [s["tags"] for s in series] == [["marker"]]


# --- authentication ---------------------------------------------------------------------------------------


def minimal(path: str) -> dict[str, Any]:
    t = now_s()
    if path == V2:
        return {"series": [{"metric": "auth.check", "points": [{"timestamp": t, "value": 1}]}]}
    if path == V1:
        return {"series": [{"metric": "auth.check", "points": [[t, 1]]}]}
    return {"series": [{"metric": "auth.check", "points": [[t, [1]]]}]}


PATHS = [V2, V1, DIST]
OK = {V2: V2_OK, V1: V1_OK, DIST: V1_OK}


@pytest.mark.parametrize("path", PATHS)
def test_missing_api_key_is_401(server: RunningServer, path: str) -> None:
    assert_error(post(server, path, minimal(path)), 401, "API key is missing", "DD-API-KEY")
    assert_error(post(server, path, minimal(path), ""), 401, "API key is missing")


@pytest.mark.parametrize("path", PATHS)
def test_unknown_key_is_403(server: RunningServer, path: str) -> None:
    assert_error(post(server, path, minimal(path), "f" * 32), 403, "unknown or has been revoked")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "kind", ["dd_app_key", "dynatrace_token", "posthog_personal_key", "posthog_project_token"]
)
def test_key_of_another_kind_is_403(
    server: RunningServer, acme: dict[str, Any], path: str, kind: str
) -> None:
    assert_error(post(server, path, minimal(path), acme["keys"][kind]), 403, kind)


def _create_api_key(server: RunningServer, *scopes: str) -> dict[str, Any]:
    args = [
        "keys",
        "create",
        "--org",
        "acme",
        "--kind",
        "dd_api_key",
        "--json",
        "--data-dir",
        str(server.data_dir),
    ]
    for scope in scopes:
        args += ["--scope", scope]
    created: dict[str, Any] = json.loads(sextant(*args).stdout)
    return created


def test_revoked_key_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    created = _create_api_key(server)
    for path in PATHS:
        assert_accepted(post(server, path, minimal(path), created["secret"]), OK[path])
    sextant("keys", "revoke", created["id"], "--data-dir", str(server.data_dir))
    for path in PATHS:
        assert_error(post(server, path, minimal(path), created["secret"]), 403, "revoked")


def test_key_without_the_metrics_scope_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    created = _create_api_key(server, "events_write", "logs_write")
    for path in PATHS:
        assert_error(post(server, path, minimal(path), created["secret"]), 403, "metrics_write")


@pytest.mark.parametrize("path", [V1, DIST])
def test_v1_intakes_take_the_key_as_a_query_parameter(
    server: RunningServer, acme: dict[str, Any], path: str
) -> None:
    key = acme["keys"]["dd_api_key"]
    assert_accepted(post(server, f"{path}?api_key={key}", minimal(path)), OK[path])
    assert_error(post(server, f"{path}?api_key={'f' * 32}", minimal(path)), 403, "unknown")
    # The header wins over the query parameter.
    assert_accepted(post(server, f"{path}?api_key={'f' * 32}", minimal(path), key), OK[path])


def test_v2_takes_the_key_only_in_the_header(server: RunningServer, acme: dict[str, Any]) -> None:
    key = acme["keys"]["dd_api_key"]
    assert_error(post(server, f"{V2}?api_key={key}", minimal(V2)), 401, "API key is missing")


def test_another_organization_sees_none_of_the_points(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    metric = unique("tenant")
    t = now_s()
    body = {"series": [{"metric": metric, "points": [{"timestamp": t, "value": 1}]}]}
    assert_accepted(post(server, V2, body, acme["keys"]["dd_api_key"]), V2_OK)
    stored(server.url, acme, metric, 1)
    assert read_series(server.url, globex, metric) == []
    mixed = {"DD-API-KEY": acme["keys"]["dd_api_key"], "DD-APPLICATION-KEY": globex["keys"]["dd_app_key"]}
    response = httpx.get(f"{server.url}/api/v2/sextant/metrics/{metric}/points", headers=mixed)
    assert_error(response, 403, "different organizations")
    # A point globex sends under the same name stays globex's.
    assert_accepted(post(server, V2, body, globex["keys"]["dd_api_key"]), V2_OK)
    stored(server.url, globex, metric, 1)
    assert sum(len(s["points"]) for s in read_series(server.url, acme, metric)) == 1


# --- validation -------------------------------------------------------------------------------------------


def _v2(**series: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"metric": "bad.metric", "points": [{"timestamp": now_s(), "value": 1}]}
    base.update(series)
    return {"series": [base]}


def _v1(**series: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"metric": "bad.metric", "points": [[now_s(), 1]]}
    base.update(series)
    return {"series": [base]}


def _dist(**series: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"metric": "bad.metric", "points": [[now_s(), [1, 2]]]}
    base.update(series)
    return {"series": [base]}


def _point(**fields: Any) -> dict[str, Any]:
    return {"timestamp": now_s(), "value": 1, **fields}


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


INVALID: list[tuple[str, str, Callable[[], Any], str]] = [
    ("not json", V2, lambda: b'{"series": [', "Malformed payload: body is not valid JSON"),
    ("empty body", V2, lambda: b"", "Malformed payload: body is not valid JSON"),
    (
        "nan",
        V2,
        lambda: b'{"series":[{"metric":"m","points":[{"timestamp":1,"value":NaN}]}]}',
        "not valid JSON",
    ),
    ("array body", V2, lambda: [], "Invalid payload: body: Expected `object`, got `array`"),
    ("no series", V2, lambda: {}, "Invalid payload: body: Object missing required field `series`"),
    ("series object", V2, lambda: {"series": {}}, "series: Expected `array`, got `object`"),
    ("series item string", V2, lambda: {"series": ["x"]}, "series[0]: Expected `object`, got `str`"),
    (
        "no metric",
        V2,
        lambda: {"series": [{"points": []}]},
        "series[0]: Object missing required field `metric`",
    ),
    ("metric number", V2, lambda: _v2(metric=5), "series[0].metric: Expected `str`, got `int`"),
    ("metric empty", V2, lambda: _v2(metric=""), "series[0]: metric name is empty"),
    ("metric too long", V2, lambda: _v2(metric="m" * 201), "series[0]: metric name is longer than 200"),
    ("metric nul", V2, lambda: _v2(metric="a\u0000b"), "series[0]: metric name contains a NUL"),
    (
        "no points",
        V2,
        lambda: {"series": [{"metric": "m"}]},
        "series[0]: Object missing required field `points`",
    ),
    ("type 4", V2, lambda: _v2(type=4), "series[0].type: Invalid enum value 4"),
    ("type name", V2, lambda: _v2(type="gauge"), "series[0].type: Expected `int | null`, got `str`"),
    (
        "point array",
        V2,
        lambda: _v2(points=[[now_s(), 1]]),
        "series[0].points[0]: Expected `object`, got `array`",
    ),
    (
        "no timestamp",
        V2,
        lambda: _v2(points=[_point(), {"value": 1}]),
        "series[0].points[1]: Object missing required field `timestamp`",
    ),
    ("no value", V2, lambda: _v2(points=[{"timestamp": now_s()}]), "Object missing required field `value`"),
    (
        "value string",
        V2,
        lambda: _v2(points=[_point(value="1")]),
        "series[0].points[0].value: Expected `float`, got `str`",
    ),
    (
        "value null",
        V2,
        lambda: _v2(points=[_point(value=None)]),
        "series[0].points[0].value: Expected `float`, got `null`",
    ),
    (
        "value bool",
        V2,
        lambda: _v2(points=[_point(value=True)]),
        "series[0].points[0].value: Expected `float`, got `bool`",
    ),
    (
        "value infinite",
        V2,
        lambda: b'{"series":[{"metric":"m","points":[{"timestamp":1,"value":1e999}]}]}',
        "series[0].points[0].value: Number out of range",
    ),
    (
        "timestamp float",
        V2,
        lambda: _v2(points=[_point(timestamp=now_s() + 0.5)]),
        "series[0].points[0].timestamp: Expected `int`, got `float`",
    ),
    (
        "timestamp string",
        V2,
        lambda: _v2(points=[_point(timestamp="now")]),
        "series[0].points[0].timestamp: Expected `int`, got `str`",
    ),
    (
        "timestamp in ms",
        V2,
        lambda: _v2(points=[_point(), _point(timestamp=now_s() * 1000)]),
        "series[0].points[1].timestamp:",
    ),
    (
        "too old",
        V2,
        lambda: _v2(points=[_point(timestamp=now_s() - 460 * DAY_S)]),
        "is more than 15 months in the past",
    ),
    (
        "too new",
        V2,
        lambda: _v2(points=[_point(timestamp=now_s() + 7200)]),
        "is more than 1 hour in the future",
    ),
    ("tags string", V2, lambda: _v2(tags="a:b"), "series[0].tags: Expected `array | null`, got `str`"),
    ("tag number", V2, lambda: _v2(tags=["a", 1]), "series[0].tags[1]: Expected `str`, got `int`"),
    ("tag empty", V2, lambda: _v2(tags=[""]), "series[0]: has an empty tag"),
    ("tag too long", V2, lambda: _v2(tags=["t:" + "x" * 200]), "is longer than 200 characters"),
    (
        "too many tags",
        V2,
        lambda: _v2(tags=[f"t:{i}" for i in range(101)]),
        "series[0]: has 101 tags; at most 100",
    ),
    (
        "resource no name",
        V2,
        lambda: _v2(resources=[{"type": "host"}]),
        "series[0].resources[0]: Object missing required field `name`",
    ),
    (
        "resource empty",
        V2,
        lambda: _v2(resources=[{"name": "", "type": "host"}]),
        "series[0].resources[0]: name and type must be non-empty",
    ),
    (
        "interval negative",
        V2,
        lambda: _v2(type=1, interval=-10),
        "series[0].interval: must be a number of seconds >= 0",
    ),
    (
        "interval float",
        V2,
        lambda: _v2(interval=1.5),
        "series[0].interval: Expected `int | null`, got `float`",
    ),
    ("unit number", V2, lambda: _v2(unit=3), "series[0].unit: Expected `str | null`, got `int`"),
    ("deep nesting", V2, lambda: b'{"series":[],"x":' + _deep(100_000).encode() + b"}", "nested too deeply"),
    ("v1 not json", V1, lambda: b"series", "Malformed payload"),
    ("v1 no series", V1, lambda: {"metric": "m"}, "Object missing required field `series`"),
    ("v1 bad type", V1, lambda: _v1(type="histogram"), "series[0].type: Invalid enum value 'histogram'"),
    (
        "v1 point object",
        V1,
        lambda: _v1(points=[{"timestamp": 1, "value": 1}]),
        "series[0].points[0]: Expected `array`, got `object`",
    ),
    (
        "v1 point short",
        V1,
        lambda: _v1(points=[[now_s()]]),
        "series[0].points[0]: Expected `array` of length 2",
    ),
    (
        "v1 point long",
        V1,
        lambda: _v1(points=[[now_s(), 1, 2]]),
        "series[0].points[0]: Expected `array` of length 2",
    ),
    (
        "v1 value null",
        V1,
        lambda: _v1(points=[[now_s(), None]]),
        "series[0].points[0][1]: Expected `float`, got `null`",
    ),
    (
        "v1 value string",
        V1,
        lambda: _v1(points=[[now_s(), "1"]]),
        "series[0].points[0][1]: Expected `float`, got `str`",
    ),
    (
        "v1 too old",
        V1,
        lambda: _v1(points=[[now_s(), 1], [now_s() - 460 * DAY_S, 1]]),
        "series[0].points[1].timestamp:",
    ),
    (
        "v1 timestamp past any time",
        V1,
        lambda: _v1(points=[[now_s(), 1], [1.7e308, 1]]),
        "series[0].points[1].timestamp: 1.7e+308 is not a time in epoch seconds",
    ),
    ("v1 host number", V1, lambda: _v1(host=1), "series[0].host: Expected `str | null`, got `int`"),
    ("v1 tag empty", V1, lambda: _v1(tags=[""]), "series[0]: has an empty tag"),
    ("v1 interval negative", V1, lambda: _v1(type="count", interval=-1), "series[0].interval"),
    (
        "dist scalar value",
        DIST,
        lambda: _dist(points=[[now_s(), 1.0]]),
        "series[0].points[0][1]: Expected `array`, got `float`",
    ),
    (
        "dist empty values",
        DIST,
        lambda: _dist(points=[[now_s(), [1]], [now_s(), []]]),
        "series[0].points[1]: the list of values is empty",
    ),
    (
        "dist value string",
        DIST,
        lambda: _dist(points=[[now_s(), [1, "2"]]]),
        "series[0].points[0][1][1]: Expected `float`, got `str`",
    ),
    ("dist bad type", DIST, lambda: _dist(type="gauge"), "series[0].type: Invalid enum value 'gauge'"),
    (
        "dist too new",
        DIST,
        lambda: _dist(points=[[now_s() + 7200, [1]]]),
        "is more than 1 hour in the future",
    ),
    ("dist no metric", DIST, lambda: {"series": [{"points": []}]}, "Object missing required field `metric`"),
]


@pytest.mark.parametrize(("case", "path", "body", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_payload_is_400(
    server: RunningServer, acme: dict[str, Any], case: str, path: str, body: Callable[[], Any], message: str
) -> None:
    assert_error(post(server, path, body(), acme["keys"]["dd_api_key"]), 400, message)


@pytest.mark.parametrize("path", PATHS)
def test_one_bad_series_refuses_the_whole_request(
    server: RunningServer, acme: dict[str, Any], path: str
) -> None:
    metric = unique("all.or.nothing")
    key = acme["keys"]["dd_api_key"]
    good = minimal(path)["series"][0] | {"metric": metric}
    bad = good | {"tags": [""]}
    assert_error(post(server, path, {"series": [good, good, bad]}, key), 400, "series[2]: has an empty tag")
    marker = good | {"tags": ["marker"]}
    assert_accepted(post(server, path, {"series": [marker]}, key), OK[path])
    # The marker was written after the refused request: once it is visible, anything before it would be.
    assert [s["tags"] for s in stored(server.url, acme, metric, 1)] == [["marker"]]


# --- encodings and limits ---------------------------------------------------------------------------------


def _compress(raw: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(raw)
    if encoding == "deflate":
        return zlib.compress(raw)
    if encoding == "raw-deflate":
        squeezer = zlib.compressobj(wbits=-15)
        return squeezer.compress(raw) + squeezer.flush()
    return zstandard.ZstdCompressor().compress(raw)


@pytest.mark.parametrize(
    ("path", "encoding"),
    [
        (V2, "gzip"),
        (V2, "deflate"),
        (V2, "raw-deflate"),
        (V2, "zstd"),
        (V2, "zstd1"),
        (V1, "gzip"),
        (V1, "deflate"),
        (DIST, "gzip"),
        (DIST, "deflate"),
    ],
)
def test_compressed_bodies_are_accepted(
    server: RunningServer, acme: dict[str, Any], path: str, encoding: str
) -> None:
    metric = unique("encoded")
    body = {"series": [minimal(path)["series"][0] | {"metric": metric}]}
    header = "deflate" if encoding == "raw-deflate" else encoding
    compressed = _compress(json.dumps(body).encode(), encoding.removesuffix("1"))
    response = post(server, path, compressed, acme["keys"]["dd_api_key"], **{"Content-Encoding": header})
    assert_accepted(response, OK[path])
    stored(server.url, acme, metric, 1)


@pytest.mark.parametrize(("path", "encoding"), [(V1, "zstd1"), (DIST, "zstd"), (V2, "br"), (V1, "compress")])
def test_unsupported_encoding_is_415(
    server: RunningServer, acme: dict[str, Any], path: str, encoding: str
) -> None:
    raw = json.dumps(minimal(path)).encode()
    response = post(server, path, raw, acme["keys"]["dd_api_key"], **{"Content-Encoding": encoding})
    assert_error(response, 415, f"Content-Encoding '{encoding}' is not supported")


def test_corrupt_compressed_body_is_400(server: RunningServer, acme: dict[str, Any]) -> None:
    raw = json.dumps(minimal(V2)).encode()
    key = acme["keys"]["dd_api_key"]
    assert_error(post(server, V2, raw, key, **{"Content-Encoding": "gzip"}), 400, "not valid gzip")
    assert_error(post(server, V2, raw, key, **{"Content-Encoding": "zstd1"}), 400, "not valid zstd")


def _v2_body_of(size: int, metric: str) -> bytes:
    """A valid v2 payload of about `size` bytes: one series of many points."""
    t = now_s()
    one = len(json.dumps({"timestamp": t, "value": 1.5})) + 2
    points = [{"timestamp": t - (i % 3000), "value": 1.5} for i in range(size // one)]
    return json.dumps({"series": [{"metric": metric, "points": points}]}).encode()


def _v1_body_of(size: int, metric: str) -> bytes:
    t = now_s()
    one = len(json.dumps([t, 1.5])) + 2
    points = [[t - (i % 3000), 1.5] for i in range(size // one)]
    return json.dumps({"series": [{"metric": metric, "points": points}]}).encode()


def test_v2_body_limit_is_512000_bytes(server: RunningServer, acme: dict[str, Any]) -> None:
    key = acme["keys"]["dd_api_key"]
    metric = unique("v2.limit")
    under = _v2_body_of(500_000, metric)
    assert 480_000 < len(under) <= 512_000
    assert_accepted(post(server, V2, under, key), V2_OK)
    over = _v2_body_of(530_000, metric)
    assert len(over) > 512_000
    assert_error(post(server, V2, over, key), 413, "the limit is 512000 bytes")
    # Sent in chunks, without a Content-Length to refuse it by.
    chunks = iter([over[i : i + 65536] for i in range(0, len(over), 65536)])
    chunked = httpx.post(server.url + V2, content=chunks, headers={"DD-API-KEY": key}, timeout=60)
    assert_error(chunked, 413, "the limit is 512000 bytes")


def test_v2_decompressed_limit_is_5242880_bytes(server: RunningServer, acme: dict[str, Any]) -> None:
    key = acme["keys"]["dd_api_key"]
    metric = unique("v2.decoded")
    under = _v2_body_of(5_000_000, metric)
    assert len(under) < 5_242_880 and len(gzip.compress(under)) < 512_000
    assert_accepted(post(server, V2, gzip.compress(under), key, **{"Content-Encoding": "gzip"}), V2_OK)
    over = _v2_body_of(5_400_000, metric)
    assert len(over) > 5_242_880
    for encoding in ("gzip", "zstd1"):
        compressed = _compress(over, encoding.removesuffix("1"))
        assert len(compressed) < 512_000
        response = post(server, V2, compressed, key, **{"Content-Encoding": encoding})
        assert_error(
            response, 413, "decompressed request body is larger than allowed; the limit is 5242880 bytes"
        )
    stored(server.url, acme, metric, len(json.loads(under)["series"][0]["points"]))


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compression_bombs_are_413(server: RunningServer, acme: dict[str, Any], encoding: str) -> None:
    bomb = _compress(b'{"series":[' + b" " * (300 * MIB) + b"]}", encoding)
    assert len(bomb) < 512_000
    response = post(server, V2, bomb, acme["keys"]["dd_api_key"], **{"Content-Encoding": encoding})
    assert_error(response, 413, "decompressed")


@pytest.mark.parametrize("path", [V1, DIST])
def test_v1_limits_are_3200000_bytes_and_62_mib_decompressed(
    server: RunningServer, acme: dict[str, Any], path: str
) -> None:
    key = acme["keys"]["dd_api_key"]
    metric = unique("v1.limit")
    if path == V1:
        under = _v1_body_of(3_100_000, metric)
        assert 3_000_000 < len(under) <= 3_200_000
        assert_accepted(post(server, path, under, key), V1_OK)
    over = b'{"series":[' + b" " * 3_200_000 + b"]}"
    assert_error(post(server, path, over, key), 413, "the limit is 3200000 bytes")
    at_limit = b'{"series":[' + b" " * (62_914_560 - 13) + b"]}"
    assert len(at_limit) == 62_914_560
    assert_accepted(post(server, path, gzip.compress(at_limit), key, **{"Content-Encoding": "gzip"}), V1_OK)
    bomb = gzip.compress(at_limit + b" ")
    detail = assert_error(post(server, path, bomb, key, **{"Content-Encoding": "gzip"}), 413)
    assert "decompressed request body is larger than allowed; the limit is 62914560 bytes" in detail


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir, "--max-queued-points", "1000", "--max-queue-wait", "0")
    try:
        org = provision(data_dir, "busy")
        t = now_s()
        points = [{"timestamp": t - i % 600, "value": i} for i in range(1000)]
        body = json.dumps({"series": [{"metric": "busy.points", "points": points}]}).encode()
        headers = {"Content-Type": "application/json", "DD-API-KEY": org["keys"]["dd_api_key"]}
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
            responses = list(
                pool.map(lambda _: client.post(running.url + V2, content=body, headers=headers), range(64))
            )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {202, 503}
        assert 202 in statuses and 503 in statuses, statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["retry-after"] == "1"
        assert_error(refused, 503, "retry shortly")
        # Exactly the acknowledged requests were stored: a refusal writes nothing.
        expected = 1000 * statuses.count(202)
        series = stored(running.url, org, "busy.points", expected)
        assert sum(len(s["points"]) for s in series) == expected
    finally:
        assert running.stop() == 0, running.errors()


def test_openapi_documents_the_intakes(server: RunningServer) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    for path, schema in ((V2, "MetricPayload"), (V1, "MetricsPayload"), (DIST, "DistributionPointsPayload")):
        operation = doc["paths"][path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{schema}"
        }
        assert {"202", "400", "401", "403", "413", "415", "503"} <= set(operation["responses"])
        assert operation["security"] == [{"DD-API-KEY": []}]
    series = doc["components"]["schemas"]["MetricSeries"]
    assert {"metric", "points"} <= set(series["required"])
    assert {"type", "interval", "unit", "tags", "resources"} <= set(series["properties"])


# --- durability -------------------------------------------------------------------------------------------


@dataclass
class SeriesLoad:
    """Client threads sending small v2 and v1 payloads; each point's value is unique within its worker."""

    url: str
    key: str
    label: str
    metric: str
    threads: int = 6
    attempted: set[tuple[str, int]] = field(default_factory=set)
    acknowledged: set[tuple[str, int]] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> SeriesLoad:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)
            assert not worker.is_alive()

    def wait_for(self, acknowledged: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < acknowledged:
            assert time.monotonic() < deadline, (
                f"only {len(self.acknowledged)} points acknowledged; statuses {dict(self.statuses)}, "
                f"{self.transport_errors} transport errors"
            )
            time.sleep(0.02)

    def _run(self, worker: int) -> None:
        tag = f"worker:{self.label}-{worker}"
        counter = 0
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                size = 1 + counter % 4
                values = list(range(counter, counter + size))
                counter += size
                t = now_s()
                path, body, ok = (
                    (
                        V2,
                        {
                            "series": [
                                {
                                    "metric": self.metric,
                                    "tags": [tag],
                                    "points": [{"timestamp": t, "value": v} for v in values],
                                }
                            ]
                        },
                        V2_OK,
                    )
                    if counter % 2
                    else (
                        V1,
                        {
                            "series": [
                                {"metric": self.metric, "tags": [tag], "points": [[t, v] for v in values]}
                            ]
                        },
                        V1_OK,
                    )
                )
                ids = {(tag, v) for v in values}
                with self._lock:
                    self.attempted |= ids
                try:
                    response = client.post(self.url + path, json=body, headers={"DD-API-KEY": self.key})
                except httpx.HTTPError:
                    with self._lock:
                        self.transport_errors += 1
                    time.sleep(0.01)
                    continue
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 202 and response.content == ok:
                        self.acknowledged |= ids


@pytest.fixture
def launch() -> Iterator[Callable[[Path], RunningServer]]:
    started: list[RunningServer] = []

    def _launch(data_dir: Path) -> RunningServer:
        running = start_server(data_dir)
        started.append(running)
        return running

    yield _launch
    for running in started:
        if running.proc.poll() is None:
            running.kill()


def test_sigkill_loses_no_acknowledged_point_and_duplicates_none(
    launch: Callable[[Path], RunningServer], data_dir: Path
) -> None:
    running = launch(data_dir)
    creds = json.loads((data_dir / "credentials.json").read_text())
    metric = "durability.points"
    loads: list[SeriesLoad] = []
    for round_ in range(3):
        load = SeriesLoad(running.url, creds["keys"]["dd_api_key"], f"kill{round_}", metric)
        loads.append(load.start())
        try:
            load.wait_for(400)
            time.sleep(0.5)
            running.kill()
        finally:
            load.stop()
        assert running.proc.returncode == -signal.SIGKILL
        assert set(load.statuses) == {202}, load.statuses
        running = launch(data_dir)

    acknowledged = set().union(*(load.acknowledged for load in loads))
    attempted = set().union(*(load.attempted for load in loads))
    assert len(acknowledged) >= 1200
    # Read through the restarted server, as a user would.
    points = Counter(
        (tag, int(point["value"]))
        for series in read_series(running.url, creds, metric)
        for tag in series["tags"]
        for point in series["points"]
    )
    lost = acknowledged - set(points)
    assert not lost, f"{len(lost)} acknowledged points lost, e.g. {sorted(lost)[:5]}"
    duplicated = [p for p, n in points.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} points stored twice, e.g. {duplicated[:5]}"
    assert set(points) <= attempted
    assert running.stop() == 0, running.errors()
