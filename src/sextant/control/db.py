"""Opening the control database: a SQLite file in the data dir unless a URL names another database."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sextant.control.migrations import migrate


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets the CLI write while the server reads; busy_timeout makes the two wait for each other
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA busy_timeout=10000")
    _set_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _set_wal(cursor: Any) -> None:
    # Switching a fresh file to WAL takes an exclusive lock, and SQLite answers "database is locked" at
    # once instead of calling the busy handler when processes open the same fresh file together: retry.
    deadline = time.monotonic() + 10
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_control(path: Path) -> sa.Engine:
    """Open (creating and migrating if needed) the control database at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return engine
