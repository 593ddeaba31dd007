"""POST /api/v2/prodlytics on a real server: the seed's curl examples, the official client, every error."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException
from datadog_api_client.v2.api.product_analytics_api import ProductAnalyticsApi
from datadog_api_client.v2.model.product_analytics_server_side_event_item import (
    ProductAnalyticsServerSideEventItem,
)
from datadog_api_client.v2.model.product_analytics_server_side_event_item_account import (
    ProductAnalyticsServerSideEventItemAccount,
)
from datadog_api_client.v2.model.product_analytics_server_side_event_item_application import (
    ProductAnalyticsServerSideEventItemApplication,
)
from datadog_api_client.v2.model.product_analytics_server_side_event_item_event import (
    ProductAnalyticsServerSideEventItemEvent,
)
from datadog_api_client.v2.model.product_analytics_server_side_event_item_session import (
    ProductAnalyticsServerSideEventItemSession,
)
from datadog_api_client.v2.model.product_analytics_server_side_event_item_type import (
    ProductAnalyticsServerSideEventItemType,
)
from datadog_api_client.v2.model.product_analytics_server_side_event_item_usr import (
    ProductAnalyticsServerSideEventItemUsr,
)

from tests.bodies import event
from tests.serverproc import RunningServer, provision, sextant, start_server
from tests.storeread import stored_events

PATH = "/api/v2/prodlytics"
SEED_APP_ID = "123abcde-123a-123b-1234-123456789abc"
SEED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "seeds" / "000_617e2f7da4c1591a.txt"
MIB = 1024 * 1024


def post(server: RunningServer, key: str | None, body: bytes | Any, **headers: str) -> httpx.Response:
    sent = {"Content-Type": "application/json", **headers}
    if key is not None:
        sent["DD-API-KEY"] = key
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(server.url + PATH, content=content, headers=sent, timeout=30)


def assert_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """The response is `status` with exactly one intake error whose detail contains every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["status"] == str(status)
    assert (
        error["title"]
        == {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            413: "Payload Too Large",
            415: "Unsupported Media Type",
            503: "Service Unavailable",
        }[status]
    )
    for fragment in fragments:
        assert fragment in error["detail"], error["detail"]
    detail: str = error["detail"]
    return detail


def assert_accepted(response: httpx.Response) -> None:
    assert response.status_code == 202, response.text
    assert response.content == b"{}"
    assert response.headers["content-type"] == "application/json"


@pytest.fixture(scope="module")
def seed_app(server: RunningServer, acme: dict[str, Any]) -> str:
    """The application id every example of the reference uses, registered to acme."""
    sextant(
        "apps",
        "create",
        "seed examples",
        "--org",
        "acme",
        "--id",
        SEED_APP_ID,
        "--data-dir",
        str(server.data_dir),
    )
    return SEED_APP_ID


# --- the reference's own examples -------------------------------------------------------------------------


def seed_curl_bodies() -> list[str]:
    text = SEED.read_text()
    bodies = re.findall(r'curl -X POST /api/v2/prodlytics".*?<< EOF (.*?) EOF', text)
    assert len(bodies) == 4, "the seed document has four curl examples for /api/v2/prodlytics"
    return bodies


