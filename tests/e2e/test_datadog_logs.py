"""The Datadog logs intake (`POST /api/v2/logs`) and logs search (`POST /api/v2/logs/events/search`,
`GET /api/v2/logs/events`) on a real server: the official client, the Log Explorer's search syntax, and
every error and limit over raw HTTP."""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException
from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.model.content_encoding import ContentEncoding
from datadog_api_client.v2.model.http_log import HTTPLog
from datadog_api_client.v2.model.http_log_item import HTTPLogItem
from datadog_api_client.v2.model.logs_list_request import LogsListRequest
from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
from datadog_api_client.v2.model.logs_sort import LogsSort

from tests.e2e.test_prodlytics import assert_accepted, assert_error
from tests.serverproc import RunningServer, provision, sextant, start_server
from tests.storeread import stored_events

INTAKE = "/api/v2/logs"
SEARCH = "/api/v2/logs/events/search"
LIST = "/api/v2/logs/events"
MIB = 1024 * 1024
HOUR = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def new_run() -> str:
    """A tag value unique to one test, so that its searches see its own logs only."""
    return uuid.uuid4().hex[:12]


def post_logs(
    server: RunningServer,
    key: str | None,
    body: bytes | Any,
    params: dict[str, str] | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if key is not None:
        sent["DD-API-KEY"] = key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + INTAKE, content=content, headers=sent, params=params, timeout=60)


def query_headers(org: dict[str, Any]) -> dict[str, str]:
    return {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}


def search(server: RunningServer, org: dict[str, Any], body: Any, **headers: str) -> httpx.Response:
    sent = {**query_headers(org), **headers}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        server.url + SEARCH, content=content, headers={"Content-Type": "application/json", **sent}, timeout=60
    )


def found(
    server: RunningServer, org: dict[str, Any], query: str, count: int | None = None, **body: Any
) -> list[dict[str, Any]]:
    """The logs a search finds, waiting (up to the documented second, and some slack) until `count` do."""
    request = {"filter": {"query": query, **body.pop("filter", {})}, "page": {"limit": 1000}, **body}
    deadline = time.monotonic() + 3
    while True:
        response = search(server, org, request)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        if count is None or len(data) == count or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def messages(logs: list[dict[str, Any]]) -> list[str]:
    return sorted(log["attributes"].get("message", "") for log in logs)


