"""Reading the DuckDB file directly, after the server that owns it has stopped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb


def stored_events(data_dir: Path) -> list[dict[str, Any]]:
    """Every stored event as a dict, `attributes` decoded, in event-id order."""
    con = duckdb.connect(str(data_dir / "sextant.duckdb"), read_only=True)
    try:
        cur = con.execute("SELECT * FROM events ORDER BY event_id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    for row in rows:
        row["attributes"] = json.loads(row["attributes"])
    return rows
