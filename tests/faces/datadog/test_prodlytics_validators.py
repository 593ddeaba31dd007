"""The intake checks an application once while the control database stays as it was, and again after
any change to it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.types import Message

from sextant.config import Limits
from sextant.control.apps import set_app_enabled
from sextant.control.db import open_control
from sextant.control.directory import Directory
from sextant.control.keys import find_key, revoke_key
from sextant.control.orgs import provision_org
from sextant.core.timeutil import now_ms
from sextant.faces.datadog.prodlytics import PATH, ProductAnalyticsIntake
from sextant.faces.datadog.server_side_events import InvalidEvent
from sextant.ingest.log import IngestLog
from sextant.ingest.writer import GroupCommitWriter
from sextant.storage.duckdb.store import DuckDBStore


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[sa.Engine, Directory, ProductAnalyticsIntake, Any]]:
    engine = open_control(tmp_path / "control.sqlite3")
    org = provision_org(engine, "acme")
    directory = Directory(engine, tmp_path / "control.sqlite3")
    store = DuckDBStore(tmp_path / "store.duckdb")
    writer = GroupCommitWriter(
        store, IngestLog(tmp_path / "log"), max_queued_events=100, max_commit_events=100
    )
    try:
        yield engine, directory, ProductAnalyticsIntake(directory, writer, Limits()), org
    finally:
        store.close()
        directory.close()
        engine.dispose()


def _body(app_id: str, user: str) -> bytes:
    event = {"application": {"id": app_id}, "event": {"name": "signup"}, "type": "server"}
    return json.dumps({**event, "usr": {"id": user}}).encode()


def _counted(monkeypatch: pytest.MonkeyPatch, directory: Directory, lookup: str) -> list[str]:
    """The arguments of every call of the directory's `lookup` from now on."""
    calls: list[str] = []
    real = getattr(directory, lookup)

    def counted(argument: str) -> Any:
        calls.append(argument)
        return real(argument)

    monkeypatch.setattr(directory, lookup, counted)
    return calls


def test_an_application_is_looked_up_once_while_nothing_changes(
    parts: tuple[sa.Engine, Directory, ProductAnalyticsIntake, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, directory, intake, org = parts
    lookups = _counted(monkeypatch, directory, "application")
    for user in range(5):
        batch = intake._translate(_body(org.application_id, f"u{user}"), org.org_id, now_ms())
        assert batch.usr_id == [f"u{user}"]
    assert lookups == [org.application_id]

    with engine.begin() as conn:
        assert set_app_enabled(conn, org.application_id, False)
    with pytest.raises(InvalidEvent, match="disabled"):
        intake._translate(_body(org.application_id, "u9"), org.org_id, now_ms())
    # Checked again at once: by the native pass, then by the Python one that says what is wrong.
    assert lookups == [org.application_id] * 3


def test_a_key_found_valid_is_not_looked_up_again_until_the_control_database_changes(
    parts: tuple[sa.Engine, Directory, ProductAnalyticsIntake, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, directory, intake, org = parts
    key = org.keys["dd_api_key"]
    lookups = _counted(monkeypatch, directory, "principal")

    async def post(body: bytes) -> tuple[int, bytes]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": PATH, "headers": [(b"dd-api-key", key.encode())]}
        await intake.asgi(scope, receive, send)
        return sent[0]["status"], sent[-1]["body"]

    async def scenario() -> None:
        writer = intake._writer
        writer.start()
        try:
            for user in range(3):
                assert await post(_body(org.application_id, f"u{user}")) == (202, b"{}")
            # The first request checked the key; the others took the native path.
            assert lookups == [key]
            with engine.begin() as conn:
                record = find_key(conn, key)
                assert record is not None and revoke_key(conn, record.id)
            status, body = await post(_body(org.application_id, "u9"))
            assert (status, json.loads(body)["errors"][0]["status"]) == (403, "403")
            assert lookups == [key, key]
        finally:
            await writer.stop()

    asyncio.run(scenario())