def assert_api_error(response: httpx.Response, status: int, *fragments: str) -> None:
    """A query-endpoint error: `{"errors": ["..."]}`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    for fragment in fragments:
        assert fragment in body["errors"][0], body["errors"][0]


# --- the official client ----------------------------------------------------------------------------------


@pytest.fixture
def logs_api(server: RunningServer, acme: dict[str, Any]) -> Iterator[LogsApi]:
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = acme["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = acme["keys"]["dd_app_key"]
    with ApiClient(configuration) as client:
        yield LogsApi(client)


def test_official_client_submits_and_searches(logs_api: LogsApi, server: RunningServer) -> None:
    run = new_run()
    before = datetime.now(UTC)
    body = HTTPLog(
        [
            HTTPLogItem(
                ddsource="nginx",
                ddtags="env:staging,team:core",
                hostname="i-012345678",
                message="GET /checkout 200 in 35 ms",
                service="web",
                status="info",
                http={"path": "/checkout", "status_code": 200},
            ),
            HTTPLogItem(
                ddsource="python",
                ddtags="env:staging",
                hostname="i-987654321",
                message="payment failed: card declined",
                service="web",
                status="error",
                custom={"path": "value", "attempts": 3, "flags": ["retry", "final"]},
            ),
        ]
    )
    # The client compresses the body itself for the Content-Encoding it is given.
    assert logs_api.submit_log(body=body, content_encoding=ContentEncoding.GZIP, ddtags=f"run:{run}") == {}
    later = HTTPLog([HTTPLogItem(message="worker started", service="worker", ddtags=f"run:{run}")])
    assert logs_api.submit_log(body=later, content_encoding=ContentEncoding.DEFLATE) == {}

    def post_search(query: str, count: int, **kwargs: Any) -> list[Any]:
        request = LogsListRequest(
            filter=LogsQueryFilter(query=f"run:{run} {query}", _from="now-15m", to="now"),
            page=LogsListRequestPage(limit=10),
            **kwargs,
        )
        deadline = time.monotonic() + 3
        while True:
            data = list(logs_api.list_logs(body=request).data)
            if len(data) == count or time.monotonic() > deadline:
                return data
            time.sleep(0.05)

    assert len(post_search("*", 3)) == 3
    [error] = post_search("service:web status:error", 1)
    attrs = error.attributes
    assert attrs.message == "payment failed: card declined"
    assert (attrs.service, attrs.status, attrs.host) == ("web", "error", "i-987654321")
    assert attrs.tags == ["env:staging", f"run:{run}", "source:python"]
    assert before - timedelta(seconds=1) <= attrs.timestamp <= datetime.now(UTC)
    assert attrs.attributes == {
        "custom": {"path": "value", "attempts": 3, "flags": ["retry", "final"]},
        "hostname": "i-987654321",
        "service": "web",
    }
    assert error.type.value == "log" and error.id
    assert [log.attributes.message for log in post_search("@custom.path:value", 1)] == [attrs.message]
    assert [log.attributes.message for log in post_search("team:core", 1)] == ["GET /checkout 200 in 35 ms"]
    assert [log.attributes.message for log in post_search("declined", 1)] == [attrs.message]
    assert [log.attributes.message for log in post_search("@http.status_code:>=200", 1)] == [
        "GET /checkout 200 in 35 ms"
    ]
    oldest_first = post_search("*", 3, sort=LogsSort.TIMESTAMP_ASCENDING)
    assert oldest_first[-1].attributes.message == "worker started"
    assert oldest_first[-1].attributes.status == "info"  # Datadog's default status

    now = datetime.now(UTC)
    got = logs_api.list_logs_get(
        filter_query=f"run:{run} source:nginx",
        filter_from=now - timedelta(minutes=5),
        filter_to=now + timedelta(minutes=1),
        sort=LogsSort.TIMESTAMP_DESCENDING,
        page_limit=5,
    )
    assert [log.attributes.attributes["http"] for log in got.data] == [
        {"path": "/checkout", "status_code": 200}
    ]
    paged = logs_api.list_logs_with_pagination(
        body=LogsListRequest(
            filter=LogsQueryFilter(query=f"run:{run}"),
            sort=LogsSort.TIMESTAMP_ASCENDING,
            page=LogsListRequestPage(limit=2),
        )
    )
    assert [log.attributes.message for log in paged] == [log.attributes.message for log in oldest_first]
    paged_get = logs_api.list_logs_get_with_pagination(filter_query=f"run:{run}", page_limit=1)
    assert len(list(paged_get)) == 3


def test_official_client_raises_with_our_error_bodies(
    server: RunningServer, acme: dict[str, Any], logs_api: LogsApi
) -> None:
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = "0" * 32
    configuration.api_key["appKeyAuth"] = "0" * 40
    with ApiClient(configuration) as client:
        with pytest.raises(ForbiddenException) as forbidden:
            LogsApi(client).submit_log(body=HTTPLog([HTTPLogItem(message="x")]))
        assert forbidden.value.body["errors"][0]["status"] == "403"
        with pytest.raises(ForbiddenException) as forbidden:
            LogsApi(client).list_logs_get(filter_query="*")
        assert forbidden.value.body == {"errors": ["Forbidden: the application key is not valid"]}
    with pytest.raises(ApiException) as bad:
        logs_api.list_logs(body=LogsListRequest(filter=LogsQueryFilter(query="service:(web")))
    assert bad.value.status == 400
    assert "filter.query: invalid search query at position" in bad.value.body["errors"][0]


# --- what searches find -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(server: RunningServer, acme: dict[str, Any]) -> str:
    """One batch of logs covering the reserved attributes' sources; returns its run tag."""
    run = new_run()
    logs = [
        {"message": "checkout completed", "service": "web", "hostname": "web-1", "ddsource": "nginx",
         "ddtags": "env:prod,team:core,bare", "status": "info", "duration": 80,
         "http": {"status_code": 200, "url_details": {"path": "/checkout"}}},
        {"message": "card declined for order 17", "service": "api", "host": "api-1", "ddsource": "python",
         "ddtags": "env:prod", "level": "ERROR", "duration": 250, "customer": {"name": "Ada"},
         "http": {"status_code": 402}, "usr": {"id": 42}, "type": "access"},
        {"message": "disk almost full", "syslog": {"hostname": "h-syslog", "appname": "cron",
         "severity": "warn"}, "ddtags": "env:dev", "items": [{"sku": "a"}, {"sku": "b"}]},
        {"message": "Webhook retried", "service": "web-hooks", "status": 3, "ddtags": "env:staging"},
        {"message": "no tags here", "service": "batch", "status": "OK"},
    ]  # fmt: skip
    assert_accepted(post_logs(server, acme["keys"]["dd_api_key"], logs, params={"ddtags": f"run:{run}"}))
    assert len(found(server, acme, f"run:{run}", 5)) == 5
    return run