@pytest.mark.parametrize("index", range(4))
def test_seed_curl_examples_are_accepted(
    server: RunningServer, acme: dict[str, Any], seed_app: str, index: int
) -> None:
    body = seed_curl_bodies()[index]
    # The seed's command, with the host filled in: curl reads the body from stdin as `-d @-` does.
    proc = subprocess.run(
        [
            "curl",
            "-sS",
            "-X",
            "POST",
            server.url + PATH,
            "-H",
            "Accept: application/json",
            "-H",
            "Content-Type: application/json",
            "-H",
            f"DD-API-KEY: {acme['keys']['dd_api_key']}",
            "-d",
            "@-",
            "-w",
            "\n%{http_code} %{content_type}",
        ],
        input=body,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert proc.stdout == "{}\n202 application/json"


def _client(server: RunningServer, api_key: str | None) -> Iterator[ProductAnalyticsApi]:
    configuration = Configuration(host=server.url)
    if api_key is not None:
        configuration.api_key["apiKeyAuth"] = api_key
    with ApiClient(configuration) as client:
        yield ProductAnalyticsApi(client)


def client_event(app_id: str, **ids: Any) -> ProductAnalyticsServerSideEventItem:
    kwargs: dict[str, Any] = {}
    if "usr" in ids:
        kwargs["usr"] = ProductAnalyticsServerSideEventItemUsr(id=ids.pop("usr"))
    if "account" in ids:
        kwargs["account"] = ProductAnalyticsServerSideEventItemAccount(id=ids.pop("account"))
    if "session" in ids:
        kwargs["session"] = ProductAnalyticsServerSideEventItemSession(id=ids.pop("session"))
    return ProductAnalyticsServerSideEventItem(
        application=ProductAnalyticsServerSideEventItemApplication(id=app_id),
        event=ProductAnalyticsServerSideEventItemEvent(name="payment.processed"),
        type=ProductAnalyticsServerSideEventItemType.SERVER,
        **kwargs,
        **ids,
    )


def test_official_client_submits(server: RunningServer, acme: dict[str, Any], seed_app: str) -> None:
    for api in _client(server, acme["keys"]["dd_api_key"]):
        body = client_event(
            seed_app,
            usr="user-12345",
            account="account-67890",
            session="session-abcdef",
            customer={"tier": "premium"},
            amount=12.5,
        )
        assert api.submit_product_analytics_event(body=body) == {}


def test_official_client_raises_with_our_error_bodies(
    server: RunningServer, acme: dict[str, Any], seed_app: str
) -> None:
    for api in _client(server, acme["keys"]["dd_api_key"]):
        with pytest.raises(ApiException) as raised:
            api.submit_product_analytics_event(body=client_event(seed_app))
        assert raised.value.status == 400
        detail = raised.value.body["errors"][0]["detail"]
        assert detail == "at least one of usr.id, account.id or session.id is required"
    for api in _client(server, "0" * 32):
        with pytest.raises(ForbiddenException) as forbidden:
            api.submit_product_analytics_event(body=client_event(seed_app, usr="u"))
        assert forbidden.value.body["errors"][0]["status"] == "403"
    for api in _client(server, None):
        with pytest.raises(ApiException) as unauthorized:
            api.submit_product_analytics_event(body=client_event(seed_app, usr="u"))
        assert unauthorized.value.status == 401


# --- authentication ---------------------------------------------------------------------------------------


def test_missing_api_key_is_401(server: RunningServer, acme: dict[str, Any]) -> None:
    assert_error(post(server, None, event(acme["application_id"])), 401, "DD-API-KEY")
    assert_error(post(server, "", event(acme["application_id"])), 401, "DD-API-KEY")


def test_unknown_key_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    assert_error(post(server, "f" * 32, event(acme["application_id"])), 403, "unknown or has been revoked")


@pytest.mark.parametrize(
    "kind", ["dd_app_key", "dynatrace_token", "posthog_personal_key", "posthog_project_token"]
)
def test_key_of_another_kind_is_403(server: RunningServer, acme: dict[str, Any], kind: str) -> None:
    assert_error(post(server, acme["keys"][kind], event(acme["application_id"])), 403, kind)


def test_revoked_key_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    created = json.loads(
        sextant(
            "keys",
            "create",
            "--org",
            "acme",
            "--kind",
            "dd_api_key",
            "--json",
            "--data-dir",
            str(server.data_dir),
        ).stdout
    )
    assert_accepted(post(server, created["secret"], event(acme["application_id"])))
    sextant("keys", "revoke", created["id"], "--data-dir", str(server.data_dir))
    assert_error(post(server, created["secret"], event(acme["application_id"])), 403, "revoked")


def test_key_without_the_events_scope_is_403(server: RunningServer, acme: dict[str, Any]) -> None:
    created = json.loads(
        sextant(
            "keys",
            "create",
            "--org",
            "acme",
            "--kind",
            "dd_api_key",
            "--scope",
            "metrics_write",
            "--json",
            "--data-dir",
            str(server.data_dir),
        ).stdout
    )
    assert_error(post(server, created["secret"], event(acme["application_id"])), 403, "events_write")


# --- validation -------------------------------------------------------------------------------------------


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


INVALID: list[tuple[str, Any, str]] = [
    ("not json", b'{"application": ', "Malformed payload: body is not valid JSON"),
    ("json string", b'"hello"', "body must be a JSON object or an array of objects"),
    ("json number", b"42", "body must be a JSON object or an array of objects"),
    ("empty body", b"", "not valid JSON"),
    ("empty batch", b"[]", "empty array"),
    ("missing application", lambda app: _without(event(app), "application"), "application.id is required"),
    (
        "missing application.id",
        lambda app: _without(event(app), "application", "id"),
        "application.id is required",
    ),
    ("application not object", lambda app: event(app, application="x"), "application must be an object"),
    (
        "application.id not string",
        lambda app: event(app, application={"id": 7}),
        "application.id must be a non-empty string",
    ),
    ("missing event", lambda app: _without(event(app), "event"), "event.name is required"),
    ("missing event.name", lambda app: _without(event(app), "event", "name"), "event.name is required"),
    (
        "event.name not string",
        lambda app: event(app, event={"name": ["x"]}),
        "event.name must be a non-empty string",
    ),
    ("event.name empty", lambda app: event(app, event={"name": ""}), "event.name must be a non-empty string"),
    ("missing type", lambda app: _without(event(app), "type"), 'type is required and must be "server"'),
    (
        "type view",
        lambda app: event(app, type="view"),
        'type must be "server" for server-side events, not "view"',
    ),
    ("no ids", lambda app: _without(event(app), "usr"), "at least one of usr.id, account.id or session.id"),
    ("usr.id number", lambda app: event(app, usr={"id": 123}), "usr.id must be a non-empty string"),
    ("account.id null", lambda app: event(app, account={"id": None}), "account.id is required"),
    ("session without id", lambda app: event(app, session={}), "session.id is required"),
    ("usr not object", lambda app: event(app, usr="u1"), "usr must be an object"),
    ("app unknown", lambda app: event("00000000-0000-4000-8000-000000000000"), "is not a known application"),
    ("app not a uuid", lambda app: event("my-app"), "'my-app' is not a known application"),
    ("date float", lambda app: event(app, date=1.5), "date must be an integer"),
    ("date string", lambda app: event(app, date="2026-01-01"), "date must be an integer"),
    (
        "date too old",
        lambda app: event(app, date=int(time.time() * 1000) - 460 * 86_400_000),
        "more than 15 months in the past",
    ),
    (
        "date in the future",
        lambda app: event(app, date=int(time.time() * 1000) + 2 * 3_600_000),
        "more than 1 hour in the future",
    ),
    ("too deep", lambda app: event(app, deep=_nested(40)), "nested deeper than 32 levels"),
    (
        "far too deep",
        lambda app: (
            json.dumps(event(app)).replace('"server"', '"server", "x": ' + "[" * 5000 + "]" * 5000).encode()
        ),
        "nested deeper than 32 levels",
    ),
]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize(("case", "body", "detail"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_event_is_400(
    server: RunningServer, acme: dict[str, Any], case: str, body: Any, detail: str
) -> None:
    payload = body(acme["application_id"]) if callable(body) else body
    assert_error(post(server, acme["keys"]["dd_api_key"], payload), 400, detail)


def test_depth_at_the_limit_is_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    # The event object is level 1, so 30 more wrappers plus the leaf object make exactly 32 levels.
    assert_accepted(post(server, acme["keys"]["dd_api_key"], event(acme["application_id"], deep=_nested(30))))


def test_date_inside_the_window_is_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    now = int(time.time() * 1000)
    for date in (now - 400 * 86_400_000, now + 30 * 60_000):
        assert_accepted(post(server, acme["keys"]["dd_api_key"], event(acme["application_id"], date=date)))


def test_batch_error_names_the_index_and_nothing_is_kept(server: RunningServer, acme: dict[str, Any]) -> None:
    app = acme["application_id"]
    batch = [event(app), event(app), _without(event(app), "event", "name")]
    assert_error(post(server, acme["keys"]["dd_api_key"], batch), 400, "event[2]: event.name is required")
    assert_error(
        post(server, acme["keys"]["dd_api_key"], [event(app), "x"]), 400, "event[1]: must be a JSON object"
    )


def test_application_of_another_organization_is_400(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    response = post(server, globex["keys"]["dd_api_key"], event(acme["application_id"]))
    assert_error(response, 400, acme["application_id"], "belongs to another organization")


def test_disabled_application_is_400(server: RunningServer, acme: dict[str, Any]) -> None:
    created = json.loads(
        sextant(
            "apps", "create", "soon disabled", "--org", "acme", "--json", "--data-dir", str(server.data_dir)
        ).stdout
    )
    assert_accepted(post(server, acme["keys"]["dd_api_key"], event(created["id"])))
    sextant("apps", "disable", created["id"], "--data-dir", str(server.data_dir))
    assert_error(
        post(server, acme["keys"]["dd_api_key"], event(created["id"])), 400, created["id"], "disabled"
    )


# --- encodings and size limits ----------------------------------------------------------------------------


def test_gzip_and_deflate_bodies(server: RunningServer, acme: dict[str, Any]) -> None:
    raw = json.dumps([event(acme["application_id"]), event(acme["application_id"])]).encode()
    key = acme["keys"]["dd_api_key"]
    assert_accepted(post(server, key, gzip.compress(raw), **{"Content-Encoding": "gzip"}))
    assert_accepted(post(server, key, zlib.compress(raw), **{"Content-Encoding": "deflate"}))
    raw_deflate = zlib.compressobj(wbits=-15)
    assert_accepted(
        post(server, key, raw_deflate.compress(raw) + raw_deflate.flush(), **{"Content-Encoding": "deflate"})
    )


def test_bad_encodings(server: RunningServer, acme: dict[str, Any]) -> None:
    key = acme["keys"]["dd_api_key"]
    raw = json.dumps(event(acme["application_id"])).encode()
    assert_error(post(server, key, raw, **{"Content-Encoding": "gzip"}), 400, "not valid gzip")
    assert_error(
        post(server, key, gzip.compress(raw)[:-12], **{"Content-Encoding": "gzip"}), 400, "truncated gzip"
    )
    assert_error(post(server, key, raw, **{"Content-Encoding": "br"}), 415, "'br' is not supported")


def _big_batch(app_id: str, size: int) -> bytes:
    """A valid batch of about `size` bytes."""
    one = event(app_id, padding="x" * 1000)
    count = size // len(json.dumps(one)) + 1
    return json.dumps([one] * count).encode()


def test_body_over_5mb_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    body = _big_batch(acme["application_id"], 5 * MIB + 1)
    assert len(body) > 5 * MIB
    assert_error(post(server, acme["keys"]["dd_api_key"], body), 413, "the limit is 5242880 bytes")


def test_just_under_5mb_is_accepted(server: RunningServer, acme: dict[str, Any]) -> None:
    body = _big_batch(acme["application_id"], 4 * MIB)
    assert 4 * MIB < len(body) < 5 * MIB
    assert_accepted(post(server, acme["keys"]["dd_api_key"], body))


def test_decompressed_over_5mb_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    body = gzip.compress(_big_batch(acme["application_id"], 6 * MIB))
    assert len(body) < MIB
    detail = assert_error(post(server, acme["keys"]["dd_api_key"], body, **{"Content-Encoding": "gzip"}), 413)
    assert "decompressed request body is larger than allowed; the limit is 5242880 bytes" in detail


def test_gzip_bomb_is_413(server: RunningServer, acme: dict[str, Any]) -> None:
    bomb = gzip.compress(b"[" + b" " * (200 * MIB) + b"]", compresslevel=9)
    assert_error(
        post(server, acme["keys"]["dd_api_key"], bomb, **{"Content-Encoding": "gzip"}), 413, "decompressed"
    )


# --- what is stored ---------------------------------------------------------------------------------------


def test_stored_events_keep_every_field_flattened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    running = start_server(data_dir)
    try:
        org = provision(data_dir, "solo")
        other = provision(data_dir, "other")
        app, key = org["application_id"], org["keys"]["dd_api_key"]
        before = int(time.time() * 1000)
        first = event(
            app,
            customer={"tier": "premium", "seats": 12},
            amount=12.5,
            beta=True,
            gone=None,
            items=[{"sku": "a"}, {"sku": "b"}],
            tags=["x", "y"],
            account={"id": "acct-1"},
            usr={"id": "user-1", "email": "u@example.com"},
        )
        dated = event(app, date=before - 86_400_000, session={"id": "s-1"})
        assert_accepted(post(running, key, first))
        assert_accepted(
            post(running, key, gzip.compress(json.dumps([dated]).encode()), **{"Content-Encoding": "gzip"})
        )
        # Another organization's event never lands in this one.
        assert_accepted(post(running, other["keys"]["dd_api_key"], event(other["application_id"])))
        after = int(time.time() * 1000)
    finally:
        assert running.stop() == 0
    rows = stored_events(data_dir)
    assert len(rows) == 3
    mine = [r for r in rows if r["org_id"] == org["org_id"]]
    theirs = [r for r in rows if r["org_id"] == other["org_id"]]
    assert len(mine) == 2 and len(theirs) == 1
    assert theirs[0]["application_id"] == other["application_id"]
    stored, stored_dated = mine
    assert before <= stored["time_ms"] <= after
    assert {
        k: stored[k]
        for k in ("source", "event_name", "type", "application_id", "usr_id", "account_id", "session_id")
    } == {
        "source": "product_analytics",
        "event_name": "payment.processed",
        "type": "server",
        "application_id": app,
        "usr_id": "user-1",
        "account_id": "acct-1",
        "session_id": None,
    }
    assert stored["attributes"] == {
        "customer.tier": "premium",
        "customer.seats": 12,
        "amount": 12.5,
        "beta": True,
        "gone": None,
        "items.sku": ["a", "b"],
        "tags": ["x", "y"],
        "usr.email": "u@example.com",
    }
    assert stored_dated["time_ms"] == before - 86_400_000
    assert stored_dated["session_id"] == "s-1"
    assert stored_dated["attributes"] == {"date": before - 86_400_000}


def burst(data_dir: Path, *flags: str) -> list[httpx.Response]:
    """64 batches of 1000 events from 16 connections at once, to a server whose queue holds 1000."""
    running = start_server(data_dir, "--max-queued-events", "1000", *flags)
    try:
        org = provision(data_dir, "busy")
        body = json.dumps([event(org["application_id"], n=i) for i in range(1000)]).encode()
        headers = {"Content-Type": "application/json", "DD-API-KEY": org["keys"]["dd_api_key"]}
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(16) as pool:
            return list(
                pool.map(lambda _: client.post(running.url + PATH, content=body, headers=headers), range(64))
            )
    finally:
        assert running.stop() == 0


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    responses = burst(data_dir, "--max-queue-wait", "0")
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {202, 503}
    assert 202 in statuses and 503 in statuses, statuses
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert_error(refused, 503, "retry shortly")
    # Exactly the acknowledged batches were stored: a refusal writes nothing.
    assert len(stored_events(data_dir)) == 1000 * statuses.count(202)


def test_a_burst_waits_for_room_in_the_queue_rather_than_being_refused(tmp_path: Path) -> None:
    # By default a request waits (up to --max-queue-wait seconds) while the store makes room: a burst
    # the store can absorb is slowed down, not refused.
    data_dir = tmp_path / "data"
    statuses = [r.status_code for r in burst(data_dir, "--max-queue-wait", "30")]
    assert statuses == [202] * 64
    assert len(stored_events(data_dir)) == 64_000
