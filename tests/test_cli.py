"""The `sextant` command, run as users run it: a subprocess per invocation."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from sextant import __version__
from sextant.control.apps import list_apps
from sextant.control.db import open_control
from sextant.control.keys import SCOPES, KeyKind, find_key
from tests.serverproc import sextant

KEY_FORMATS = {
    "dd_api_key": r"[0-9a-f]{32}",
    "dd_app_key": r"[0-9a-f]{40}",
    "dynatrace_token": r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}",
    "posthog_personal_key": r"phx_[A-Za-z0-9]{43}",
    "posthog_project_token": r"phc_[A-Za-z0-9]{43}",
}


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich wraps at the terminal width; a wide one keeps messages and secrets on one line.
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.delenv("SEXTANT_DATA_DIR", raising=False)


def run(data_dir: Path, *args: str, check: bool = True) -> Any:
    return sextant(*args, "--data-dir", str(data_dir), check=check)


def run_json(data_dir: Path, *args: str) -> Any:
    proc = run(data_dir, *args, "--json")
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1, proc.stdout
    return json.loads(proc.stdout)


def fails(data_dir: Path, *args: str) -> str:
    """Run a command that must fail with exit status 1; its stderr, whitespace normalized."""
    proc = run(data_dir, *args, check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return " ".join(proc.stderr.split())


def key_row(data_dir: Path, secret: str) -> Any:
    engine = open_control(data_dir / "control.sqlite3")
    try:
        with engine.connect() as conn:
            return find_key(conn, secret)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A data dir with organization `acme`, created by `orgs create --json`."""
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    proc = sextant("orgs", "create", "acme", "--data-dir", str(data_dir), "--json")
    return data_dir, {"stdout": proc.stdout, "stderr": proc.stderr, "json": json.loads(proc.stdout)}