CHECKOUT, DECLINED, DISK, WEBHOOK, NOTAGS = (
    "checkout completed",
    "card declined for order 17",
    "disk almost full",
    "Webhook retried",
    "no tags here",
)
SEARCHES: list[tuple[str, list[str]]] = [
    ("*", [CHECKOUT, DECLINED, DISK, WEBHOOK, NOTAGS]),
    ("service:web", [CHECKOUT]),
    ("service:web*", [CHECKOUT, WEBHOOK]),
    ("-service:web", [DECLINED, DISK, WEBHOOK, NOTAGS]),
    ("service:cron", [DISK]),  # from syslog.appname
    ("host:web-1", [CHECKOUT]),  # from hostname
    ("host:api-1", [DECLINED]),
    ("host:h-syslog", [DISK]),  # from syslog.hostname
    ("status:error", [DECLINED, WEBHOOK]),  # level ERROR, and syslog severity 3
    ("status:warning", [DISK]),  # syslog.severity warn
    ("status:ok", [NOTAGS]),
    ("status:info", [CHECKOUT]),
    ("status:(error OR warning)", [DECLINED, DISK, WEBHOOK]),
    ("source:nginx", [CHECKOUT]),  # ddsource is the source tag
    ("env:prod", [CHECKOUT, DECLINED]),
    ("env:(dev OR staging)", [DISK, WEBHOOK]),
    ("env:pr*", [CHECKOUT, DECLINED]),
    ("env:*", [CHECKOUT, DECLINED, DISK, WEBHOOK]),
    ("_missing_:env", [NOTAGS]),
    ("team:core", [CHECKOUT]),
    ("tags:bare", [CHECKOUT]),
    ("tags:env:dev", [DISK]),
    ("declined", [DECLINED]),  # free text: the message only
    ("webhook", [WEBHOOK]),  # case-insensitive
    ("web*", [WEBHOOK]),  # a word of the message starting with web
    ("web", []),  # the service is not the message
    ('"almost full"', [DISK]),
    ("ada", []),
    ("*:ada", [DECLINED]),  # full text: every attribute
    ("@customer.name:Ada", [DECLINED]),
    ("@customer.name:ada", []),  # attribute searches are case-sensitive
    ("@http.status_code:[400 TO 499]", [DECLINED]),
    ("@http.url_details.path:/checkout", [CHECKOUT]),
    ("@duration:>100", [DECLINED]),
    ("@items.sku:b", [DISK]),
    ("@usr.id:42", [DECLINED]),
    ("@type:access", [DECLINED]),
    ("@level:ERROR", [DECLINED]),  # the remapped attribute is kept as sent
    ("status:error service:api declined", [DECLINED]),
    ("service:web OR host:api-1", [CHECKOUT, DECLINED]),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES, ids=[q for q, _ in SEARCHES])
def test_log_explorer_searches(
    server: RunningServer, acme: dict[str, Any], corpus: str, query: str, expected: list[str]
) -> None:
    assert messages(found(server, acme, f"run:{corpus} ({query})")) == sorted(expected)


def test_rendered_log(server: RunningServer, acme: dict[str, Any], corpus: str) -> None:
    [log] = found(server, acme, f"run:{corpus} declined")
    attrs = log["attributes"]
    assert log["type"] == "log" and isinstance(log["id"], str)
    assert {k: attrs[k] for k in ("status", "service", "host", "message", "tags")} == {
        "status": "error",
        "service": "api",
        "host": "api-1",
        "message": DECLINED,
        "tags": ["env:prod", f"run:{corpus}", "source:python"],
    }
    assert attrs["attributes"] == {
        "service": "api",
        "level": "ERROR",
        "duration": 250,
        "customer": {"name": "Ada"},
        "http": {"status_code": 402},
        # Standard event paths are kept as text.
        "usr": {"id": "42"},
        "type": "access",
    }
    assert datetime.fromisoformat(attrs["timestamp"]) <= datetime.now(UTC)
    assert attrs["timestamp"].endswith("Z") and len(attrs["timestamp"]) == len("2026-01-01T00:00:00.000Z")
    [disk] = found(server, acme, f"run:{corpus} disk")
    # An array of objects comes back as lists under each path (the stored form).
    assert disk["attributes"]["attributes"]["items"] == {"sku": ["a", "b"]}
    assert disk["attributes"]["attributes"]["syslog"] == {
        "hostname": "h-syslog",
        "appname": "cron",
        "severity": "warn",
    }


