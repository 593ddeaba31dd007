"""The DuckDB store: appends arrive as one Arrow table per commit from the single writer thread."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from sextant.core.events import EventBatch
from sextant.core.metrics import PointBatch
from sextant.core.timeutil import now_ms
from sextant.query.events import EventListQuery, EventQuery
from sextant.query.metrics import SeriesQuery
from sextant.series.frame import SeriesFrame
from sextant.storage.backend import QueryTimeout
from sextant.storage.duckdb.attribute_columns import AttributeColumns
from sextant.storage.duckdb.event_sql import Compiled, compile_event_list, compile_event_query
from sextant.storage.duckdb.fields import Schema
from sextant.storage.duckdb.metric_tables import (
    MetricTables,
    read_histogram_buckets,
    read_metric_info,
    read_names,
    read_points,
    read_series,
)
from sextant.storage.duckdb.schema import migrate
from sextant.storage.watchdog import Watchdog

_EVENT_SCHEMA = pa.schema(
    [
        ("org_id", pa.int32()),
        ("event_id", pa.uint64()),
        ("time_ms", pa.int64()),
        ("source", pa.string()),
        ("event_name", pa.string()),
        ("type", pa.string()),
        ("application_id", pa.string()),
        ("usr_id", pa.string()),
        ("usr_key", pa.int32()),
        ("account_id", pa.string()),
        ("session_id", pa.string()),
        ("attributes", pa.string()),
    ]
)


WAL_AUTOCHECKPOINT = "256MB"
IDLE_CHECKPOINT_BYTES = 16 * 1024 * 1024
CHECKPOINT_RETRY_S = 10.0
log = logging.getLogger("sextant.storage")

# Results are small (groups times buckets); the copy DuckDB warns about costs less than its relation API.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")


class StoreBusy(RuntimeError):
    """Another process (the server) has the store open."""


def _column(values: Sequence[object], kind: pa.DataType) -> pa.Array:
    """The Arrow array of `values`; one repeated value (a batch's organization, source or type, as a rule)
    without converting each: the loader holds the interpreter lock while it converts, and the event loop
    waits for it meanwhile."""
    if values and values.count(values[0]) == len(values):
        return pa.repeat(pa.scalar(values[0], kind), len(values))
    return pa.array(values, kind)


class DuckDBStore:
    """Owns the DuckDB connection. DuckDB allows one process per file: the server's."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise StoreBusy(
                f"{path} is in use by another process (is `sextant serve` running on this data dir?)"
            ) from exc
        migrate(self._con)
        self._con.execute(f"SET wal_autocheckpoint = '{WAL_AUTOCHECKPOINT}'").fetchall()
        self._wal = path.with_name(path.name + ".wal")
        self._last_checkpoint_try = 0.0
        self._columns = AttributeColumns(self._con)
        self._last_event_id = self._scalar("SELECT coalesce(max(event_id), 0) FROM events")
        self._arrays = frozenset(r[0] for r in self._con.execute("SELECT path FROM array_paths").fetchall())
        self._sources = frozenset(
            str(r[0]) for r in self._con.execute("SELECT DISTINCT source FROM events").fetchall()
        )
        # Held while the sets of array paths, user keys or sources change and while a query reads them and
        # opens its snapshot, so that no query sees an event its compiled SQL did not allow for (an array
        # where it assumed scalars, a user key beyond the largest, another source where it assumed one).
        self._schema_lock = threading.Lock()
        self._in_transaction = False
        self._watchdog = Watchdog()
        self._user_keys: dict[str, int] = dict(
            self._con.execute("SELECT usr_id, usr_key FROM user_keys").fetchall()
        )
        self._new_user_keys: dict[str, int] = {}
        self._metrics = MetricTables(self._con)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several appends into one transaction: all of them are kept, or none."""
        self._con.execute("BEGIN TRANSACTION").fetchall()
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK").fetchall()
            self._new_user_keys.clear()
            self._metrics.rolled_back()
            raise
        finally:
            self._in_transaction = False
        if self._new_user_keys:
            self._store_new_user_keys()
        self._con.execute("COMMIT").fetchall()
        self._keep_new_user_keys()
        self._metrics.committed()

    def _store_new_user_keys(self) -> None:
        new = pa.table(
            {
                "usr_id": list(self._new_user_keys),
                "usr_key": pa.array(list(self._new_user_keys.values()), pa.int32()),
            }
        )
        self._con.register("new_user_keys", new)
        try:
            self._con.execute("INSERT INTO user_keys SELECT * FROM new_user_keys").fetchall()
        finally:
            self._con.unregister("new_user_keys")

    def _user_keys_of(self, usr_ids: list[str | None]) -> list[int | None]:
        """Each user id's dense key; ids seen for the first time get the next keys (stored on commit)."""
        known = self._user_keys
        # The loader holds the interpreter lock for this, which the event loop then waits for: the usual
        # batch, of users seen before, is looked up without a Python-level loop (a None id is not found).
        lookup: Callable[[str | None], int | None] = known.get  # type: ignore[assignment]
        out = list(map(lookup, usr_ids))
        if None not in out:
            return out
        new = self._new_user_keys
        next_key = len(known) + len(new) + 1
        for index, key in enumerate(out):
            if key is not None:
                continue
            usr_id = usr_ids[index]
            if usr_id is None:
                continue
            key = new.get(usr_id)
            if key is None:
                key = new[usr_id] = next_key
                next_key += 1
            out[index] = key
        return out

    def _keep_new_user_keys(self) -> None:
        self._user_keys.update(self._new_user_keys)
        self._new_user_keys.clear()

    @contextmanager
    def _snapshot(self, timeout_s: float) -> Iterator[tuple[duckdb.DuckDBPyConnection, Schema]]:
        # Each reading thread needs its own cursor; its transaction sees every write committed before it.
        cursor = self._con.cursor()
        with self._schema_lock:
            schema = Schema(self._columns.ready(), self._arrays, len(self._user_keys), self._sources)
            cursor.execute("BEGIN TRANSACTION").fetchall()
        deadline = time.monotonic() + timeout_s
        ticket = self._watchdog.arm(timeout_s, cursor.interrupt)
        try:
            yield cursor, schema
        except duckdb.InterruptException as exc:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s") from exc
        finally:
            self._watchdog.disarm(ticket)
            cursor.close()
        # An interrupt that came before DuckDB started the statement does nothing: the deadline still
        # passed, and the answer is the same as for a statement it stopped.
        if time.monotonic() > deadline:
            raise QueryTimeout(f"the query ran longer than {timeout_s:g} s")

    def _run(self, cursor: duckdb.DuckDBPyConnection, compiled: Compiled) -> pa.Table:
        self._columns.request(compiled.from_json)
        return cursor.execute(compiled.sql, compiled.params).to_arrow_table()

    def query_events(self, query: EventQuery, timeout_s: float) -> pa.Table:
        with self._snapshot(timeout_s) as (cursor, schema):
            return self._run(cursor, compile_event_query(query, schema))

    def list_events(self, query: EventListQuery, timeout_s: float) -> tuple[pa.Table, int]:
        with self._snapshot(timeout_s) as (cursor, schema):
            page, total = compile_event_list(query, schema)
            rows = self._run(cursor, page)
            count = self._run(cursor, total).column("total")[0].as_py()
        return rows, int(count)

    def loaded_log_seq(self) -> int:
        return self._scalar("SELECT loaded_log_seq FROM ingest_state")

    def append_events(self, batch: EventBatch, first_event_id: int, log_seq: int | None = None) -> None:
        n = len(batch)
        table = pa.Table.from_arrays(
            [
                _column(batch.org_id, pa.int32()),
                pa.array(np.arange(first_event_id, first_event_id + n, dtype=np.uint64)),
                pa.array(batch.time_ms, pa.int64()),
                _column(batch.source, pa.string()),
                pa.array(batch.name, pa.string()),
                _column(batch.type, pa.string()),
                pa.array(batch.application_id, pa.string()),
                pa.array(batch.usr_id, pa.string()),
                pa.array(self._user_keys_of(batch.usr_id), pa.int32()),
                pa.array(batch.account_id, pa.string()),
                pa.array(batch.session_id, pa.string()),
                pa.array(batch.attributes, pa.string()),
            ],
            schema=_EVENT_SCHEMA,
        )
        new_arrays = batch.array_paths - self._arrays
        new_sources = set(table.column("source").unique().to_pylist()) - self._sources
        # New array paths, user keys and sources change what queries may assume (see `_snapshot`).
        if new_arrays or self._new_user_keys or new_sources:
            with self._schema_lock:
                self._insert(table, new_arrays, log_seq)
                self._arrays = self._arrays | new_arrays
                self._sources = self._sources | new_sources
        else:
            self._insert(table, new_arrays, log_seq)
        self._last_event_id = first_event_id + n - 1

    def _insert(self, table: pa.Table, new_arrays: set[str], log_seq: int | None) -> None:
        con = self._con
        columns, params = self._columns.insert_columns()
        extra = "".join(f", {sql} AS {name}" for name, sql in columns)
        own_transaction = not self._in_transaction
        con.register("incoming_events", table)
        try:
            if own_transaction:
                con.execute("BEGIN TRANSACTION").fetchall()
            con.execute(f"INSERT INTO events BY NAME SELECT *{extra} FROM incoming_events", params).fetchall()
            if log_seq is not None:
                con.execute("UPDATE ingest_state SET loaded_log_seq = ?", [log_seq]).fetchall()
            if new_arrays:
                con.executemany(
                    "INSERT INTO array_paths VALUES (?) ON CONFLICT DO NOTHING", [[p] for p in new_arrays]
                )
            if own_transaction:
                con.execute("COMMIT").fetchall()
                self._keep_new_user_keys()
        except BaseException:
            if own_transaction:
                con.execute("ROLLBACK").fetchall()
                self._new_user_keys.clear()
            raise
        finally:
            con.unregister("incoming_events")

    def append_points(self, batch: PointBatch, log_seq: int | None = None) -> None:
        """Store metric points and their new series; with `log_seq`, record it as loaded in the same
        transaction."""
        con = self._con
        own_transaction = not self._in_transaction
        if own_transaction:
            con.execute("BEGIN TRANSACTION").fetchall()
        try:
            self._metrics.append(batch, now_ms())
            if log_seq is not None:
                con.execute("UPDATE ingest_state SET loaded_log_seq = ?", [log_seq]).fetchall()
            if own_transaction:
                con.execute("COMMIT").fetchall()
                self._metrics.committed()
        except BaseException:
            if own_transaction:
                con.execute("ROLLBACK").fetchall()
                self._metrics.rolled_back()
            raise

    def known_series(self) -> set[tuple[int, int]]:
        return self._metrics.known()

    def series_definitions(
        self, keys: set[tuple[int, int]]
    ) -> dict[tuple[int, int], tuple[str, tuple[str, ...]]]:
        return self._metrics.definitions(keys)

    def read_points(self, org_id: int, metric: str, start_ms: int, end_ms: int, timeout_s: float) -> pa.Table:
        with self._snapshot(timeout_s) as (cursor, _):
            return read_points(cursor, org_id, metric, start_ms, end_ms)

    def query_series(self, query: SeriesQuery, timeout_s: float) -> SeriesFrame:
        with self._snapshot(timeout_s) as (cursor, _):
            return read_series(cursor, query)

    def query_histogram_buckets(self, query: SeriesQuery, timeout_s: float) -> pa.Table:
        with self._snapshot(timeout_s) as (cursor, _):
            return read_histogram_buckets(cursor, query)

    def metric_info(self, org_id: int, metric: str, timeout_s: float) -> tuple[str, str | None] | None:
        with self._snapshot(timeout_s) as (cursor, _):
            return read_metric_info(cursor, org_id, metric)

    def metric_names(self, org_id: int, timeout_s: float) -> pa.Table:
        with self._snapshot(timeout_s) as (cursor, _):
            return read_names(cursor, org_id)

    def _scalar(self, sql: str, params: list[object] | dict[str, str] | None = None) -> int:
        # DuckDB refuses further work on a connection whose last result was not read to the end.
        rows = self._con.execute(sql, params).fetchall()
        return int(rows[0][0]) if rows else 0

    def max_event_id(self) -> int:
        return self._last_event_id

    @property
    def has_maintenance(self) -> bool:
        return self._columns.has_work or self._metrics.compaction_due or self._checkpoint_due()

    def maintain(self) -> None:
        """One bounded step of background work (attribute columns, checkpoints); loader thread only."""
        if self._columns.has_work:
            self._columns.step(self._last_event_id)
        elif self._metrics.compaction_due:
            with self.transaction():
                self._metrics.compact_step()
        elif self._checkpoint_due():
            self._last_checkpoint_try = time.monotonic()
            try:
                self._con.execute("CHECKPOINT").fetchall()
            except duckdb.Error as exc:  # queries in flight: try again later
                log.info("checkpoint postponed: %s", exc)

    def _checkpoint_due(self) -> bool:
        # DuckDB checkpoints by itself, inside a commit, only once its WAL is large (WAL_AUTOCHECKPOINT):
        # under steady ingest commits stay cheap, and the checkpoint happens here, when loading is idle.
        if time.monotonic() - self._last_checkpoint_try < CHECKPOINT_RETRY_S:
            return False
        try:
            return self._wal.stat().st_size > IDLE_CHECKPOINT_BYTES
        except FileNotFoundError:
            return False

    def delete_events_before(self, time_ms: int) -> int:
        return self._scalar("DELETE FROM events WHERE time_ms < ?", [time_ms])

    def delete_points_before(self, time_ms: int) -> int:
        # Points and their rollups go together, or neither.
        with self.transaction():
            return self._metrics.delete_before(time_ms)

    def close(self) -> None:
        self._con.execute("CHECKPOINT").fetchall()
        self._con.close()
