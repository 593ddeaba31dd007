"""Typed columns for frequently queried attributes (materialized attributes).

Reading an attribute out of the JSON object costs 20-100x more than reading a column, so an attribute
path that queries read from JSON gets its own typed columns: the query asks for it, and the writer
thread (the only one that writes) adds the columns, fills them for new events from then on, and fills
the existing events in chunks between commits, so that ingest keeps flowing. Queries use the columns
once every event has them, and read the JSON until then: answers are the same either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import duckdb

from sextant.storage.duckdb.fields import json_path, slot_columns, typed_projection

log = logging.getLogger("sextant.storage")

MAX_SLOTS = 64
BACKFILL_ROWS = 200_000

_CATALOG = """
CREATE TABLE IF NOT EXISTS attribute_columns (
    path VARCHAR PRIMARY KEY,
    slot INTEGER NOT NULL,
    backfill_end UBIGINT NOT NULL,
    backfilled_to UBIGINT NOT NULL
)
"""


@dataclass(frozen=True)
class Slot:
    path: str
    slot: int
    backfill_end: int  # events with ids up to this one existed before the columns did
    backfilled_to: int

    @property
    def ready(self) -> bool:
        return self.backfilled_to >= self.backfill_end


class AttributeColumns:
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        con.execute(_CATALOG).fetchall()
        rows = con.execute("SELECT path, slot, backfill_end, backfilled_to FROM attribute_columns").fetchall()
        self._slots = {r[0]: Slot(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows}
        self._wanted: set[str] = set()
        # Paths whose filling failed: they stay in JSON until restart rather than failing in a loop.
        self._broken: set[str] = set()
        self._lock = threading.Lock()
        self._ready = self._ready_map()

    def _ready_map(self) -> Mapping[str, int]:
        return {path: s.slot for path, s in self._slots.items() if s.ready}

    def ready(self) -> Mapping[str, int]:
        """Attribute path → slot, for the paths every event has columns for (an immutable snapshot)."""
        return self._ready

    def request(self, paths: Iterable[str]) -> None:
        """Ask for columns for these paths (queries call this for paths they read from JSON)."""
        with self._lock:
            self._wanted.update(p for p in paths if p not in self._slots)

    def insert_columns(self) -> tuple[list[tuple[str, str]], dict[str, str]]:
        """(column name, SQL over `attributes`) for every slot, and the JSON paths they bind, for the
        writer's INSERT."""
        columns: list[tuple[str, str]] = []
        params: dict[str, str] = {}
        for s in self._slots.values():
            name = f"path{s.slot}"
            params[name] = json_path(s.path)
            columns.extend(zip(slot_columns(s.slot), typed_projection(f"${name}"), strict=True))
        return columns, params

    def _unfilled(self) -> Slot | None:
        return next((s for s in self._slots.values() if not s.ready and s.path not in self._broken), None)

    @property
    def has_work(self) -> bool:
        return bool(self._wanted) or self._unfilled() is not None

    def step(self, max_event_id: int) -> None:
        """One bounded unit of work, on the writer thread: fill one chunk, or add one path's columns."""
        pending = self._unfilled()
        if pending is not None:
            self._backfill(pending)
            return
        with self._lock:
            path = self._wanted.pop() if self._wanted else None
        if path is None or len(self._slots) >= MAX_SLOTS:
            return
        try:
            json_path(path)
        except ValueError:
            return
        self._add(path, max_event_id)

    def _add(self, path: str, max_event_id: int) -> None:
        slot = max((s.slot for s in self._slots.values()), default=-1) + 1
        t, s_, d = slot_columns(slot)
        con = self._con
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            for column, kind in ((t, "VARCHAR"), (s_, "VARCHAR"), (d, "DOUBLE")):
                con.execute(f"ALTER TABLE events ADD COLUMN {column} {kind}").fetchall()
            con.execute(
                "INSERT INTO attribute_columns VALUES (?, ?, ?, 0)", [path, slot, max_event_id]
            ).fetchall()
            con.execute("COMMIT").fetchall()
        except duckdb.Error:
            con.execute("ROLLBACK").fetchall()
            log.exception("could not add columns for attribute %r; it stays in JSON", path)
            return
        self._slots[path] = Slot(path, slot, max_event_id, 0)
        self._ready = self._ready_map()
        log.info(
            "attribute %r gets its own columns (slot %d); filling %d existing events",
            path,
            slot,
            max_event_id,
        )

    def _backfill(self, s: Slot) -> None:
        upto = min(s.backfilled_to + BACKFILL_ROWS, s.backfill_end)
        t, txt, d = slot_columns(s.slot)
        typed = typed_projection("$path")
        con = self._con
        con.execute("BEGIN TRANSACTION").fetchall()
        try:
            con.execute(
                f"UPDATE events SET {t} = {typed[0]}, {txt} = {typed[1]}, {d} = {typed[2]} "
                "WHERE event_id > $lo AND event_id <= $hi",
                {"path": json_path(s.path), "lo": s.backfilled_to, "hi": upto},
            ).fetchall()
            con.execute(
                "UPDATE attribute_columns SET backfilled_to = ? WHERE path = ?", [upto, s.path]
            ).fetchall()
            con.execute("COMMIT").fetchall()
        except duckdb.Error:
            con.execute("ROLLBACK").fetchall()
            log.exception("filling columns for attribute %r failed; it is read from JSON", s.path)
            self._broken.add(s.path)
            return
        self._slots[s.path] = replace(s, backfilled_to=upto)
        if upto >= s.backfill_end:
            self._ready = self._ready_map()
            log.info("attribute %r: columns ready", s.path)
