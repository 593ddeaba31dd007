"""`sextant import events`: NDJSON and Parquet, the intake's validation, all-or-nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.serverproc import provision, sextant, start_server
from tests.storeread import stored_events


@pytest.fixture
def org(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data_dir = tmp_path / "data"
    return data_dir, provision(data_dir, "importer")


def _events(app_id: str, n: int, start: int) -> list[dict[str, Any]]:
    return [
        {
            "application": {"id": app_id},
            "event": {"name": "imported"},
            "type": "server",
            "usr": {"id": f"u{i}"},
            "date": start + i,
            "customer": {"tier": ["free", "pro"][i % 2]},
            "n": i,
        }
        for i in range(n)
    ]


def test_ndjson_import_matches_the_intake(org: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    data_dir, created = org
    start = int(time.time() * 1000) - 86_400_000
    path = tmp_path / "events.ndjson"
    lines = [json.dumps(e) for e in _events(created["application_id"], 50, start)]
    path.write_text("\n".join(lines[:25]) + "\n\n" + "\n".join(lines[25:]) + "\n")
    before = int(time.time() * 1000)
    undated = {
        "application": {"id": created["application_id"]},
        "event": {"name": "now"},
        "type": "server",
        "session": {"id": "s"},
    }
    with path.open("a") as f:
        f.write(json.dumps(undated) + "\n")
    result = sextant("import", "events", str(path), "--org", "importer", "--data-dir", str(data_dir))
    assert "Imported 51 events into organization 'importer'" in result.stdout
    assert "importing events.ndjson" in result.stderr  # the progress bar
    rows = stored_events(data_dir)
    assert len(rows) == 51
    assert rows[0]["time_ms"] == start and rows[0]["usr_id"] == "u0"
    assert rows[0]["attributes"] == {"date": start, "customer.tier": "free", "n": 0}
    assert rows[-1]["event_name"] == "now" and rows[-1]["time_ms"] >= before
    assert {r["org_id"] for r in rows} == {created["org_id"]}
    # A second import continues the event ids, and the server then serves everything.
    sextant("import", "events", str(path), "--org", "importer", "--data-dir", str(data_dir))
    rows = stored_events(data_dir)
    assert [r["event_id"] for r in rows] == list(range(1, 103))


def test_parquet_import(org: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    data_dir, created = org
    start = int(time.time() * 1000) - 3_600_000
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(_events(created["application_id"], 40, start)), path)
    result = sextant("import", "events", str(path), "--org", "importer", "--data-dir", str(data_dir))
    assert "Imported 40 events" in result.stdout
    rows = stored_events(data_dir)
    assert [r["usr_id"] for r in rows] == [f"u{i}" for i in range(40)]
    assert rows[1]["attributes"]["customer.tier"] == "pro"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 31: not valid JSON"),
        (
            json.dumps(
                {"application": {"id": "x"}, "event": {"name": "e"}, "type": "server", "usr": {"id": "u"}}
            ),
            "line 31: application.id 'x' is not a known application",
        ),
        (json.dumps({"event": {"name": "e"}, "type": "server"}), "line 31: application.id is required"),
    ],
)
def test_a_bad_record_imports_nothing(
    org: tuple[Path, dict[str, Any]], tmp_path: Path, bad: str, message: str
) -> None:
    data_dir, created = org
    events = _events(created["application_id"], 40, int(time.time() * 1000) - 60_000)
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join([*map(json.dumps, events[:30]), bad, *map(json.dumps, events[30:])]) + "\n")
    result = sextant(
        "import", "events", str(path), "--org", "importer", "--data-dir", str(data_dir), check=False
    )
    assert result.returncode == 1
    assert message in result.stderr and "nothing was imported" in result.stderr
    assert stored_events(data_dir) == []


def test_import_refuses_while_the_server_runs(org: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    data_dir, created = org
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(_events(created["application_id"], 1, int(time.time() * 1000))[0]) + "\n")
    running = start_server(data_dir)
    try:
        result = sextant(
            "import", "events", str(path), "--org", "importer", "--data-dir", str(data_dir), check=False
        )
    finally:
        assert running.stop() == 0
    assert result.returncode == 1
    assert "is `sextant serve` running on this data dir?" in result.stderr


def test_unknown_org_and_missing_file(org: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    data_dir, _ = org
    missing = sextant(
        "import",
        "events",
        str(tmp_path / "nope.ndjson"),
        "--org",
        "importer",
        "--data-dir",
        str(data_dir),
        check=False,
    )
    assert missing.returncode == 1 and "is not a file" in missing.stderr
    (tmp_path / "e.ndjson").write_text("")
    unknown = sextant(
        "import",
        "events",
        str(tmp_path / "e.ndjson"),
        "--org",
        "nobody",
        "--data-dir",
        str(data_dir),
        check=False,
    )
    assert unknown.returncode == 1 and "no organization named 'nobody'" in unknown.stderr
