"""`GET`/`PUT /api/v1/metrics/{metric_name}` on a real server: what ingestion knows, what users set, the
official client, every refusal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException, NotFoundException
from datadog_api_client.v1.api.metrics_api import MetricsApi
from datadog_api_client.v1.model.metric_metadata import MetricMetadata

from tests.e2e.test_datadog_series import (
    DIST,
    V1,
    V1_OK,
    V2,
    V2_OK,
    assert_accepted,
    assert_error,
    now_s,
    post,
    query_headers,
    stored,
    unique,
)
from tests.serverproc import RunningServer, provision, sextant, start_server

PATH = "/api/v1/metrics/{}"


def ingest(server: RunningServer, org: dict[str, Any], metric: str, **series: Any) -> None:
    """One v2 point of `metric`, waited for until it is stored."""
    body = {"series": [{"metric": metric, "points": [{"timestamp": now_s(), "value": 1}], **series}]}
    assert_accepted(post(server, V2, body, org["keys"]["dd_api_key"]), V2_OK)
    stored(server.url, org, metric, 1)


def get(server: RunningServer, metric: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(server.url + PATH.format(metric), headers=headers, timeout=30)


def put(server: RunningServer, metric: str, body: bytes | Any, headers: dict[str, str]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **headers}
    return httpx.put(server.url + PATH.format(metric), content=content, headers=sent, timeout=30)


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


# --- what ingestion knows ---------------------------------------------------------------------------------


def test_get_shows_the_type_and_unit_ingestion_saw(server: RunningServer, acme: dict[str, Any]) -> None:
    headers = query_headers(acme)
    key = acme["keys"]["dd_api_key"]
    gauge, count, rate, dist = (unique(f"meta.{kind}") for kind in ("gauge", "count", "rate", "dist"))
    ingest(server, acme, gauge, type=3, unit="byte")
    ingest(server, acme, count, type=1, interval=10)
    t = now_s()
    assert_accepted(
        post(server, V1, {"series": [{"metric": rate, "type": "rate", "points": [[t, 1]]}]}, key), V1_OK
    )
    assert_accepted(post(server, DIST, {"series": [{"metric": dist, "points": [[t, [1, 2]]]}]}, key), V1_OK)
    stored(server.url, acme, rate, 1)
    stored(server.url, acme, dist, 1)
    assert ok(get(server, gauge, headers)) == {"type": "gauge", "unit": "byte"}
    assert ok(get(server, count, headers)) == {"type": "count"}
    assert ok(get(server, rate, headers)) == {"type": "rate"}
    assert ok(get(server, dist, headers)) == {"type": "distribution"}


def test_get_follows_the_latest_point(server: RunningServer, acme: dict[str, Any]) -> None:
    metric = unique("meta.latest")
    ingest(server, acme, metric, type=3, unit="byte")
    t = now_s() + 5
    later = {
        "series": [
            {"metric": metric, "type": 1, "unit": "kibibyte", "points": [{"timestamp": t, "value": 2}]}
        ]
    }
    assert_accepted(post(server, V2, later, acme["keys"]["dd_api_key"]), V2_OK)
    stored(server.url, acme, metric, 2)
    assert ok(get(server, metric, query_headers(acme))) == {"type": "count", "unit": "kibibyte"}


def test_unknown_metric_is_404(server: RunningServer, acme: dict[str, Any]) -> None:
    headers = query_headers(acme)
    metric = unique("meta.never")
    assert_error(get(server, metric, headers), 404, "metric_name not found", metric)
    assert_error(put(server, metric, {"description": "x"}, headers), 404, "metric_name not found")
    # The refused edit created nothing.
    assert_error(get(server, metric, headers), 404, "metric_name not found")


# --- what users set ---------------------------------------------------------------------------------------


def test_put_then_get(server: RunningServer, acme: dict[str, Any]) -> None:
    headers = query_headers(acme)
    metric = unique("meta.edit")
    ingest(server, acme, metric, type=3, unit="byte")
    edit = {
        "description": "Bytes read from disk",
        "short_name": "disk read",
        "unit": "kibibyte",
        "per_unit": "second",
        "statsd_interval": 10,
        "type": "rate",
    }
    assert ok(put(server, metric, edit, headers)) == edit
    assert ok(get(server, metric, headers)) == edit

    # Fields not given stay as they are.
    assert ok(put(server, metric, {"description": "Bytes read"}, headers)) == edit | {
        "description": "Bytes read"
    }
    # null (or "") clears a field: what ingestion knows shows through again.
    cleared = ok(put(server, metric, {"unit": None, "type": "", "per_unit": ""}, headers))
    assert cleared == {
        "description": "Bytes read",
        "short_name": "disk read",
        "statsd_interval": 10,
        "type": "gauge",
        "unit": "byte",
    }
    assert ok(get(server, metric, headers)) == cleared
    # An empty edit changes nothing.
    assert ok(put(server, metric, {}, headers)) == cleared
    everything = {"description": None, "short_name": None, "statsd_interval": None}
    assert ok(put(server, metric, everything, headers)) == {"type": "gauge", "unit": "byte"}


def test_metadata_is_per_organization(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    metric = unique("meta.tenant")
    ingest(server, acme, metric, type=3)
    ok(put(server, metric, {"description": "acme's"}, query_headers(acme)))
    assert_error(get(server, metric, query_headers(globex)), 404, "metric_name not found")
    assert_error(put(server, metric, {"description": "globex's"}, query_headers(globex)), 404)
    ingest(server, globex, metric, type=1)
    assert ok(get(server, metric, query_headers(globex))) == {"type": "count"}
    assert ok(get(server, metric, query_headers(acme))) == {"type": "gauge", "description": "acme's"}


INVALID: list[tuple[str, bytes | Any, str]] = [
    ("not json", b"{", "Invalid metric metadata"),
    ("array", [], "Expected `object`, got `array`"),
    ("unknown field", {"descripton": "typo"}, "Object contains unknown field `descripton`"),
    ("type set", {"type": "set"}, "Invalid enum value 'set'"),
    ("type number", {"type": 3}, "Expected `str | null`, got `int`"),
    ("description number", {"description": 5}, "Expected `str | null`, got `int`"),
    ("description too long", {"description": "d" * 4001}, "description is longer than 4000 characters"),
    ("short name too long", {"short_name": "s" * 201}, "short_name is longer than 200 characters"),
    ("unit too long", {"unit": "u" * 101}, "unit is longer than 100 characters"),
    ("interval zero", {"statsd_interval": 0}, "statsd_interval must be from 1 to 86400 seconds"),
    ("interval negative", {"statsd_interval": -5}, "statsd_interval must be from 1 to 86400 seconds"),
    ("interval huge", {"statsd_interval": 10**12}, "statsd_interval must be from 1 to 86400 seconds"),
    ("interval float", {"statsd_interval": 1.5}, "Expected `int | null`, got `float`"),
    ("integration", {"integration": "system"}, "integration is read-only"),
]


@pytest.mark.parametrize(("case", "body", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_edit_is_400_and_changes_nothing(
    server: RunningServer, acme: dict[str, Any], case: str, body: Any, message: str
) -> None:
    metric = unique("meta.invalid")
    ingest(server, acme, metric, type=3)
    headers = query_headers(acme)
    assert_error(put(server, metric, body, headers), 400, message)
    assert ok(get(server, metric, headers)) == {"type": "gauge"}


def test_edit_body_over_64_kib_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    metric = unique("meta.large")
    ingest(server, acme, metric)
    body = json.dumps({"description": "d" * 70_000}).encode()
    assert_error(put(server, metric, body, query_headers(acme)), 413, "the limit is 65536 bytes")


# --- authentication ---------------------------------------------------------------------------------------


def _app_key(server: RunningServer, *scopes: str) -> str:
    args = [
        "keys",
        "create",
        "--org",
        "acme",
        "--kind",
        "dd_app_key",
        "--json",
        "--data-dir",
        str(server.data_dir),
    ]
    for scope in scopes:
        args += ["--scope", scope]
    secret: str = json.loads(sextant(*args).stdout)["secret"]
    return secret


@pytest.fixture(scope="module")
def known_metric(server: RunningServer, acme: dict[str, Any]) -> str:
    metric = unique("meta.auth")
    ingest(server, acme, metric)
    return metric


def test_missing_keys_are_401(server: RunningServer, acme: dict[str, Any], known_metric: str) -> None:
    only_api = {"DD-API-KEY": acme["keys"]["dd_api_key"]}
    only_app = {"DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]}
    for headers, missing in (({}, "DD-API-KEY"), (only_api, "DD-APPLICATION-KEY"), (only_app, "DD-API-KEY")):
        assert_error(get(server, known_metric, headers), 401, f"{missing} header is missing")
        assert_error(put(server, known_metric, {"description": "x"}, headers), 401, missing)


def test_invalid_keys_are_403(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any], known_metric: str
) -> None:
    api = acme["keys"]["dd_api_key"]
    cases = [
        ({"DD-API-KEY": api, "DD-APPLICATION-KEY": "0" * 40}, "application key is not valid"),
        ({"DD-API-KEY": api, "DD-APPLICATION-KEY": api}, "application key is not valid"),
        (
            {"DD-API-KEY": "0" * 32, "DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]},
            "the API key is not valid",
        ),
        (
            {"DD-API-KEY": globex["keys"]["dd_api_key"], "DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]},
            "different organizations",
        ),
    ]
    for headers, message in cases:
        assert_error(get(server, known_metric, headers), 403, message)
        assert_error(put(server, known_metric, {"description": "x"}, headers), 403, message)


def test_scopes(server: RunningServer, acme: dict[str, Any], known_metric: str) -> None:
    api = acme["keys"]["dd_api_key"]
    no_read = {"DD-API-KEY": api, "DD-APPLICATION-KEY": _app_key(server, "timeseries_query")}
    assert_error(get(server, known_metric, no_read), 403, "lacks the metrics_read scope")
    read_only = {"DD-API-KEY": api, "DD-APPLICATION-KEY": _app_key(server, "metrics_read")}
    assert ok(get(server, known_metric, read_only)) == {"type": "gauge"}
    assert_error(
        put(server, known_metric, {"description": "x"}, read_only),
        403,
        "lacks the metrics_metadata_write scope",
    )
    writer = {"DD-API-KEY": api, "DD-APPLICATION-KEY": _app_key(server, "metrics_metadata_write")}
    assert ok(put(server, known_metric, {"short_name": "auth"}, writer)) == {
        "type": "gauge",
        "short_name": "auth",
    }


def test_bearer_token(server: RunningServer, acme: dict[str, Any], known_metric: str) -> None:
    bearer = {"Authorization": f"Bearer {acme['keys']['dd_app_key']}"}
    assert ok(get(server, known_metric, bearer))["type"] == "gauge"


# --- the official client ----------------------------------------------------------------------------------


def _client(server: RunningServer, org: dict[str, Any]) -> Iterator[MetricsApi]:
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = org["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = org["keys"]["dd_app_key"]
    with ApiClient(configuration) as client:
        yield MetricsApi(client)


def test_official_client_gets_and_updates(server: RunningServer, acme: dict[str, Any]) -> None:
    metric = unique("meta.client")
    ingest(server, acme, metric, type=1, unit="request")
    for api in _client(server, acme):
        got = api.get_metric_metadata(metric)
        assert isinstance(got, MetricMetadata)
        assert got.to_dict() == {"type": "count", "unit": "request"}
        updated = api.update_metric_metadata(
            metric, MetricMetadata(description="Requests served", per_unit="second", statsd_interval=10)
        )
        expected = {
            "description": "Requests served",
            "per_unit": "second",
            "statsd_interval": 10,
            "type": "count",
            "unit": "request",
        }
        assert updated.to_dict() == expected
        assert api.get_metric_metadata(metric).to_dict() == expected

        with pytest.raises(NotFoundException) as missing:
            api.get_metric_metadata(unique("meta.absent"))
        assert missing.value.body["errors"][0].startswith("metric_name not found")
        with pytest.raises(ApiException) as invalid:
            api.update_metric_metadata(metric, MetricMetadata(type="set"))
        assert invalid.value.status == 400
        assert "Invalid enum value 'set'" in invalid.value.body["errors"][0]

    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = acme["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = "0" * 40
    with ApiClient(configuration) as client, pytest.raises(ForbiddenException) as forbidden:
        MetricsApi(client).get_metric_metadata(metric)
    assert forbidden.value.body == {"errors": ["Forbidden: the application key is not valid"]}


# --- persistence and documentation ------------------------------------------------------------------------


def test_metadata_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir)
    try:
        org = provision(data_dir, "keeper")
        ingest(running, org, "kept.metric", type=3)
        ok(put(running, "kept.metric", {"description": "kept"}, query_headers(org)))
    finally:
        assert running.stop() == 0, running.errors()
    running = start_server(data_dir)
    try:
        assert ok(get(running, "kept.metric", query_headers(org))) == {"type": "gauge", "description": "kept"}
    finally:
        assert running.stop() == 0, running.errors()


def test_an_all_scope_key_from_before_metadata_editing_may_edit_after_the_upgrade(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    org = provision(data_dir, "upgraded")
    # The control database as the previous version left it: migrations up to 4, keys without the scope.
    with sqlite3.connect(data_dir / "control.sqlite3") as db:
        db.execute("DELETE FROM schema_migrations WHERE version = 5")
        old = ["rum_apps_read", "timeseries_query", "metrics_read", "logs_read_data"]
        db.execute("UPDATE keys SET scopes = ? WHERE kind = 'dd_app_key'", [json.dumps(old)])
    running = start_server(data_dir)
    try:
        ingest(running, org, "upgraded.metric", type=3)
        assert (
            ok(put(running, "upgraded.metric", {"description": "mine"}, query_headers(org)))["description"]
            == "mine"
        )
    finally:
        assert running.stop() == 0, running.errors()
    scoped = json.loads(
        sextant("keys", "list", "--org", "upgraded", "--data-dir", str(data_dir), "--json").stdout
    )
    (app_key,) = [k for k in scoped if k["kind"] == "dd_app_key"]
    assert "metrics_metadata_write" in app_key["scopes"]


def test_openapi_documents_get_and_put(server: RunningServer) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    operations = doc["paths"]["/api/v1/metrics/{metric_name}"]
    assert set(operations) == {"get", "put"}
    assert operations["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MetricMetadata"
    }
    assert {"200", "401", "403", "404"} <= set(operations["get"]["responses"])
    assert operations["put"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MetricMetadataUpdate"
    }
    assert {"200", "400", "401", "403", "404", "413"} <= set(operations["put"]["responses"])
    assert operations["put"]["security"] == [{"DD-API-KEY": [], "DD-APPLICATION-KEY": []}]