def test_sort_by_attribute(server: RunningServer, acme: dict[str, Any], corpus: str) -> None:
    ascending = found(server, acme, f"run:{corpus} @duration:*", sort="@duration")
    assert [log["attributes"]["attributes"]["duration"] for log in ascending] == [80, 250]
    descending = found(server, acme, f"run:{corpus} @duration:*", sort="-@duration")
    assert [log["attributes"]["attributes"]["duration"] for log in descending] == [250, 80]
    by_service = found(server, acme, f"run:{corpus} _exists_:service", sort="service")
    assert [log["attributes"]["service"] for log in by_service] == [
        "api",
        "batch",
        "cron",
        "web",
        "web-hooks",
    ]


def test_get_endpoint_takes_the_same_search(server: RunningServer, acme: dict[str, Any], corpus: str) -> None:
    response = httpx.get(
        server.url + LIST,
        params={"filter[query]": f"run:{corpus} env:prod", "sort": "timestamp", "page[limit]": "5"},
        headers=query_headers(acme),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert messages(body["data"]) == sorted([CHECKOUT, DECLINED])
    assert set(body["meta"]) == {"elapsed", "request_id", "status"} and body["meta"]["status"] == "done"
    assert "links" not in body  # nothing more to read


def test_pagination_cursor_and_next_link(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    key = acme["keys"]["dd_api_key"]
    assert_accepted(
        post_logs(server, key, [{"message": f"line {i}", "n": i} for i in range(5)], {"ddtags": f"run:{run}"})
    )
    found(server, acme, f"run:{run}", 5)
    first = search(
        server, acme, {"filter": {"query": f"run:{run}"}, "page": {"limit": 2}, "sort": "@n"}
    ).json()
    assert [log["attributes"]["attributes"]["n"] for log in first["data"]] == [0, 1]
    cursor = first["meta"]["page"]["after"]
    # Logs arriving after the first page do not shift the pages that follow: the window is kept.
    time.sleep(0.01)
    assert_accepted(post_logs(server, key, [{"message": "late", "n": -1}], {"ddtags": f"run:{run}"}))
    found(server, acme, f"run:{run}", 6)
    second = search(
        server,
        acme,
        {"filter": {"query": f"run:{run}"}, "page": {"limit": 2, "cursor": cursor}, "sort": "@n"},
    ).json()
    assert [log["attributes"]["attributes"]["n"] for log in second["data"]] == [2, 3]
    following = httpx.get(second["links"]["next"], headers=query_headers(acme))
    assert following.status_code == 200, following.text
    last = following.json()
    assert [log["attributes"]["attributes"]["n"] for log in last["data"]] == [4]
    assert "page" not in last["meta"] and "links" not in last


def test_default_window_is_the_last_15_minutes(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    now = now_ms()
    logs = [{"message": "recent"}, {"message": "older", "timestamp": now - 20 * 60_000}]
    assert_accepted(post_logs(server, acme["keys"]["dd_api_key"], logs, {"ddtags": f"run:{run}"}))
    assert messages(found(server, acme, f"run:{run}", 1)) == ["recent"]
    wider = found(server, acme, f"run:{run}", 2, filter={"from": "now-1h", "to": "now"})
    assert messages(wider) == ["older", "recent"]


# --- log times --------------------------------------------------------------------------------------------


def test_date_attributes_set_the_log_time(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    now = now_ms() // 1000 * 1000
    t = {h: now - h * HOUR for h in range(1, 8)}

    def utc(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC)

    syslog = utc(t[6])
    logs = [
        {"message": "iso", "timestamp": utc(t[1]).isoformat()},
        {"message": "epoch ms", "date": t[2]},
        {"message": "epoch ms text", "published_date": str(t[3])},
        {"message": "at-timestamp", "@timestamp": utc(t[4]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
        {"message": "eventTime", "eventTime": t[5]},
        {"message": "rfc3164", "syslog": {"timestamp": f"{syslog:%b} {syslog.day:>2} {syslog:%H:%M:%S}"}},
        {"message": "first recognized wins", "timestamp": "soon", "date": t[7]},
        {"message": "not a date", "timestamp": "whenever"},
    ]  # fmt: skip
    assert_accepted(post_logs(server, acme["keys"]["dd_api_key"], logs, {"ddtags": f"run:{run}"}))
    stored = found(server, acme, f"run:{run}", 8, filter={"from": now - 8 * HOUR, "to": now + 60_000})
    times = {
        log["attributes"]["message"]: datetime.fromisoformat(log["attributes"]["timestamp"]) for log in stored
    }
    expected = {
        "iso": t[1], "epoch ms": t[2], "epoch ms text": t[3], "at-timestamp": t[4], "eventTime": t[5],
        "rfc3164": t[6], "first recognized wins": t[7],
    }  # fmt: skip
    for message, ms in expected.items():
        assert times[message] == datetime.fromtimestamp(ms / 1000, UTC), message
    # Not a date in a known format: the receive time, and the attribute kept as sent.
    assert times["not a date"] >= datetime.fromtimestamp((now - 60_000) / 1000, UTC)
    [kept] = [log for log in stored if log["attributes"]["message"] == "not a date"]
    assert kept["attributes"]["attributes"]["timestamp"] == "whenever"
    hour_window = found(
        server, acme, f"run:{run}", 1, filter={"from": now - 2 * HOUR - 1, "to": now - 2 * HOUR + 1}
    )
    assert messages(hour_window) == ["epoch ms"]


DATES_OUTSIDE: list[tuple[str, Any, str]] = [
    ("epoch seconds", lambda: {"timestamp": 1_700_000_000},
     "timestamp 1700000000 (as epoch milliseconds: 1700000000) is more than 15 months in the past"),
    ("old iso", lambda: {"date": "2020-01-01T00:00:00Z"}, "is more than 15 months in the past"),
    ("future", lambda: {"date": now_ms() + 2 * HOUR}, "is more than 1 hour in the future"),
    ("negative", lambda: {"eventTime": -5}, "is more than 15 months in the past"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "log", "detail"), DATES_OUTSIDE, ids=[c[0] for c in DATES_OUTSIDE])
def test_date_outside_the_window_is_400(
    server: RunningServer, acme: dict[str, Any], case: str, log: Any, detail: str
) -> None:
    response = post_logs(server, acme["keys"]["dd_api_key"], [{"message": "ok"}, {"message": "x", **log()}])
    found_detail = assert_error(response, 400, "log[1]: ", detail)
    assert "log dates are epoch milliseconds, ISO 8601 or RFC 3164" in found_detail


def test_dates_inside_the_window_are_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    now = now_ms()
    for date in (now - 400 * 86_400_000, now + 30 * 60_000):
        assert_accepted(post_logs(server, acme["keys"]["dd_api_key"], {"message": "edge", "date": date}))


# --- query parameters -------------------------------------------------------------------------------------


def test_query_parameters_apply_to_every_log(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    params = {
        "dd-api-key": acme["keys"]["dd_api_key"],
        "ddsource": "heroku",
        "ddtags": f"run:{run},env:prod",
        "service": "drain",
        "host": "dyno-1",
        "region": "eu",
        "dd-request-id": "abc",  # Datadog's transport parameters are not attributes
    }
    logs = [{"message": "from the drain"}, {"message": "own fields win", "service": "own", "region": "us"}]
    response = httpx.post(server.url + INTAKE, json=logs, params=params, timeout=30)
    assert_accepted(response)
    stored = {log["attributes"]["message"]: log["attributes"] for log in found(server, acme, f"run:{run}", 2)}
    drained = stored["from the drain"]
    assert (drained["service"], drained["host"]) == ("drain", "dyno-1")
    assert drained["tags"] == ["env:prod", f"run:{run}", "source:heroku"]
    assert drained["attributes"] == {"service": "drain", "region": "eu"}
    own = stored["own fields win"]
    assert (own["service"], own["attributes"]["region"]) == ("own", "us")
    bad = httpx.post(server.url + INTAKE, json=logs, params={"dd-api-key": "f" * 32}, timeout=30)
    assert_error(bad, 403, "unknown or has been revoked")


# --- intake errors ----------------------------------------------------------------------------------------


def test_missing_api_key_is_401(server: RunningServer) -> None:
    assert_error(post_logs(server, None, {"message": "x"}), 401, "DD-API-KEY")
    assert_error(post_logs(server, "", {"message": "x"}), 401, "DD-API-KEY")


def test_unknown_key_is_403(server: RunningServer) -> None:
    assert_error(post_logs(server, "f" * 32, {"message": "x"}), 403, "unknown or has been revoked")


def test_key_of_another_kind_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    assert_error(post_logs(server, acme["keys"]["dd_app_key"], {"message": "x"}), 403, "dd_app_key")


def test_key_without_the_logs_scope_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    created = json.loads(
        sextant(
            "keys", "create", "--org", "acme", "--kind", "dd_api_key", "--scope", "events_write",
            "--json", "--data-dir", str(server.data_dir),
        ).stdout
    )  # fmt: skip
    assert_error(post_logs(server, created["secret"], {"message": "x"}), 403, "logs_write")


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


INVALID: list[tuple[str, Any, str]] = [
    ("not json", b'{"message": ', "Malformed payload: body is not valid JSON"),
    ("raw text", b"hello world", "Malformed payload: body is not valid JSON"),
    ("empty body", b"", "not valid JSON"),
    ("json string", b'"hello"', "body must be a JSON object or an array of objects"),
    ("json number", b"42", "body must be a JSON object or an array of objects"),
    ("empty batch", b"[]", "empty array"),
    ("item not an object", [{"message": "ok"}, "x"], "log[1]: must be a JSON object"),
    ("nested array", [[{"message": "x"}]], "log[0]: must be a JSON object"),
    ("message number", {"message": 7}, "message must be a string, not 7"),
    ("message object", [{"message": {"a": 1}}], 'log[0]: message must be a string, not {"a":1}'),
    ("ddtags array", {"ddtags": ["env:prod"]}, 'ddtags must be a string, not ["env:prod"]'),
    ("ddsource number", {"ddsource": 1}, "ddsource must be a string"),
    ("hostname bool", {"hostname": True}, "hostname must be a string, not true"),
    ("host number", {"host": 5}, "host must be a string"),
    ("service object", {"service": {"name": "web"}}, "service must be a string"),
    ("status bool", {"status": False}, "status must be a string or a syslog severity from 0 to 7"),
    ("status object", {"status": {"level": 1}}, "status must be a string or a syslog severity"),
    ("tags object", {"tags": {"env": "prod"}, "message": "x"}, "tags holds the log's tags"),
    ("tags numbers", {"tags": [1, 2]}, "tags holds the log's tags"),
    ("too deep", {"deep": _nested(40)}, "nested deeper than 32 levels"),
    ("far too deep", b'[{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}]", "nested deeper than 32 levels"),
]


@pytest.mark.parametrize(("case", "body", "detail"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_log_is_400(
    server: RunningServer, acme: dict[str, Any], case: str, body: Any, detail: str
) -> None:
    assert_error(post_logs(server, acme["keys"]["dd_api_key"], body), 400, detail)


def test_a_refused_batch_stores_nothing(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    key = acme["keys"]["dd_api_key"]
    batch = [{"message": "good"}, {"message": "bad", "service": 1}]
    assert_error(post_logs(server, key, batch, {"ddtags": f"run:{run}"}), 400, "log[1]: service")
    assert_accepted(post_logs(server, key, {"message": "marker"}, {"ddtags": f"run:{run}"}))
    assert messages(found(server, acme, f"run:{run}", 1)) == ["marker"]


def test_tags_attribute_is_merged(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    logs = [{"message": "a", "tags": ["x:1", "bare"]}, {"message": "b", "tags": "y:2, z"}]
    assert_accepted(post_logs(server, acme["keys"]["dd_api_key"], logs, {"ddtags": f"run:{run}"}))
    stored = {
        log["attributes"]["message"]: log["attributes"]["tags"]
        for log in found(server, acme, f"run:{run}", 2)
    }
    assert stored == {"a": ["bare", f"run:{run}", "x:1"], "b": [f"run:{run}", "y:2", "z"]}
    assert messages(found(server, acme, f"run:{run} x:1")) == ["a"]


# --- encodings and limits ---------------------------------------------------------------------------------


def test_gzip_and_deflate_bodies(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    raw = json.dumps([{"message": "compressed"}]).encode()
    key, params = acme["keys"]["dd_api_key"], {"ddtags": f"run:{run}"}
    assert_accepted(post_logs(server, key, gzip.compress(raw), params, **{"Content-Encoding": "gzip"}))
    assert_accepted(post_logs(server, key, zlib.compress(raw), params, **{"Content-Encoding": "deflate"}))
    raw_deflate = zlib.compressobj(wbits=-15)
    body = raw_deflate.compress(raw) + raw_deflate.flush()
    assert_accepted(post_logs(server, key, body, params, **{"Content-Encoding": "deflate"}))
    assert len(found(server, acme, f"run:{run} compressed", 3)) == 3


def test_bad_encodings(server: RunningServer, acme: dict[str, Any]) -> None:
    key = acme["keys"]["dd_api_key"]
    raw = json.dumps({"message": "x"}).encode()
    assert_error(post_logs(server, key, raw, **{"Content-Encoding": "gzip"}), 400, "not valid gzip")
    assert_error(
        post_logs(server, key, gzip.compress(raw)[:-12], **{"Content-Encoding": "gzip"}), 400, "truncated"
    )
    assert_error(post_logs(server, key, raw, **{"Content-Encoding": "br"}), 415, "'br' is not supported")


def _padded(size: int) -> dict[str, Any]:
    """A log whose JSON is exactly `size` bytes."""
    log = {"message": ""}
    log["message"] = "x" * (size - len(json.dumps(log)))
    assert len(json.dumps(log)) == size
    return log


def test_body_over_5mb_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    body = json.dumps([_padded(100_000)] * 53).encode()
    assert len(body) > 5 * MIB
    assert_error(post_logs(server, acme["keys"]["dd_api_key"], body), 413, "the limit is 5242880 bytes")


def test_decompressed_over_5mb_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    body = gzip.compress(json.dumps([_padded(100_000)] * 63).encode())
    assert len(body) < MIB
    detail = assert_error(
        post_logs(server, acme["keys"]["dd_api_key"], body, **{"Content-Encoding": "gzip"}), 413
    )
    assert "decompressed request body is larger than allowed; the limit is 5242880 bytes" in detail


def test_log_over_1mb_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    key = acme["keys"]["dd_api_key"]
    single = json.dumps(_padded(MIB + 1)).encode()
    assert_error(
        post_logs(server, key, single), 413, f"the log is {MIB + 1} bytes; a log may be at most {MIB} bytes"
    )
    batch = [{"message": "small"}, _padded(MIB + 1), {"message": "small"}]
    assert_error(
        post_logs(server, key, batch), 413, f"log[1] is {MIB + 1} bytes; a log may be at most {MIB} bytes"
    )
    gzipped = gzip.compress(json.dumps(batch).encode())
    assert_error(post_logs(server, key, gzipped, **{"Content-Encoding": "gzip"}), 413, "log[1] is")


def test_log_of_1mb_is_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    key = acme["keys"]["dd_api_key"]
    assert_accepted(post_logs(server, key, [_padded(MIB), {"message": "next"}], {"ddtags": f"run:{run}"}))
    assert_accepted(post_logs(server, key, _padded(MIB), {"ddtags": f"run:{run}"}))
    logs = found(server, acme, f"run:{run}", 3)
    assert sorted(len(log["attributes"]["message"]) for log in logs) == [4, MIB - 15, MIB - 15]


def test_over_1000_logs_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    run = new_run()
    key = acme["keys"]["dd_api_key"]
    over = [{"message": f"n{i}"} for i in range(1001)]
    detail = "the batch holds 1001 logs; at most 1000 logs are accepted per request"
    assert_error(post_logs(server, key, over), 413, detail)
    big = [_padded(1100) for _ in range(1001)]  # over 1 MB: the per-log path counts first too
    assert_error(post_logs(server, key, big), 413, detail)
    assert_accepted(post_logs(server, key, over[:1000], {"ddtags": f"run:{run}"}))
    assert len(found(server, acme, f"run:{run}", 1000)) == 1000


# --- tenants ----------------------------------------------------------------------------------------------


def test_other_organizations_see_nothing(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any], corpus: str
) -> None:
    assert found(server, globex, f"run:{corpus}") == []
    assert found(server, globex, "*", filter={"from": "now-1h"}) == []
    mixed = {"DD-API-KEY": globex["keys"]["dd_api_key"], "DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]}
    response = httpx.post(server.url + SEARCH, json={}, headers=mixed)
    assert_api_error(response, 403, "different organizations")
    run = new_run()
    assert_accepted(
        post_logs(server, globex["keys"]["dd_api_key"], {"message": "globex only"}, {"ddtags": f"run:{run}"})
    )
    assert messages(found(server, globex, f"run:{run}", 1)) == ["globex only"]
    assert found(server, acme, f"run:{run}") == []


# --- search errors ----------------------------------------------------------------------------------------


def test_search_auth_errors(server: RunningServer, acme: dict[str, Any]) -> None:
    response = httpx.post(server.url + SEARCH, json={}, headers={"DD-API-KEY": acme["keys"]["dd_api_key"]})
    assert_api_error(response, 401, "DD-APPLICATION-KEY header is missing")
    response = httpx.get(server.url + LIST, headers={"DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]})
    assert_api_error(response, 401, "DD-API-KEY header is missing")
    bearer = httpx.get(server.url + LIST, headers={"Authorization": f"Bearer {acme['keys']['dd_app_key']}"})
    assert bearer.status_code == 200, bearer.text
    created = json.loads(
        sextant(
            "keys", "create", "--org", "acme", "--kind", "dd_app_key", "--scope", "rum_apps_read",
            "--json", "--data-dir", str(server.data_dir),
        ).stdout
    )  # fmt: skip
    headers = {"DD-API-KEY": acme["keys"]["dd_api_key"], "DD-APPLICATION-KEY": created["secret"]}
    assert_api_error(
        httpx.post(server.url + SEARCH, json={}, headers=headers), 403, "lacks the logs_read_data scope"
    )


BAD_SEARCHES: list[tuple[str, Any, str]] = [
    ("not json", b'{"filter": ', "request body is not valid JSON"),
    (
        "filter not an object",
        {"filter": "x"},
        "invalid request: Expected `object | null`, got `str` - at `$.filter`",
    ),
    ("limit not a number", {"page": {"limit": "10"}}, "invalid request: Expected `int | null`"),
    ("syntax", {"filter": {"query": "service:(web"}}, "filter.query: invalid search query at position"),
    ("tag comparison", {"filter": {"query": "env:>3"}}, "an attribute (@env) for a comparison or range"),
    ("bad from", {"filter": {"from": "yesterday"}}, "filter.from 'yesterday' is not a time"),
    ("bad to", {"filter": {"to": "later"}}, "filter.to 'later' is not a time"),
    ("empty window", {"filter": {"from": "now", "to": "now-1h"}}, "must be earlier than filter.to"),
    ("limit 0", {"page": {"limit": 0}}, "page limit must be between 1 and 1000, not 0"),
    ("limit 1001", {"page": {"limit": 1001}}, "page limit must be between 1 and 1000, not 1001"),
    ("bad sort", {"sort": "env"}, "sort 'env' is not a sort"),
    ("bad cursor", {"page": {"cursor": "not-a-cursor"}}, "is not one this server gave"),
]


@pytest.mark.parametrize(("case", "body", "detail"), BAD_SEARCHES, ids=[c[0] for c in BAD_SEARCHES])
def test_bad_searches_are_400(
    server: RunningServer, acme: dict[str, Any], case: str, body: Any, detail: str
) -> None:
    assert_api_error(search(server, acme, body), 400, detail)


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"page[limit]": "ten"}, "page[limit] must be a whole number"),
        ({"page[limit]": "5000"}, "page limit must be between 1 and 1000"),
        ({"filter[from]": "soon"}, "filter[from] 'soon' is not a time"),
        ({"filter[query]": "a AND"}, "filter[query]: invalid search query"),
        ({"page[cursor]": "!!"}, "is not one this server gave"),
    ],
)
def test_bad_get_searches_are_400(
    server: RunningServer, acme: dict[str, Any], params: dict[str, str], detail: str
) -> None:
    assert_api_error(httpx.get(server.url + LIST, params=params, headers=query_headers(acme)), 400, detail)


def test_empty_search_body_uses_the_defaults(server: RunningServer, acme: dict[str, Any]) -> None:
    response = search(server, acme, b"")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) <= 10


# --- what is stored ---------------------------------------------------------------------------------------


def test_stored_rows(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir)
    try:
        org = provision(data_dir, "solo")
        before = now_ms()
        log = {
            "message": "hello", "ddsource": "go", "ddtags": "env:prod", "hostname": "h", "service": "s",
            "level": "warn", "usr": {"id": "u-1"}, "event": {"name": "signup"}, "nested": {"a": [1, 2]},
        }  # fmt: skip
        assert_accepted(post_logs(running, org["keys"]["dd_api_key"], log))
        assert_accepted(post_logs(running, org["keys"]["dd_api_key"], {"no": "message"}))
        after = now_ms()
    finally:
        assert running.stop() == 0
    first, second = stored_events(data_dir)
    assert before <= first["time_ms"] <= after
    assert {k: first[k] for k in ("org_id", "source", "event_name", "type", "application_id", "usr_id",
                                  "account_id", "session_id")} == {
        "org_id": org["org_id"], "source": "logs", "event_name": "signup", "type": "", "application_id": None,
        "usr_id": "u-1", "account_id": None, "session_id": None,
    }  # fmt: skip
    assert first["attributes"] == {
        "message": "hello",
        "hostname": "h",
        "service": "s",
        "level": "warn",
        "nested.a": [1, 2],
        "host": "h",
        "status": "warning",
        "tags": ["env:prod", "source:go"],
    }
    assert (second["event_name"], second["type"]) == ("", "")
    assert second["attributes"] == {"no": "message", "status": "info", "tags": []}


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir, "--max-queued-events", "1000", "--max-queue-wait", "0")
    try:
        org = provision(data_dir, "busy")
        body = json.dumps([{"message": f"line {i}"} for i in range(1000)]).encode()
        headers = {"Content-Type": "application/json", "DD-API-KEY": org["keys"]["dd_api_key"]}
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
            responses = list(
                pool.map(
                    lambda _: client.post(running.url + INTAKE, content=body, headers=headers), range(64)
                )
            )
    finally:
        assert running.stop() == 0
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {202, 503}
    assert 202 in statuses and 503 in statuses, statuses
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert_error(refused, 503, "Too many logs are waiting to be written; retry shortly")
    # Exactly the acknowledged batches were stored: a refusal writes nothing.
    assert len(stored_events(data_dir)) == 1000 * statuses.count(202)