def test_orgs_create_json_prints_exactly_one_object(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, created = shared
    assert created["stdout"].count("\n") == 1
    assert created["stderr"] == ""
    org = created["json"]
    assert set(org) == {"org_id", "application_id", "posthog_project_id", "keys"}
    assert isinstance(org["org_id"], int)
    assert str(uuid.UUID(org["application_id"])) == org["application_id"]
    assert isinstance(org["posthog_project_id"], int) and not isinstance(org["posthog_project_id"], bool)
    assert set(org["keys"]) == set(KEY_FORMATS)
    for kind, secret in org["keys"].items():
        assert re.fullmatch(KEY_FORMATS[kind], secret), (kind, secret)
        stored = key_row(data_dir, secret)
        assert stored is not None and stored.kind.value == kind and stored.org_id == org["org_id"]
        assert stored.scopes == SCOPES[KeyKind(kind)]


def test_orgs_create_human_output_shows_the_keys_once(tmp_path: Path) -> None:
    proc = run(tmp_path / "data", "orgs", "create", "initech")
    assert "initech" in proc.stdout
    listed = run_json(tmp_path / "data", "keys", "list", "--org", "initech")
    assert len(listed) == len(KEY_FORMATS)
    # Every secret printed belongs to a stored key.
    secrets = re.findall(r"dt0c01\.\w+\.\w+|ph[xc]_\w{43}|\b[0-9a-f]{40}\b|\b[0-9a-f]{32}\b", proc.stdout)
    assert len(secrets) == len(KEY_FORMATS)
    assert all(key_row(tmp_path / "data", s) is not None for s in secrets)


def test_duplicate_org_name_fails(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, _ = shared
    message = fails(data_dir, "orgs", "create", "acme")
    assert "organization 'acme' already exists" in message
    message = fails(data_dir, "orgs", "create", "   ")
    assert "must not be empty" in message


def test_orgs_list(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, created = shared
    orgs = run_json(data_dir, "orgs", "list")
    assert {"id": created["json"]["org_id"], "name": "acme"}.items() <= next(
        o for o in orgs if o["name"] == "acme"
    ).items()
    assert "acme" in run(data_dir, "orgs", "list").stdout


def test_data_dir_from_the_environment(
    shared: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, _ = shared
    monkeypatch.setenv("SEXTANT_DATA_DIR", str(data_dir))
    orgs = json.loads(sextant("orgs", "list", "--json").stdout)
    assert "acme" in [o["name"] for o in orgs]


@pytest.mark.parametrize("kind", sorted(KEY_FORMATS))
def test_keys_create(shared: tuple[Path, dict[str, Any]], kind: str) -> None:
    data_dir, created = shared
    made = run_json(data_dir, "keys", "create", "--org", "acme", "--kind", kind, "--name", f"ci {kind}")
    assert set(made) == {"id", "kind", "scopes", "secret"}
    assert made["kind"] == kind
    assert made["scopes"] == list(SCOPES[KeyKind(kind)])
    assert re.fullmatch(KEY_FORMATS[kind], made["secret"])
    stored = key_row(data_dir, made["secret"])
    assert stored is not None and stored.id == made["id"] and stored.name == f"ci {kind}"
    if kind == "posthog_project_token":
        assert stored.posthog_project_id == created["json"]["posthog_project_id"]


def test_keys_create_with_scopes(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, _ = shared
    made = run_json(
        data_dir, "keys", "create", "--org", "acme", "--kind", "dd_api_key",
        "--scope", "metrics_write", "--scope", "logs_write",
    )  # fmt: skip
    assert made["scopes"] == ["metrics_write", "logs_write"]
    message = fails(
        data_dir, "keys", "create", "--org", "acme", "--kind", "dd_api_key", "--scope", "rum_apps_read"
    )
    assert "unknown scope(s) rum_apps_read for dd_api_key" in message
    assert "events_write" in message  # says what is allowed


def test_keys_create_with_an_unknown_kind_is_a_usage_error(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, _ = shared
    proc = run(data_dir, "keys", "create", "--org", "acme", "--kind", "root", check=False)
    assert proc.returncode == 2
    assert "--kind" in proc.stderr


def test_keys_list_never_shows_secrets(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, created = shared
    extra = run_json(data_dir, "keys", "create", "--org", "acme", "--kind", "dd_app_key")
    secrets = [*created["json"]["keys"].values(), extra["secret"]]
    as_json = run(data_dir, "keys", "list", "--org", "acme", "--json").stdout
    table = run(data_dir, "keys", "list", "--org", "acme").stdout
    listed = json.loads(as_json)
    assert extra["id"] in [k["id"] for k in listed]
    for key in listed:
        assert set(key) == {
            "id", "org_id", "kind", "name", "scopes", "prefix",
            "posthog_project_id", "created_at", "revoked_at",
        }  # fmt: skip
        assert len(key["prefix"]) == 8
    for secret in secrets:
        for shown in (as_json, table):
            assert secret not in shown
            assert hashlib.sha256(secret.encode()).hexdigest() not in shown
    assert extra["id"] in table


def test_keys_revoke(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, _ = shared
    made = run_json(data_dir, "keys", "create", "--org", "acme", "--kind", "dd_api_key")
    proc = run(data_dir, "keys", "revoke", made["id"])
    assert made["id"] in proc.stdout
    stored = key_row(data_dir, made["secret"])
    assert stored is not None and stored.revoked_at is not None
    listed = {k["id"]: k for k in run_json(data_dir, "keys", "list", "--org", "acme")}
    assert listed[made["id"]]["revoked_at"] is not None
    assert "revoked" in run(data_dir, "keys", "list", "--org", "acme").stdout
    assert f"no active key with id {made['id']!r}" in fails(data_dir, "keys", "revoke", made["id"])
    assert "no active key with id 'key_nope'" in fails(data_dir, "keys", "revoke", "key_nope")


def test_keys_kinds_lists_every_kind_and_scope() -> None:
    out = sextant("keys", "kinds").stdout
    for kind, scopes in SCOPES.items():
        assert kind.value in out
        for scope in scopes:
            assert scope in out


def app_states(data_dir: Path, org_id: int) -> dict[str, bool]:
    engine = open_control(data_dir / "control.sqlite3")
    try:
        with engine.connect() as conn:
            return {a.id: a.enabled for a in list_apps(conn, org_id)}
    finally:
        engine.dispose()


def test_apps(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, created = shared
    org_id = created["json"]["org_id"]
    app_id = str(uuid.uuid4())
    app = run_json(data_dir, "apps", "create", "checkout", "--org", "acme", "--id", app_id.upper())
    assert app == {
        "id": app_id,  # canonical lowercase
        "org_id": org_id,
        "name": "checkout",
        "enabled": True,
        "created_at": app["created_at"],
    }
    assert isinstance(app["created_at"], int)
    random_app = run_json(data_dir, "apps", "create", "random", "--org", "acme")
    assert uuid.UUID(random_app["id"]).version == 4
    everything = {created["json"]["application_id"]: True, app_id: True, random_app["id"]: True}
    assert app_states(data_dir, org_id) == everything

    listed = run_json(data_dir, "apps", "list", "--org", "acme")
    assert {a["id"]: a["enabled"] for a in listed} == everything
    assert next(a for a in listed if a["id"] == app_id) == app

    assert app_id in run(data_dir, "apps", "disable", app_id).stdout
    assert app_states(data_dir, org_id) == {**everything, app_id: False}
    table = run(data_dir, "apps", "list", "--org", "acme").stdout
    assert app_id in table and "disabled" in table
    run(data_dir, "apps", "enable", app_id)
    assert app_states(data_dir, org_id) == everything

    missing = str(uuid.uuid4())
    refusals = {
        "is not a UUID": ("apps", "create", "bad", "--org", "acme", "--id", "1234"),
        f"application id {app_id} already exists": (
            "apps",
            "create",
            "again",
            "--org",
            "acme",
            "--id",
            app_id,
        ),
        f"no application with id {missing!r}": ("apps", "disable", missing),
        "no application with id 'nope'": ("apps", "enable", "nope"),
    }
    with ThreadPoolExecutor(4) as pool:
        messages = list(pool.map(lambda args: fails(data_dir, *args), refusals.values()))
    for expected, message in zip(refusals, messages, strict=True):
        assert expected in message
    assert app_states(data_dir, org_id) == everything


@pytest.mark.parametrize(
    "command",
    [
        ("keys", "create", "--kind", "dd_api_key"),
        ("keys", "list"),
        ("apps", "create", "x"),
        ("apps", "list"),
    ],
)
def test_unknown_org_fails_with_a_message(shared: tuple[Path, dict[str, Any]], command: tuple[str]) -> None:
    data_dir, _ = shared
    message = fails(data_dir, *command, "--org", "nosuchorg")
    assert "no organization named 'nosuchorg'" in message


def test_org_can_be_named_by_id(shared: tuple[Path, dict[str, Any]]) -> None:
    data_dir, created = shared
    listed = run_json(data_dir, "apps", "list", "--org", str(created["json"]["org_id"]))
    assert created["json"]["application_id"] in [a["id"] for a in listed]


HELP: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("--version", "serve", "orgs", "keys", "apps"),
    ("serve",): ("--host", "--port", "--data-dir", "--access-log", "--no-access-log", "SEXTANT_PORT"),
    ("orgs",): ("create", "list"),
    ("orgs", "create"): ("Arguments", "name", "--data-dir", "--json"),
    ("orgs", "list"): ("--data-dir", "--json"),
    ("keys",): ("create", "list", "revoke", "kinds"),
    ("keys", "create"): ("--org", "--kind", "--name", "--scope", "--data-dir", "--json", "dd_api_key"),
    ("keys", "list"): ("--org", "--data-dir", "--json"),
    ("keys", "revoke"): ("Arguments", "key_id", "--data-dir"),
    ("keys", "kinds"): ("--help",),
    ("apps",): ("create", "list", "disable", "enable"),
    ("apps", "create"): ("Arguments", "name", "--org", "--id", "--data-dir", "--json"),
    ("apps", "list"): ("--org", "--data-dir", "--json"),
    ("apps", "disable"): ("Arguments", "app_id", "--data-dir"),
    ("apps", "enable"): ("Arguments", "app_id", "--data-dir"),
}


def test_help_of_every_command() -> None:
    with ThreadPoolExecutor(4) as pool:
        results = dict(zip(HELP, pool.map(lambda c: sextant(*c, "--help", check=False), HELP), strict=True))
    for command, proc in results.items():
        assert proc.returncode == 0, (command, proc.stderr)
        assert "Usage:" in proc.stdout, command
        for expected in HELP[command]:
            # Case-insensitive: typer versions differ in how they print argument names.
            assert expected.lower() in proc.stdout.lower(), (command, expected)


def test_version() -> None:
    proc = sextant("--version")
    assert proc.stdout == f"sextant {__version__}\n"
