"""POST /api/v2/metrics/ingest on a real server, sent as Dynatrace's documentation sends it (curl, or
plain HTTP with httpx), read back through GET /api/v2/sextant/metrics/{name}/points."""

from __future__ import annotations

import gzip
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serverproc import RunningServer, provision, sextant, start_server

PATH = "/api/v2/metrics/ingest"
MIB = 1024 * 1024
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
ALL_OK = b'{"linesOk":%d,"linesInvalid":0,"error":null,"warnings":null}'


@pytest.fixture(scope="module")
def org(server: RunningServer) -> dict[str, Any]:
    """An organization of this module's own, so that the documentation's metric keys can be used as is."""
    return provision(server.data_dir, f"dynatrace-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def other_org(server: RunningServer) -> dict[str, Any]:
    return provision(server.data_dir, f"dynatrace-other-{uuid.uuid4().hex[:8]}")


def ingest(
    server: RunningServer,
    token: str | None,
    body: str | bytes,
    *,
    content_type: str | None = "text/plain; charset=utf-8",
    scheme: str = "Api-Token",
    params: dict[str, str] | None = None,
    **extra: str,
) -> httpx.Response:
    headers = dict(extra)
    if content_type is not None:
        headers["Content-Type"] = content_type
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}".strip()
    content = body.encode() if isinstance(body, str) else body
    return httpx.post(server.url + PATH, content=content, headers=headers, params=params, timeout=30)


def token_of(org: dict[str, Any]) -> str:
    token: str = org["keys"]["dynatrace_token"]
    return token


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stored(server: RunningServer, org: dict[str, Any], metric: str, points: int = 1) -> list[dict[str, Any]]:
    """The stored series of `metric`, once at least `points` points are visible (they are within a
    second of the answer)."""
    deadline = time.monotonic() + 5
    now = now_ms()
    while True:
        response = httpx.get(
            f"{server.url}/api/v2/sextant/metrics/{metric}/points",
            params={"from": str(now - 3 * HOUR_MS), "to": str(now + HOUR_MS)},
            headers={
                "DD-API-KEY": org["keys"]["dd_api_key"],
                "DD-APPLICATION-KEY": org["keys"]["dd_app_key"],
            },
            timeout=30,
        )
        assert response.status_code == 200, response.text
        series: list[dict[str, Any]] = response.json()["series"]
        if sum(len(s["points"]) for s in series) >= points or time.monotonic() > deadline:
            return series
        time.sleep(0.1)


def settle(server: RunningServer, org: dict[str, Any]) -> None:
    """Wait until everything the organization sent so far is visible: the writer commits in order, so a
    marker sent now is visible after every earlier point."""
    marker = uuid.uuid4().hex[:12]
    assert_all_ok(ingest(server, token_of(org), f"settle.marker,n={marker} 1"), 1)
    deadline = time.monotonic() + 5
    while ["n:" + marker] not in [s["tags"] for s in stored(server, org, "settle.marker")]:
        assert time.monotonic() < deadline, "the marker never became visible"
        time.sleep(0.05)


