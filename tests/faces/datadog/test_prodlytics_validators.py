"""The intake checks an application once while the control database stays as it was, and again after
any change to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sextant.config import Limits
from sextant.control.apps import set_app_enabled
from sextant.control.db import open_control
from sextant.control.directory import Directory
from sextant.control.orgs import provision_org
from sextant.faces.datadog.prodlytics import ProductAnalyticsIntake
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


def test_an_application_is_looked_up_once_while_nothing_changes(
    parts: tuple[sa.Engine, Directory, ProductAnalyticsIntake, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, directory, intake, org = parts
    lookups: list[str] = []
    real_lookup = directory.application

    def counted_lookup(app_id: str) -> Any:
        lookups.append(app_id)
        return real_lookup(app_id)

    monkeypatch.setattr(directory, "application", counted_lookup)
    for user in range(5):
        batch = intake._translate(_body(org.application_id, f"u{user}"), org.org_id)
        assert batch.usr_id == [f"u{user}"]
    assert lookups == [org.application_id]

    with engine.begin() as conn:
        assert set_app_enabled(conn, org.application_id, False)
    with pytest.raises(InvalidEvent, match="disabled"):
        intake._translate(_body(org.application_id, "u9"), org.org_id)
    # Checked again at once: by the native pass, then by the Python one that says what is wrong.
    assert lookups == [org.application_id] * 3
