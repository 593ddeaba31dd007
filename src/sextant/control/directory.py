"""Hot-path lookups of keys and applications, cached until the control database changes.

The CLI administers a running server through the same SQLite file, so a cached answer is only valid
while no other connection has committed. SQLite's `PRAGMA data_version` tells exactly that, so a revoked
key stops working on the very next request. The query itself costs a few system calls (file locks), too
many for every request of a busy intake: in WAL mode every commit also rewrites the header of the
wal-index (the `-shm` file, https://www.sqlite.org/walformat.html), so the directory maps that header and
asks SQLite only when its bytes have changed.
"""

from __future__ import annotations

import contextlib
import mmap
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from sextant.control.apps import Application, get_app
from sextant.control.keys import KeyKind, find_key
from sextant.control.orgs import posthog_project_of, posthog_project_owner
from sextant.control.segments import segment_members


@dataclass(frozen=True)
class Principal:
    """Who is calling: the organization and what the presented key may do."""

    org_id: int
    key_id: str
    kind: KeyKind
    scopes: frozenset[str]
    posthog_project_id: int | None


class Directory:
    def __init__(self, engine: sa.Engine, db_path: Path) -> None:
        self.engine = engine
        self._probe = sqlite3.connect(db_path, check_same_thread=False)
        self._version: int | None = None
        self._checked_at = 0
        self._wal_index = _map_wal_index(self._probe, db_path)
        self._wal_header = b""
        self._generation = 0
        self._principals: dict[str, Principal | None] = {}
        self._apps: dict[str, Application | None] = {}

    def close(self) -> None:
        if self._wal_index is not None:
            self._wal_index.close()
        self._probe.close()

    def _fresh(self) -> None:
        now = time.monotonic_ns()
        wal_index = self._wal_index
        if wal_index is not None:
            # Read before asking SQLite: a commit between the two is then seen by the next lookup. The
            # header is a filter, SQLite's answer decides; once a second it is asked regardless, in case
            # another process ever took the file out of WAL mode and left the header behind.
            header = wal_index[:_WAL_INDEX_HEADER_BYTES]
            if header == self._wal_header and now - self._checked_at < 1_000_000_000:
                return
            self._wal_header = header
        elif now - self._checked_at < 1_000_000:
            # Without a wal-index: one query per millisecond at most (a request makes several lookups).
            return
        self._checked_at = now
        version = self._probe.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._principals.clear()
            self._apps.clear()
            self._version = version
            self._generation += 1

    @property
    def generation(self) -> int:
        """A number that changes whenever the control database has changed since it was last read:
        whatever a caller derived from the directory's answers holds while it stays the same."""
        self._fresh()
        return self._generation

    def principal(self, raw_key: str) -> Principal | None:
        """The active key whose secret is `raw_key`, or None (unknown or revoked)."""
        self._fresh()
        try:
            return self._principals[raw_key]
        except KeyError:
            pass
        with self.engine.connect() as conn:
            record = find_key(conn, raw_key)
        principal = None
        if record is not None and record.revoked_at is None:
            principal = Principal(
                org_id=record.org_id,
                key_id=record.id,
                kind=record.kind,
                scopes=frozenset(record.scopes),
                posthog_project_id=record.posthog_project_id,
            )
        # Bound the cache: unknown keys presented by a misbehaving client must not grow it forever.
        if len(self._principals) > 10_000:
            self._principals.clear()
        self._principals[raw_key] = principal
        return principal

    def application(self, app_id: str) -> Application | None:
        self._fresh()
        try:
            return self._apps[app_id]
        except KeyError:
            pass
        with self.engine.connect() as conn:
            app = get_app(conn, app_id)
        if len(self._apps) > 10_000:
            self._apps.clear()
        self._apps[app_id] = app
        return app

    def posthog_project(self, org_id: int) -> int | None:
        """The organization's (first) PostHog project."""
        with self.engine.connect() as conn:
            return posthog_project_of(conn, org_id)

    def posthog_project_owner(self, project_id: int) -> int | None:
        """The organization owning a PostHog project, or None when there is none."""
        with self.engine.connect() as conn:
            return posthog_project_owner(conn, project_id)

    def segment(self, org_id: int, segment_id: str) -> list[str] | None:
        """The user ids of the organization's segment (read fresh: segments change without notice)."""
        with self.engine.connect() as conn:
            return segment_members(conn, org_id, segment_id)


# The wal-index begins with two copies of its header (48 bytes each); a commit rewrites both.
_WAL_INDEX_HEADER_BYTES = 96


def _map_wal_index(probe: sqlite3.Connection, db_path: Path) -> mmap.mmap | None:
    """The start of the database's wal-index, mapped read-only; None when it has none (not in WAL mode,
    or a platform without the shared-memory file)."""
    if probe.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        return None
    # A read maps the wal-index into being; this connection keeps it while it is open.
    probe.execute("PRAGMA data_version").fetchone()
    with contextlib.suppress(OSError, ValueError), open(f"{db_path}-shm", "rb") as shm:
        return mmap.mmap(shm.fileno(), _WAL_INDEX_HEADER_BYTES, access=mmap.ACCESS_READ)
    return None