def only_point(series: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(series) == 1 and len(series[0]["points"]) == 1, series
    point: dict[str, Any] = series[0]["points"][0]
    return point


def by_tags(series: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    return {tuple(s["tags"]): s["points"] for s in series}


def assert_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """Dynatrace's ErrorEnvelope, exactly: {"error": {"code": status, "message": ...}}."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"], body
    assert body["error"]["code"] == status
    message: str = body["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message
    return message


def assert_all_ok(response: httpx.Response, lines: int) -> None:
    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == ALL_OK % lines


def invalid_lines(response: httpx.Response) -> dict[str, Any]:
    """The ValidationResponse of a payload with invalid lines."""
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["linesOk", "linesInvalid", "error", "warnings"]
    assert body["warnings"] is None
    assert list(body["error"]) == ["code", "message", "invalidLines"]
    assert body["error"]["code"] == 400
    return body


# --- the documentation's examples -------------------------------------------------------------------------


def test_documented_curl_example(server: RunningServer, org: dict[str, Any]) -> None:
    before = now_ms()
    # The command of the POST ingest data points page, with our host and a token of ours.
    proc = subprocess.run(
        [
            "curl",
            "-sS",
            "-L",
            "-X",
            "POST",
            server.url + PATH,
            "-H",
            f"Authorization: Api-Token {token_of(org)}",
            "-H",
            "Content-Type: text/plain",
            "--data-raw",
            "cpu.temperature,dt.entity.host=HOST-06F288EE2A930951,cpu=1 55",
            "-w",
            "\n%{http_code} %{content_type}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    after = now_ms()
    assert proc.stdout == '{"linesOk":1,"linesInvalid":0,"error":null,"warnings":null}\n202 application/json'
    series = stored(server, org, "cpu.temperature")
    assert series[0]["tags"] == ["cpu:1", "dt.entity.host:HOST-06F288EE2A930951"]
    point = only_point(series)
    assert point["kind"] == "gauge" and point["value"] == 55
    assert before <= point["time_ms"] <= after
    assert set(point) == {"time_ms", "kind", "value"}


def test_every_payload_form_is_stored(server: RunningServer, org: dict[str, Any]) -> None:
    ts = now_ms() - 5 * MINUTE_MS
    body = "\n".join(
        [
            "forms.gauge,hostname=hostA,cpu=1 55",
            f"forms.gauge,hostname=hostA,cpu=2 gauge,45 {ts}",
            f"forms.summary,hostname=hostA,cpu=1 gauge,min=17.1,max=17.3,sum=34.4,count=2 {ts}",
            "forms.count,region=EAST count,delta=50",
            f"forms.count,region=WEST count,delta=-150 {ts}",
            'forms.escaped,team="devops\\\\bugfixing",project="\\"product\\"_improvement",'
            "bare=a\\ b\\,c 1000",
        ]
    )
    assert_all_ok(ingest(server, token_of(org), body), 6)

    gauges = by_tags(stored(server, org, "forms.gauge", 2))
    assert gauges[("cpu:1", "hostname:hostA")][0]["value"] == 55
    assert gauges[("cpu:2", "hostname:hostA")] == [{"time_ms": ts, "kind": "gauge", "value": 45.0}]

    summary = only_point(stored(server, org, "forms.summary"))
    assert summary == {"time_ms": ts, "kind": "gauge", "value": 17.2, "count": 2, "min": 17.1, "max": 17.3}

    counts = by_tags(stored(server, org, "forms.count", 2))
    east = counts[("region:EAST",)][0]
    assert (east["kind"], east["value"], east["temporality"], east["monotonic"]) == (
        "count",
        50,
        "delta",
        True,
    )
    west = counts[("region:WEST",)][0]
    assert west == {
        "time_ms": ts,
        "kind": "count",
        "value": -150.0,
        "temporality": "delta",
        "monotonic": False,
    }

    escaped = stored(server, org, "forms.escaped")
    assert escaped[0]["tags"] == ["bare:a b,c", 'project:"product"_improvement', "team:devops\\bugfixing"]


def test_metadata_unit_applies_to_its_metric_in_the_same_payload(
    server: RunningServer, org: dict[str, Any]
) -> None:
    t1, t2 = now_ms() - 2 * MINUTE_MS, now_ms() - MINUTE_MS
    body = "\n".join(
        [
            f"units.a 1 {t1}",
            '#units.a gauge dt.meta.unit=MilliSecond,dt.meta.displayName="Time taken"',
            f"units.a gauge,min=1,max=3,sum=4,count=2 {t2}",
            "#units.a gauge dt.meta.unit=Second",
            "units.c count,delta=3",
            "#units.c count dt.meta.unit=Byte",
            # A count's metadata says nothing of a gauge of the same key.
            "#units.b count dt.meta.unit=Byte",
            "units.b 5",
        ]
    )
    assert_all_ok(ingest(server, token_of(org), body), 8)
    # The first metadata of a metric counts; it applies to its points before and after it.
    assert [p["unit"] for p in stored(server, org, "units.a", 2)[0]["points"]] == [
        "MilliSecond",
        "MilliSecond",
    ]
    assert only_point(stored(server, org, "units.c"))["unit"] == "Byte"
    assert "unit" not in only_point(stored(server, org, "units.b"))

    # A later payload without metadata stores its points without a unit; the metric keeps its known one.
    assert_all_ok(ingest(server, token_of(org), "units.a 7"), 1)
    points = stored(server, org, "units.a", 3)[0]["points"]
    assert [p.get("unit") for p in points] == ["MilliSecond", "MilliSecond", None]
    names = httpx.get(
        f"{server.url}/api/v2/sextant/metrics",
        headers={"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]},
        timeout=30,
    ).json()["data"]
    assert {n["metric"]: n["unit"] for n in names}["units.a"] == "MilliSecond"


def test_a_metadata_line_alone_is_accepted(server: RunningServer, org: dict[str, Any]) -> None:
    assert_all_ok(ingest(server, token_of(org), "#meta.only gauge dt.meta.unit=Percent"), 1)


# --- invalid lines ----------------------------------------------------------------------------------------


def test_partially_invalid_payload_stores_the_valid_lines(server: RunningServer, org: dict[str, Any]) -> None:
    now = now_ms()
    body = "\n".join(
        [
            "partial.ok,a=1 1",
            "partial.bad,Bad=1 2",
            "",
            "# a comment",
            "partial.ok,a=2 3",
            "partial.bad count,7",
            f"partial.old 1 {now - 2 * HOUR_MS}",
            "1partial 4",
        ]
    )
    body_of = invalid_lines(ingest(server, token_of(org), body))
    assert (body_of["linesOk"], body_of["linesInvalid"]) == (2, 4)
    assert body_of["error"]["message"] == "4 invalid lines"
    reported = body_of["error"]["invalidLines"]
    assert [r["line"] for r in reported] == [2, 6, 7, 8]
    assert [r.get("identifier") for r in reported] == [
        "partial.bad",
        "partial.bad",
        "partial.old",
        "1partial",
    ]
    assert "invalid dimension key 'Bad'" in reported[0]["error"]
    assert "write count,delta=7" in reported[1]["error"]
    assert "outside the accepted range" in reported[2]["error"]
    assert "invalid metric key '1partial'" in reported[3]["error"]

    ok = by_tags(stored(server, org, "partial.ok", 2))
    assert [p["value"] for p in ok[("a:1",)]] == [1] and [p["value"] for p in ok[("a:2",)]] == [3]
    assert stored(server, org, "partial.bad", 0) == []
    assert stored(server, org, "partial.old", 0) == []


def test_only_the_first_ten_invalid_lines_are_listed(server: RunningServer, org: dict[str, Any]) -> None:
    body = "\n".join(["many.ok 1"] + [f"many.bad{i} x" for i in range(12)])
    body_of = invalid_lines(ingest(server, token_of(org), body))
    assert (body_of["linesOk"], body_of["linesInvalid"]) == (1, 12)
    assert body_of["error"]["message"] == "First 10 errors reported"
    assert [r["line"] for r in body_of["error"]["invalidLines"]] == list(range(2, 12))
    assert only_point(stored(server, org, "many.ok"))["value"] == 1


def test_a_payload_of_invalid_lines_stores_nothing(server: RunningServer, org: dict[str, Any]) -> None:
    body_of = invalid_lines(ingest(server, token_of(org), "none.stored gauge\nnone.stored count,1"))
    assert (body_of["linesOk"], body_of["linesInvalid"]) == (0, 2)
    settle(server, org)
    assert stored(server, org, "none.stored", 0) == []


def test_timestamps_outside_dynatraces_window_are_refused(server: RunningServer, org: dict[str, Any]) -> None:
    now = now_ms()
    inside = [now - 59 * MINUTE_MS, now + 9 * MINUTE_MS]
    # Each of these is within the store's own window (15 months back, 1 hour ahead), not Dynatrace's.
    outside = [now - 61 * MINUTE_MS, now + 11 * MINUTE_MS, now - 30 * 24 * HOUR_MS, now // 1000]
    body = "\n".join(f"window.ts {i} {ts}" for i, ts in enumerate(inside + outside))
    body_of = invalid_lines(ingest(server, token_of(org), body))
    assert (body_of["linesOk"], body_of["linesInvalid"]) == (2, 4)
    assert [r["line"] for r in body_of["error"]["invalidLines"]] == [3, 4, 5, 6]
    for refused in body_of["error"]["invalidLines"]:
        assert "outside the accepted range: UTC milliseconds between" in refused["error"]
    points = stored(server, org, "window.ts", 2)[0]["points"]
    assert [(p["time_ms"], p["value"]) for p in points] == [(inside[0], 0), (inside[1], 1)]


def test_series_the_store_refuses_are_invalid_lines(server: RunningServer, org: dict[str, Any]) -> None:
    # Dynatrace takes keys and dimension values of up to 250 characters; the store keeps 200 per name and
    # per key:value tag.
    long_key = "k" + "e" * 200
    body = "\n".join(
        [
            f"{long_key} 1",
            "store.tag,d=" + "v" * 220 + " 1",
            "store.tag,d=" + "v" * 251 + " 1",
            "store.tag,d=" + "v" * 198 + " 1",
        ]
    )
    body_of = invalid_lines(ingest(server, token_of(org), body))
    errors = [r["error"] for r in body_of["error"]["invalidLines"]]
    assert body_of["linesOk"] == 1
    assert errors[0] == "metric name is longer than 200 characters"
    assert "is longer than 200 characters" in errors[1] and errors[1].startswith("tag 'd:vvv")
    assert "251 characters long; at most 250" in errors[2]
    assert stored(server, org, "store.tag")[0]["tags"] == ["d:" + "v" * 198]


def test_dimension_and_line_length_limits(server: RunningServer, org: dict[str, Any]) -> None:
    fifty = ",".join(f"d{i:02d}=v" for i in range(50))
    longest = "limits.long 1." + "0" * (50_000 - 14)
    assert len(longest) == 50_000
    body = "\n".join([f"limits.dims,{fifty} 1", f"limits.dims,{fifty},d50=v 2", longest, longest + "1"])
    body_of = invalid_lines(ingest(server, token_of(org), body))
    assert body_of["linesOk"] == 2
    errors = {r["line"]: r["error"] for r in body_of["error"]["invalidLines"]}
    assert "more than 50 dimensions" in errors[2]
    assert "50001 characters long; at most 50000" in errors[4]
    assert len(stored(server, org, "limits.dims")[0]["tags"]) == 50
    assert only_point(stored(server, org, "limits.long"))["value"] == 1


# --- authentication ---------------------------------------------------------------------------------------


def test_missing_token_is_401(server: RunningServer) -> None:
    assert_error(ingest(server, None, "auth.m 1"), 401, "Missing authorization parameter", "Api-Token")
    assert_error(ingest(server, "", "auth.m 1"), 401, "Missing authorization parameter")


def test_wrong_scheme_is_401(server: RunningServer, org: dict[str, Any]) -> None:
    response = ingest(server, token_of(org), "auth.m 1", scheme="Bearer")
    assert_error(response, 401, "Token Authentication failed", "'Bearer'", "Authorization: Api-Token <token>")
    assert_error(ingest(server, "dXNlcjpwYXNz", "auth.m 1", scheme="Basic"), 401, "'Basic'")


def test_unknown_token_is_401(server: RunningServer) -> None:
    fake = "dt0c01." + "A" * 24 + "." + "B" * 64
    assert_error(
        ingest(server, fake, "auth.m 1"), 401, "Token Authentication failed", "unknown or has been revoked"
    )


def _create_token(server: RunningServer, org: dict[str, Any], *scopes: str) -> dict[str, Any]:
    args = ["keys", "create", "--org", str(org["org_id"]), "--kind", "dynatrace_token", "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    created: dict[str, Any] = json.loads(sextant(*args, "--data-dir", str(server.data_dir)).stdout)
    return created


def test_revoked_token_is_401(server: RunningServer, org: dict[str, Any]) -> None:
    created = _create_token(server, org)
    assert_all_ok(ingest(server, created["secret"], "auth.revoked 1"), 1)
    sextant("keys", "revoke", created["id"], "--data-dir", str(server.data_dir))
    assert_error(ingest(server, created["secret"], "auth.revoked 2"), 401, "unknown or has been revoked")
    settle(server, org)
    assert [p["value"] for p in stored(server, org, "auth.revoked")[0]["points"]] == [1]


def test_token_without_the_ingest_scope_is_403(server: RunningServer, org: dict[str, Any]) -> None:
    created = _create_token(server, org, "DataExport", "metrics.read")
    response = ingest(server, created["secret"], "auth.scope 1")
    assert_error(response, 403, "Token is missing required scope. Use one of: metrics.ingest")
    only_ingest = _create_token(server, org, "metrics.ingest")
    assert_all_ok(ingest(server, only_ingest["secret"], "auth.scope 2"), 1)
    settle(server, org)
    assert [p["value"] for p in stored(server, org, "auth.scope")[0]["points"]] == [2]


@pytest.mark.parametrize(
    "kind", ["dd_api_key", "dd_app_key", "posthog_personal_key", "posthog_project_token"]
)
def test_key_of_another_kind_is_401(server: RunningServer, org: dict[str, Any], kind: str) -> None:
    response = ingest(server, org["keys"][kind], "auth.kind 1")
    assert_error(response, 401, f"a {kind} is not a Dynatrace API token")


def test_token_in_the_query_string_and_other_header_forms(server: RunningServer, org: dict[str, Any]) -> None:
    token = token_of(org)
    assert_all_ok(ingest(server, None, "auth.forms 1", params={"api-token": token}), 1)
    assert_all_ok(ingest(server, None, "auth.forms 2", params={"Api-Token": token}), 1)
    assert_all_ok(ingest(server, token, "auth.forms 3", scheme="api-token"), 1)
    # A bare token, as Dynatrace's Timeseries v1 curl example sends it.
    assert_all_ok(ingest(server, token, "auth.forms 4", scheme=""), 1)
    assert_error(ingest(server, None, "auth.forms 5", params={"api-token": "nope"}), 401, "unknown")
    assert sorted(p["value"] for p in stored(server, org, "auth.forms", 4)[0]["points"]) == [1, 2, 3, 4]


# --- bodies -----------------------------------------------------------------------------------------------


def test_empty_request_is_400(server: RunningServer, org: dict[str, Any]) -> None:
    empty = (
        b'{"linesOk":0,"linesInvalid":0,"error":{"code":400,"message":"empty request","invalidLines":[]},'
        b'"warnings":null}'
    )
    for body in (b"", b"\n\n", b"# nothing but a comment\n"):
        response = ingest(server, token_of(org), body)
        assert response.status_code == 400
        assert response.content == empty


def _lines_of_about(size: int) -> bytes:
    line = b"big.payload,pad=" + b"p" * 180 + b" 1\n"
    return line * (size // len(line))


def test_body_over_1_mib_is_413(server: RunningServer, org: dict[str, Any]) -> None:
    body = _lines_of_about(MIB) + b"big.payload 1\n" * 200
    assert len(body) > MIB
    assert_error(ingest(server, token_of(org), body), 413, "the limit is 1048576 bytes")


def test_just_under_1_mib_is_accepted(server: RunningServer, org: dict[str, Any]) -> None:
    body = _lines_of_about(MIB - 1000)
    assert MIB - 2000 < len(body) <= MIB
    lines = body.count(b"\n")
    assert_all_ok(ingest(server, token_of(org), body), lines)
    assert len(stored(server, org, "big.payload", lines)[0]["points"]) == lines


def test_gzip_bodies(server: RunningServer, org: dict[str, Any]) -> None:
    token = token_of(org)
    raw = b"zipped.m,a=1 1\nzipped.m,a=2 2\n"
    assert_all_ok(ingest(server, token, gzip.compress(raw), **{"Content-Encoding": "gzip"}), 2)
    assert len(stored(server, org, "zipped.m", 2)) == 2
    assert_error(ingest(server, token, raw, **{"Content-Encoding": "gzip"}), 400, "not valid gzip")
    assert_error(ingest(server, token, raw, **{"Content-Encoding": "br"}), 415, "'br' is not supported")
    bomb = gzip.compress(b"zipped.m 1\n" * (2 * MIB // 11))
    assert len(bomb) < MIB
    assert_error(ingest(server, token, bomb, **{"Content-Encoding": "gzip"}), 413, "decompressed", "1048576")


def test_content_types_and_charsets(server: RunningServer, org: dict[str, Any]) -> None:
    token = token_of(org)
    latin1 = "charset.m,city=Zürich 1".encode("latin-1")
    assert_all_ok(ingest(server, token, latin1, content_type="text/plain; charset=ISO-8859-1"), 1)
    assert stored(server, org, "charset.m")[0]["tags"] == ["city:Zürich"]
    assert_all_ok(ingest(server, token, "charset.n,city=Zürich 2", content_type="text/plain"), 1)
    assert_all_ok(ingest(server, token, "charset.n,city=Zürich 3", content_type=None), 1)
    assert [p["value"] for p in stored(server, org, "charset.n", 2)[0]["points"]] == [2, 3]
    assert_error(
        ingest(server, token, "charset.o 1", content_type="application/json"),
        415,
        "'application/json' is not supported",
        "text/plain",
    )
    assert_error(
        ingest(server, token, "charset.o 1", content_type="text/plain; charset=utf-16"), 415, "utf-16"
    )
    # Bytes that are not UTF-8 make only their own line invalid.
    body_of = invalid_lines(ingest(server, token, b"charset.p 1\ncharset.p,x=\xff 2\ncharset.p 3"))
    assert body_of["linesOk"] == 2
    assert body_of["error"]["invalidLines"][0]["line"] == 2
    assert "not valid utf-8" in body_of["error"]["invalidLines"][0]["error"]


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", "--max-queued-points", "1000", "--max-queue-wait", "0")
    try:
        busy = provision(running.data_dir, "busy")
        body = "".join(f"busy.m,i={i} {i}\n" for i in range(1000)).encode()
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda _: ingest(running, token_of(busy), body), range(64)))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {202, 503}
        assert 202 in statuses and 503 in statuses, statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["retry-after"] == "1"
        assert_error(refused, 503, "retry shortly")
        # Exactly the acknowledged payloads were stored: a refusal writes nothing.
        expected = 1000 * statuses.count(202)
        series = stored(running, busy, "busy.m", expected)
        assert sum(len(s["points"]) for s in series) == expected
    finally:
        assert running.stop() == 0


# --- tenants and the API description ----------------------------------------------------------------------


def test_tenants_are_isolated(server: RunningServer, org: dict[str, Any], other_org: dict[str, Any]) -> None:
    assert_all_ok(ingest(server, token_of(org), "tenant.m,who=me 1"), 1)
    assert_all_ok(ingest(server, token_of(other_org), "tenant.m,who=other 2"), 1)
    mine, theirs = stored(server, org, "tenant.m"), stored(server, other_org, "tenant.m")
    assert [(s["tags"], s["points"][0]["value"]) for s in mine] == [(["who:me"], 1)]
    assert [(s["tags"], s["points"][0]["value"]) for s in theirs] == [(["who:other"], 2)]


def test_openapi_lists_the_endpoint(server: RunningServer) -> None:
    document = httpx.get(server.url + "/openapi.json", timeout=30).json()
    operation = document["paths"][PATH]["post"]
    assert set(operation["responses"]) >= {"202", "400", "401", "403", "413", "415"}
    assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationResponse"
    }
    assert operation["security"] == [{"Authorization": []}]
    assert set(document["components"]["schemas"]["ValidationResponse"]["properties"]) == {
        "linesOk",
        "linesInvalid",
        "error",
        "warnings",
    }
