"""The control plane: migrations, hashed keys in vendor formats, applications, and the cached Directory."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sextant.control import schema
from sextant.control.apps import create_app, get_app, list_apps, normalize_app_id, set_app_enabled
from sextant.control.db import open_control
from sextant.control.directory import Directory, _map_wal_index
from sextant.control.keys import (
    SCOPES,
    KeyKind,
    create_key,
    find_key,
    generate_key,
    hash_key,
    list_keys,
    revoke_key,
    validate_scopes,
)
from sextant.control.migrations import MIGRATIONS
from sextant.control.orgs import OrgNotFound, create_org, find_org, provision_org
from tests.serverproc import sextant

# Migrations

ALL_VERSIONS = [version for version, _ in MIGRATIONS]


def _versions(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT version FROM schema_migrations ORDER BY 1")]


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_open_control_on_a_fresh_path_migrates(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "control.sqlite3"
    engine = open_control(path)
    assert path.exists()
    assert _versions(engine) == ALL_VERSIONS
    assert ALL_VERSIONS[0] == 1
    assert {"schema_migrations", "orgs", "posthog_projects", "keys", "applications"} <= _tables(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_all_scope_personal_keys_get_the_metrics_scopes_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite3"
    engine = open_control(path)
    provision_org(engine, "acme")
    with engine.begin() as conn:
        org_id = find_org(conn, "acme").id
        create_key(conn, org_id=org_id, kind=KeyKind.POSTHOG_PERSONAL_KEY, name="n", scopes=("query:read",))
    engine.dispose()
    # The database as version 5 left it: all-scope personal keys had only the two scopes of then.
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM schema_migrations WHERE version = 6")
        db.execute(
            "UPDATE keys SET scopes = ? WHERE kind = 'posthog_personal_key' AND name != 'n'",
            [json.dumps(["query:read", "project:read"])],
        )
    engine = open_control(path)
    with engine.connect() as conn:
        scopes = {k.name: k.scopes for k in list_keys(conn, org_id) if k.kind is KeyKind.POSTHOG_PERSONAL_KEY}
    engine.dispose()
    assert scopes.pop("n") == ("query:read",)
    assert list(scopes.values()) == [("query:read", "project:read", "metrics:read", "metrics:write")]


def test_reopening_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "control.sqlite3"
    first = open_control(path)
    provisioned = provision_org(first, "acme")
    first.dispose()
    for _ in range(3):
        again = open_control(path)
        assert _versions(again) == ALL_VERSIONS
        with again.connect() as conn:
            assert find_org(conn, "acme").id == provisioned.org_id
            assert len(list_keys(conn, provisioned.org_id)) == len(KeyKind)
        again.dispose()


def _open_after_barrier(path: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=30)
        engine = open_control(Path(path))
        results.put(("ok", _versions(engine)))
    except BaseException as exc:
        results.put(("error", repr(exc)))
        raise


def test_concurrent_first_opens_of_the_same_file_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    processes = 6
    for attempt in range(8):
        path = tmp_path / f"race-{attempt}" / "control.sqlite3"
        barrier = ctx.Barrier(processes)
        results = ctx.Queue()
        workers = [
            ctx.Process(target=_open_after_barrier, args=(str(path), barrier, results))
            for _ in range(processes)
        ]
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        assert outcomes == [("ok", ALL_VERSIONS)] * processes
        assert [w.exitcode for w in workers] == [0] * processes
        engine = open_control(path)
        assert _versions(engine) == ALL_VERSIONS
        engine.dispose()


def test_open_control_waits_for_another_connection_writing_the_fresh_file(tmp_path: Path) -> None:
    # What a concurrent first open looks like from the second process: the file exists, still in
    # rollback-journal mode, and another connection holds its write lock for a moment.
    path = tmp_path / "control.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE unrelated (x INTEGER)")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    release.start()
    try:
        started = time.monotonic()
        engine = open_control(path)
        waited = time.monotonic() - started
    finally:
        release.join()
        holder.close()
    assert waited >= 0.2
    assert _versions(engine) == ALL_VERSIONS
    assert "unrelated" in _tables(engine)
    engine.dispose()


# Keys


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = open_control(tmp_path / "data" / "control.sqlite3")
    yield eng
    eng.dispose()


@pytest.fixture
def org_id(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        return create_org(conn, "acme").id


KEY_FORMATS = {
    KeyKind.DD_API_KEY: re.compile(r"[0-9a-f]{32}"),
    KeyKind.DD_APP_KEY: re.compile(r"[0-9a-f]{40}"),
    KeyKind.DYNATRACE_TOKEN: re.compile(r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"),
    KeyKind.POSTHOG_PERSONAL_KEY: re.compile(r"phx_[A-Za-z0-9]{43}"),
    KeyKind.POSTHOG_PROJECT_TOKEN: re.compile(r"phc_[A-Za-z0-9]{43}"),
}


@pytest.mark.parametrize("kind", list(KeyKind))
def test_generated_keys_have_the_vendor_format(kind: KeyKind) -> None:
    generated = {generate_key(kind) for _ in range(50)}
    assert len(generated) == 50
    for raw in generated:
        assert KEY_FORMATS[kind].fullmatch(raw), raw


def test_every_kind_has_a_format() -> None:
    assert set(KEY_FORMATS) == set(KeyKind) == set(SCOPES)


def _control_files(engine: sa.Engine) -> bytes:
    database = engine.url.database
    assert database is not None
    path = Path(database)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.mark.parametrize("kind", list(KeyKind))
def test_keys_are_stored_hashed(engine: sa.Engine, org_id: int, kind: KeyKind) -> None:
    with engine.begin() as conn:
        record, raw = create_key(conn, org_id=org_id, kind=kind, name="k")
    assert KEY_FORMATS[kind].fullmatch(raw)
    assert record.prefix == raw[:8]
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(schema.keys))]
    assert len(rows) == 1
    row = rows[0]
    assert row["key_hash"] == hashlib.sha256(raw.encode()).hexdigest() == hash_key(raw)
    assert row["id"] == record.id and row["kind"] == kind.value
    for value in row.values():
        assert raw not in str(value)
    # Not in the database file, its WAL or its shared memory either.
    files = _control_files(engine)
    assert row["key_hash"].encode() in files  # the files are really the ones holding the row
    assert raw.encode() not in files


def test_key_ids_and_secrets_are_unique(engine: sa.Engine, org_id: int) -> None:
    with engine.begin() as conn:
        made = [create_key(conn, org_id=org_id, kind=KeyKind.DD_API_KEY, name="k") for _ in range(20)]
    assert len({r.id for r, _ in made}) == 20
    assert len({raw for _, raw in made}) == 20
    assert all(re.fullmatch(r"key_[0-9a-f]{16}", r.id) for r, _ in made)


def test_find_key_by_secret(engine: sa.Engine, org_id: int) -> None:
    with engine.begin() as conn:
        record, raw = create_key(conn, org_id=org_id, kind=KeyKind.DD_APP_KEY, name="reader")
    with engine.connect() as conn:
        found = find_key(conn, raw)
        assert found == record
        assert find_key(conn, raw.upper()) is None
        assert find_key(conn, raw[:-1]) is None
        assert find_key(conn, "") is None


@pytest.mark.parametrize("kind", list(KeyKind))
def test_default_scopes_are_all_of_the_kind(engine: sa.Engine, org_id: int, kind: KeyKind) -> None:
    with engine.begin() as conn:
        record, _ = create_key(conn, org_id=org_id, kind=kind, name="k")
    assert record.scopes == SCOPES[kind]
    with engine.connect() as conn:
        assert list_keys(conn, org_id)[0].scopes == SCOPES[kind]


def test_a_subset_of_scopes_is_kept(engine: sa.Engine, org_id: int) -> None:
    with engine.begin() as conn:
        record, raw = create_key(
            conn, org_id=org_id, kind=KeyKind.DD_API_KEY, name="k", scopes=("metrics_write",)
        )
    assert record.scopes == ("metrics_write",)
    with engine.connect() as conn:
        found = find_key(conn, raw)
    assert found is not None and found.scopes == ("metrics_write",)


@pytest.mark.parametrize(
    ("kind", "scopes", "bad"),
    [
        (KeyKind.DD_API_KEY, ("events_write", "admin"), "admin"),
        (KeyKind.DD_API_KEY, ("metrics.read",), "metrics.read"),  # a Dynatrace scope
        (KeyKind.DYNATRACE_TOKEN, ("metrics_write",), "metrics_write"),
        (KeyKind.POSTHOG_PROJECT_TOKEN, ("query:read",), "query:read"),
    ],
)
def test_unknown_scopes_are_refused(
    engine: sa.Engine, org_id: int, kind: KeyKind, scopes: tuple[str, ...], bad: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(bad)):
        validate_scopes(kind, scopes)
    with pytest.raises(ValueError, match=re.escape(bad)), engine.begin() as conn:
        create_key(conn, org_id=org_id, kind=kind, name="k", scopes=scopes)
    with engine.connect() as conn:
        assert list_keys(conn, org_id) == []


def test_revoke(engine: sa.Engine, org_id: int) -> None:
    with engine.begin() as conn:
        keep, _ = create_key(conn, org_id=org_id, kind=KeyKind.DD_API_KEY, name="keep")
        gone, raw = create_key(conn, org_id=org_id, kind=KeyKind.DD_API_KEY, name="gone")
    with engine.begin() as conn:
        assert revoke_key(conn, gone.id) is True
    with engine.begin() as conn:
        assert revoke_key(conn, gone.id) is False  # already revoked
        assert revoke_key(conn, "key_doesnotexist") is False
    with engine.connect() as conn:
        found = find_key(conn, raw)
        assert found is not None and found.revoked_at is not None
        states = {k.id: k.revoked_at for k in list_keys(conn, org_id)}
    assert states[keep.id] is None
    assert states[gone.id] is not None


# Organizations and applications


def test_orgs(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        acme = create_org(conn, "  acme ")
        assert acme.name == "acme"
        with pytest.raises(ValueError, match="already exists"):
            create_org(conn, "acme")
        with pytest.raises(ValueError, match="empty"):
            create_org(conn, "   ")
        assert find_org(conn, "acme") == acme
        assert find_org(conn, str(acme.id)) == acme
        with pytest.raises(OrgNotFound):
            find_org(conn, "nope")
        with pytest.raises(LookupError):
            find_org(conn, "999")


def test_provision_org_creates_everything(engine: sa.Engine) -> None:
    provisioned = provision_org(engine, "acme")
    assert set(provisioned.keys) == {k.value for k in KeyKind}
    for kind, raw in provisioned.keys.items():
        assert KEY_FORMATS[KeyKind(kind)].fullmatch(raw)
    with engine.connect() as conn:
        app = get_app(conn, provisioned.application_id)
        assert app is not None and app.org_id == provisioned.org_id and app.enabled
        token = find_key(conn, provisioned.keys["posthog_project_token"])
        assert token is not None and token.posthog_project_id == provisioned.posthog_project_id
        api = find_key(conn, provisioned.keys["dd_api_key"])
        assert api is not None and api.posthog_project_id is None
    with pytest.raises(ValueError, match="already exists"):
        provision_org(engine, "acme")


def test_applications(engine: sa.Engine, org_id: int) -> None:
    wanted = "6F9619FF-8B86-D011-B42D-00CF4FC964FF"
    with engine.begin() as conn:
        app = create_app(conn, org_id=org_id, name="shop", app_id=wanted)
        random_app = create_app(conn, org_id=org_id, name="other")
    assert app.id == wanted.lower()  # canonical form
    assert uuid.UUID(random_app.id).version == 4
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="not a UUID"):
            create_app(conn, org_id=org_id, name="bad", app_id="not-a-uuid")
        with pytest.raises(ValueError, match="already exists"):
            create_app(conn, org_id=org_id, name="dup", app_id=wanted.lower())
    with engine.connect() as conn:
        assert get_app(conn, wanted) == app
        assert get_app(conn, "{" + wanted + "}") == app
        assert get_app(conn, "not-a-uuid") is None
        assert get_app(conn, str(uuid.uuid4())) is None
        assert [a.id for a in list_apps(conn, org_id)] == [app.id, random_app.id]
    with engine.begin() as conn:
        assert set_app_enabled(conn, wanted, False) is True
        assert set_app_enabled(conn, "not-a-uuid", False) is False
        assert set_app_enabled(conn, str(uuid.uuid4()), False) is False
    with engine.connect() as conn:
        disabled = get_app(conn, app.id)
        assert disabled is not None and not disabled.enabled
    assert normalize_app_id("nope") is None


# Directory: cached lookups that see every change made elsewhere on the very next call


@pytest.fixture
def provisioned(engine: sa.Engine) -> Any:
    return provision_org(engine, "acme")


@pytest.fixture
def directory(engine: sa.Engine) -> Iterator[Directory]:
    database = engine.url.database
    assert database is not None
    d = Directory(engine, Path(database))
    yield d
    d.close()


def _data_dir(engine: sa.Engine) -> Path:
    database = engine.url.database
    assert database is not None
    return Path(database).parent


def _count_queries(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_principal_for_a_valid_key(directory: Directory, provisioned: Any) -> None:
    api = directory.principal(provisioned.keys["dd_api_key"])
    assert api is not None
    assert api.org_id == provisioned.org_id
    assert api.kind is KeyKind.DD_API_KEY
    assert api.scopes == frozenset(SCOPES[KeyKind.DD_API_KEY])
    assert api.posthog_project_id is None
    token = directory.principal(provisioned.keys["posthog_project_token"])
    assert token is not None
    assert token.kind is KeyKind.POSTHOG_PROJECT_TOKEN
    assert token.posthog_project_id == provisioned.posthog_project_id
    assert token.key_id != api.key_id


def test_principal_for_an_unknown_key_is_none(directory: Directory, provisioned: Any) -> None:
    assert directory.principal("0" * 32) is None
    assert directory.principal(provisioned.keys["dd_api_key"][:-1]) is None
    assert directory.principal("") is None


def test_lookups_are_cached_while_nothing_changes(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    raw = provisioned.keys["dd_api_key"]
    first = directory.principal(raw)
    assert directory.principal("f" * 32) is None
    assert directory.application(provisioned.application_id) is not None
    queries = _count_queries(engine)
    for _ in range(5):
        assert directory.principal(raw) == first
        assert directory.principal("f" * 32) is None
        assert directory.application(provisioned.application_id) is not None
    assert queries == []


def test_lookups_ask_sqlite_only_once_something_was_committed(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    raw = provisioned.keys["dd_api_key"]
    assert directory.principal(raw) is not None
    asked: list[str] = []
    directory._probe.set_trace_callback(asked.append)
    # Far apart, with nothing committed: the wal-index header says so, without a query.
    for _ in range(5):
        time.sleep(0.002)
        assert directory.principal(raw) is not None
        assert directory.application(provisioned.application_id) is not None
    assert asked == []
    with engine.begin() as conn:
        assert revoke_key(conn, _key_id(engine, raw))
    assert directory.principal(raw) is None
    assert asked == ["PRAGMA data_version"]


def test_the_generation_changes_with_every_commit_and_only_then(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    first = directory.generation
    assert directory.generation == first
    with engine.begin() as conn:
        assert set_app_enabled(conn, provisioned.application_id, False)
    second = directory.generation
    assert second != first
    assert directory.generation == second


def test_a_database_without_a_wal_index_is_checked_by_query(tmp_path: Path) -> None:
    path = tmp_path / "rollback-journal.sqlite3"
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert _map_wal_index(connection, path) is None
    finally:
        connection.close()


def _key_id(engine: sa.Engine, raw: str) -> str:
    with engine.connect() as conn:
        record = find_key(conn, raw)
    assert record is not None
    return record.id


def test_revoke_through_another_engine_is_seen_on_the_next_lookup(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    raw = provisioned.keys["dd_api_key"]
    assert directory.principal(raw) is not None  # cached now
    other = open_control(Path(str(engine.url.database)))
    try:
        with other.begin() as conn:
            assert revoke_key(conn, _key_id(other, raw))
    finally:
        other.dispose()
    assert directory.principal(raw) is None
    # The other keys of the organization still work.
    assert directory.principal(provisioned.keys["dd_app_key"]) is not None


def test_revoke_through_the_directorys_own_engine_is_seen_on_the_next_lookup(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    raw = provisioned.keys["dynatrace_token"]
    assert directory.principal(raw) is not None
    with engine.begin() as conn:
        assert revoke_key(conn, _key_id(engine, raw))
    assert directory.principal(raw) is None


def test_revoke_through_the_cli_in_another_process_is_seen_on_the_next_lookup(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    raw = provisioned.keys["dd_api_key"]
    for _ in range(3):
        assert directory.principal(raw) is not None
    sextant("keys", "revoke", _key_id(engine, raw), "--data-dir", str(_data_dir(engine)))
    assert directory.principal(raw) is None


def test_a_key_created_by_the_cli_in_another_process_works_at_once(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    assert directory.principal(provisioned.keys["dd_api_key"]) is not None
    created = sextant(
        "keys", "create", "--org", "acme", "--kind", "dd_api_key", "--json",
        "--data-dir", str(_data_dir(engine)),
    )  # fmt: skip
    raw = json.loads(created.stdout)["secret"]
    principal = directory.principal(raw)
    assert principal is not None and principal.org_id == provisioned.org_id


def test_application_lookup_and_disable_elsewhere(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    app_id = provisioned.application_id
    app = directory.application(app_id)
    assert app is not None and app.enabled and app.org_id == provisioned.org_id
    assert directory.application(app_id.upper()) is not None
    assert directory.application("not-a-uuid") is None
    sextant("apps", "disable", app_id, "--data-dir", str(_data_dir(engine)))
    disabled = directory.application(app_id)
    assert disabled is not None and not disabled.enabled
    other = open_control(Path(str(engine.url.database)))
    try:
        with other.begin() as conn:
            assert set_app_enabled(conn, app_id, True)
    finally:
        other.dispose()
    enabled = directory.application(app_id)
    assert enabled is not None and enabled.enabled


def test_an_application_created_elsewhere_is_found_although_a_miss_was_cached(
    engine: sa.Engine, directory: Directory, provisioned: Any
) -> None:
    app_id = str(uuid.uuid4())
    assert directory.application(app_id) is None
    assert directory.application(app_id) is None
    other = open_control(Path(str(engine.url.database)))
    try:
        with other.begin() as conn:
            create_app(conn, org_id=provisioned.org_id, name="late", app_id=app_id)
    finally:
        other.dispose()
    found = directory.application(app_id)
    assert found is not None and found.name == "late"
