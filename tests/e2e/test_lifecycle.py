"""The server's life: first start, administration while it runs, clean stops, crashes, system endpoints."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bodies import event
from tests.serverproc import RunningServer, provision, sextant, start_server
from tests.storeread import stored_events

PATH = "/api/v2/prodlytics"
ORG_JSON_KEYS = {"org_id", "application_id", "posthog_project_id", "keys"}
KEY_KINDS = {"dd_api_key", "dd_app_key", "dynatrace_token", "posthog_personal_key", "posthog_project_token"}


def post(url: str, key: str, body: Any, client: httpx.Client | None = None) -> httpx.Response:
    headers = {"DD-API-KEY": key, "Content-Type": "application/json"}
    if client is None:
        return httpx.post(url + PATH, json=body, headers=headers, timeout=30)
    return client.post(url + PATH, json=body, headers=headers)


def assert_accepted(response: httpx.Response) -> None:
    assert response.status_code == 202, response.text
    assert response.content == b"{}"


@pytest.fixture
def launch() -> Iterator[Callable[..., RunningServer]]:
    """Start servers; any still running when the test ends is killed."""
    started: list[RunningServer] = []

    def _launch(data_dir: Path, *extra: str) -> RunningServer:
        server = start_server(data_dir, *extra)
        started.append(server)
        return server

    yield _launch
    for server in started:
        if server.proc.poll() is None:
            server.kill()


def credentials(data_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((data_dir / "credentials.json").read_text())
    return result


# a. First start


def printed_credentials(stdout: str) -> dict[str, Any]:
    """The JSON object printed after "Created organization 'default'"."""
    start = stdout.index("Created organization 'default'")
    value, _ = json.JSONDecoder().raw_decode(stdout, stdout.index("{", start))
    assert isinstance(value, dict)
    return value


def test_first_start_prints_and_saves_the_default_keys_once(
    launch: Callable[..., RunningServer], data_dir: Path
) -> None:
    first = launch(data_dir)
    path = data_dir / "credentials.json"
    saved = credentials(data_dir)
    shown = printed_credentials(first.output())
    assert shown == saved
    assert set(saved) == ORG_JSON_KEYS
    assert set(saved["keys"]) == KEY_KINDS
    assert isinstance(saved["org_id"], int) and isinstance(saved["posthog_project_id"], int)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for secret in saved["keys"].values():
        assert first.output().count(secret) == 1
    # Same shape as `sextant orgs create --json`.
    other = provision(data_dir, "second")
    assert set(other) == set(saved) and set(other["keys"]) == set(saved["keys"])
    assert_accepted(post(first.url, saved["keys"]["dd_api_key"], event(saved["application_id"])))
    assert first.stop() == 0, first.errors()
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    second = launch(data_dir)
    assert_accepted(post(second.url, saved["keys"]["dd_api_key"], event(saved["application_id"])))
    assert second.stop() == 0, second.errors()
    assert "Created organization" not in second.output()
    assert "Sextant listening on" in second.output()
    for secret in saved["keys"].values():
        assert secret not in second.output()
        assert secret not in first.errors() + second.errors()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(stored_events(data_dir)) == 2


# b. The CLI administers a running server


def test_cli_changes_take_effect_on_the_next_request(server: RunningServer) -> None:
    org = provision(server.data_dir, "lifecycle-admin")
    data_dir = str(server.data_dir)
    key, app_id = org["keys"]["dd_api_key"], org["application_id"]
    assert_accepted(post(server.url, key, event(app_id)))

    listed = json.loads(
        sextant("keys", "list", "--org", "lifecycle-admin", "--data-dir", data_dir, "--json").stdout
    )
    (key_id,) = [k["id"] for k in listed if k["kind"] == "dd_api_key"]
    sextant("keys", "revoke", key_id, "--data-dir", data_dir)
    refused = post(server.url, key, event(app_id))
    assert refused.status_code == 403, refused.text
    assert "revoked" in refused.json()["errors"][0]["detail"]

    made = sextant(
        "keys", "create", "--org", "lifecycle-admin", "--kind", "dd_api_key", "--data-dir", data_dir, "--json"
    )  # fmt: skip
    new_key = json.loads(made.stdout)["secret"]
    assert_accepted(post(server.url, new_key, event(app_id)))

    sextant("apps", "disable", app_id, "--data-dir", data_dir)
    disabled = post(server.url, new_key, event(app_id))
    assert disabled.status_code == 400, disabled.text
    detail = disabled.json()["errors"][0]["detail"]
    assert app_id in detail and "disabled" in detail

    sextant("apps", "enable", app_id, "--data-dir", data_dir)
    assert_accepted(post(server.url, new_key, event(app_id)))

    new_app = str(json.loads(
        sextant("apps", "create", "late", "--org", "lifecycle-admin", "--data-dir", data_dir, "--json").stdout
    )["id"])  # fmt: skip
    assert_accepted(post(server.url, new_key, event(new_app)))


# c, d. Durability: concurrent clients, stops and crashes


@dataclass
class Load:
    """Client threads sending single events and small batches, each event with a unique `seq`."""

    url: str
    key: str
    app_id: str
    label: str
    threads: int = 6
    attempted: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
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

    def wait_for(self, acknowledged: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < acknowledged:
            assert time.monotonic() < deadline, (
                f"only {len(self.acknowledged)} events acknowledged; statuses {dict(self.statuses)}, "
                f"{self.transport_errors} transport errors"
            )
            time.sleep(0.02)

    def _run(self, worker: int) -> None:
        counter = 0
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                size = 1 if counter % 3 else 1 + counter % 5
                seqs = [f"{self.label}-{worker}-{counter + i}" for i in range(size)]
                counter += size
                events = [event(self.app_id, seq=s, worker=worker) for s in seqs]
                body: Any = events[0] if size == 1 else events
                with self._lock:
                    self.attempted.update(seqs)
                try:
                    response = post(self.url, self.key, body, client)
                except httpx.HTTPError:
                    with self._lock:
                        self.transport_errors += 1
                    time.sleep(0.01)
                    continue
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 202 and response.content == b"{}":
                        self.acknowledged.update(seqs)


def stored_seqs(data_dir: Path) -> tuple[Counter[str], list[dict[str, Any]]]:
    events = stored_events(data_dir)
    return Counter(e["attributes"]["seq"] for e in events if "seq" in e["attributes"]), events


def test_sigterm_commits_every_acknowledged_event(
    launch: Callable[..., RunningServer], data_dir: Path
) -> None:
    server = launch(data_dir)
    creds = credentials(data_dir)
    load = Load(server.url, creds["keys"]["dd_api_key"], creds["application_id"], "term").start()
    try:
        load.wait_for(300)
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=60)
    finally:
        load.stop()
    assert code == 0, server.errors()
    assert "every acknowledged write is on disk" in server.errors()
    # Only acknowledgements and "shutting down" refusals: never an error.
    assert set(load.statuses) <= {202, 503}, load.statuses
    seqs, events = stored_seqs(data_dir)
    assert load.acknowledged <= set(seqs), f"{len(load.acknowledged - set(seqs))} acknowledged events lost"
    assert set(seqs) <= load.attempted
    assert max(seqs.values()) == 1
    sample = next(e for e in events if e["attributes"].get("seq") in load.acknowledged)
    assert sample["event_name"] == "payment.processed" and sample["usr_id"] == "user-1"
    assert sample["application_id"] == creds["application_id"] and sample["org_id"] == creds["org_id"]


def test_sigkill_loses_no_acknowledged_event_and_duplicates_none(
    launch: Callable[..., RunningServer], data_dir: Path
) -> None:
    server = launch(data_dir)
    creds = credentials(data_dir)
    loads: list[Load] = []
    for round_ in range(3):
        load = Load(server.url, creds["keys"]["dd_api_key"], creds["application_id"], f"kill{round_}")
        loads.append(load.start())
        try:
            load.wait_for(200)
            time.sleep(0.5)
            server.kill()
        finally:
            load.stop()
        assert server.proc.returncode == -signal.SIGKILL
        assert set(load.statuses) == {202}, load.statuses
        # Restart on the same data dir: DuckDB replays its WAL.
        server = launch(data_dir)
    assert server.stop() == 0, server.errors()

    seqs, events = stored_seqs(data_dir)
    acknowledged = set().union(*(load.acknowledged for load in loads))
    attempted = set().union(*(load.attempted for load in loads))
    assert len(acknowledged) >= 600
    lost = acknowledged - set(seqs)
    assert not lost, f"{len(lost)} acknowledged events lost, e.g. {sorted(lost)[:5]}"
    duplicated = [s for s, n in seqs.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} events stored twice, e.g. {duplicated[:5]}"
    assert set(seqs) <= attempted
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))


# e. System endpoints, OpenAPI, request ids and access logs


def test_health_and_ready(server: RunningServer) -> None:
    for path in ("/health", "/ready"):
        response = httpx.get(server.url + path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json()["status"] == "ok"


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_documents_every_route(server: RunningServer) -> None:
    response = httpx.get(server.url + "/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    routes = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert {(PATH, "post"), ("/health", "get"), ("/ready", "get"), ("/openapi.json", "get")} <= routes

    intake = doc["paths"][PATH]["post"]
    request_schema = intake["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema == {"$ref": "#/components/schemas/ServerSideEvent"}
    event_schema = doc["components"]["schemas"]["ServerSideEvent"]
    assert {"application", "event", "type"} <= set(event_schema["required"])
    assert {"202", "400", "401", "403", "413", "415"} <= set(intake["responses"])
    assert intake["security"] == [{"DD-API-KEY": []}]
    assert doc["components"]["securitySchemes"]["DD-API-KEY"]["in"] == "header"
    # Paths are OpenAPI templates: the router's convertors (`{id:path}`) are not part of them.
    assert not [path for path in doc["paths"] if re.search(r"\{\w+:", path)]
    assert "/api/v1/timeseries/{timeseriesIdentifier}" in doc["paths"]
    # Every reference resolves.
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref

    # Every documented route is served (the router does not answer 404 or 405 for it), and methods
    # it does not document are refused with 405.
    def unrouted(response: httpx.Response) -> bool:
        # The router's own 404 is plain text; a handler's "no such segment" 404 is the API's JSON.
        return response.status_code == 405 or (
            response.status_code == 404 and response.headers["content-type"].startswith("text/plain")
        )

    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert unrouted(client.get("/no/such/route"))
        for path, ops in doc["paths"].items():
            concrete = re.sub(r"\{[^}]+\}", "no-such-id", path)
            for method in ops:
                answered = client.request(method.upper(), concrete)
                assert not unrouted(answered), (path, method, answered.status_code, answered.text)
            for other in {"put", "patch", "delete"} - set(ops):
                assert client.request(other.upper(), concrete).status_code == 405, (path, other)


@pytest.fixture(scope="module")
def own_org(server: RunningServer) -> dict[str, Any]:
    """An organization of this module's own on the shared server, so other tests' data stay as they expect."""
    return provision(server.data_dir, "lifecycle-requests")


def test_every_response_carries_a_request_id(server: RunningServer, own_org: dict[str, Any]) -> None:
    key, app_id = own_org["keys"]["dd_api_key"], own_org["application_id"]
    with httpx.Client(base_url=server.url, timeout=30) as client:
        responses = [
            client.get("/health"),
            client.get("/ready"),
            client.get("/openapi.json"),
            client.get("/nowhere"),
            client.get(PATH),
            client.post(PATH, json=event(app_id), headers={"DD-API-KEY": key}),
            client.post(PATH, json=event(app_id)),
            client.post(PATH, json=event(app_id), headers={"DD-API-KEY": "0" * 32}),
            client.post(PATH, content=b"{not json", headers={"DD-API-KEY": key}),
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 405, 202, 401, 403, 400]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(re.fullmatch(r"[0-9a-f]{16}", rid) for rid in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("rid", ["abc-123", "trace:5f2b.AZ_9", "x" * 128])
def test_a_sane_incoming_request_id_is_echoed(server: RunningServer, rid: str) -> None:
    response = httpx.get(server.url + "/health", headers={"X-Request-Id": rid})
    assert response.headers["x-request-id"] == rid
    assert response.headers.get_list("x-request-id") == [rid]


@pytest.mark.parametrize("rid", ["has space", "x" * 129, "semi;colon", 'quote"d', ""])
def test_an_unsafe_incoming_request_id_is_replaced(server: RunningServer, rid: str) -> None:
    response = httpx.get(server.url + "/health", headers={"X-Request-Id": rid})
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])


def test_access_log_line_carries_the_request_id(
    launch: Callable[..., RunningServer], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in production, where stdout is a pipe or a file and Python buffers it unless told otherwise.
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    server = launch(data_dir)
    creds = credentials(data_dir)
    rid = "lifecycle-log-" + os.urandom(4).hex()
    response = post_with_id(server.url, creds["keys"]["dd_api_key"], event(creds["application_id"]), rid)
    assert_accepted(response)
    assert response.headers["x-request-id"] == rid

    def logged() -> dict[str, Any] | None:
        for line in server.output().splitlines():
            if rid in line:
                record: dict[str, Any] = json.loads(line)
                return record
        return None

    # The line is written at once, while the server runs.
    deadline = time.monotonic() + 10
    while (record := logged()) is None:
        assert time.monotonic() < deadline, f"no access log line for {rid}:\n{server.output()}"
        time.sleep(0.05)
    assert record["request_id"] == rid
    assert record["method"] == "POST" and record["path"] == PATH and record["status"] == 202
    assert isinstance(record["duration_ms"], float | int)
    assert server.stop() == 0, server.errors()


def post_with_id(url: str, key: str, body: Any, rid: str) -> httpx.Response:
    headers = {"DD-API-KEY": key, "X-Request-Id": rid}
    return httpx.post(url + PATH, json=body, headers=headers, timeout=30)


def test_no_access_log(launch: Callable[..., RunningServer], data_dir: Path) -> None:
    server = launch(data_dir, "--no-access-log")
    rid = "quiet-" + os.urandom(4).hex()
    assert httpx.get(server.url + "/health", headers={"X-Request-Id": rid}).headers["x-request-id"] == rid
    assert server.stop() == 0
    assert rid not in server.output()
