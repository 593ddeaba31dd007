"""Metric series, points and names in DuckDB: appended from Arrow, read back as Arrow."""

from __future__ import annotations

import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sextant.core.metrics import PlainRuns, PointBatch
from sextant.query.metrics import SeriesQuery
from sextant.series.buckets import bucket_times, densify
from sextant.series.frame import SeriesFrame, label_sort_key, labels_of_rows
from sextant.storage.duckdb import metric_rollups
from sextant.storage.duckdb.metric_sql import (
    compile_histogram_query,
    compile_pooled_query,
    compile_samples_query,
    compile_series_query,
)

_POINT_SCHEMA = pa.schema(
    [
        ("org_id", pa.int32()),
        ("series_id", pa.uint64()),
        ("time_ms", pa.int64()),
        ("kind", pa.string()),
        ("value", pa.float64()),
        ("count", pa.int64()),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("bounds", pa.list_(pa.float64())),
        ("bucket_counts", pa.list_(pa.int64())),
        ("samples", pa.list_(pa.float64())),
        ("interval_ms", pa.int64()),
        ("start_time_ms", pa.int64()),
        ("temporality", pa.string()),
        ("monotonic", pa.bool_()),
        ("unit", pa.string()),
    ]
)

# Rollup rows of one unit pile up (one per load bringing points for it) until merged, this often, in
# steps of a day of point times, on the loader thread when it has nothing to load.
COMPACTION_INTERVAL_S = 60.0
COMPACTION_CHUNK_MS = 86_400_000

_SERIES_SCHEMA = pa.schema(
    [
        ("org_id", pa.int32()),
        ("series_id", pa.uint64()),
        ("metric", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("resource_tags", pa.list_(pa.string())),
    ]
)

# The latest kind, unit and sum semantics of each metric name in the batch, merged into metric_names.
_UPSERT_NAMES = """
INSERT INTO metric_names
SELECT p.org_id, s.metric,
       arg_max(p.kind, p.time_ms)::metric_kind, arg_max(p.unit, p.time_ms),
       arg_max(p.temporality, p.time_ms)::metric_temporality, arg_max(p.monotonic, p.time_ms),
       min(p.time_ms), max(p.time_ms)
FROM incoming_points AS p JOIN incoming_series AS s USING (org_id, series_id)
GROUP BY p.org_id, s.metric
ON CONFLICT (org_id, metric) DO UPDATE SET
    kind = CASE WHEN excluded.last_seen_ms >= metric_names.last_seen_ms
                THEN excluded.kind ELSE metric_names.kind END,
    unit = CASE WHEN excluded.last_seen_ms >= metric_names.last_seen_ms
                THEN coalesce(excluded.unit, metric_names.unit)
                ELSE coalesce(metric_names.unit, excluded.unit) END,
    temporality = coalesce(excluded.temporality, metric_names.temporality),
    monotonic = coalesce(excluded.monotonic, metric_names.monotonic),
    first_seen_ms = least(excluded.first_seen_ms, metric_names.first_seen_ms),
    last_seen_ms = greatest(excluded.last_seen_ms, metric_names.last_seen_ms)
"""


def _points_table(batch: PointBatch) -> pa.Table:
    """The batch as one Arrow table: point-by-point columns as they are, plain runs expanded with numpy
    (their per-run fields repeated, never looped over per point in Python)."""
    columns, runs = batch.parts()
    tables = []
    if columns["time_ms"]:
        tables.append(
            pa.Table.from_arrays(
                [pa.array(columns[f.name], f.type) for f in _POINT_SCHEMA], schema=_POINT_SCHEMA
            )
        )
    if runs.headers:
        tables.append(_runs_table(runs))
    if not tables:
        return _POINT_SCHEMA.empty_table()
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _runs_table(runs: PlainRuns) -> pa.Table:
    headers = runs.headers
    lengths = np.fromiter((h[7] for h in headers), dtype=np.int64, count=len(headers))
    n = int(lengths.sum())
    # Which run each point belongs to: the per-run fields are taken once per point with it.
    owner = pa.array(np.repeat(np.arange(len(headers)), lengths))

    def repeated(position: int, arrow_type: pa.DataType) -> pa.Array:
        return pa.array([h[position] for h in headers], arrow_type).take(owner)

    arrays = {
        "org_id": repeated(0, pa.int32()),
        "series_id": pa.array(np.repeat(np.array([h[1] for h in headers], dtype=np.uint64), lengths)),
        "time_ms": pa.array(np.frombuffer(runs.times_ms, dtype=np.int64)),
        "kind": repeated(2, pa.string()),
        "value": pa.array(np.frombuffer(runs.values, dtype=np.float64)),
        "interval_ms": repeated(3, pa.int64()),
        "temporality": repeated(4, pa.string()),
        "monotonic": repeated(5, pa.bool_()),
        "unit": repeated(6, pa.string()),
    }
    return pa.Table.from_arrays(
        [arrays[f.name] if f.name in arrays else pa.nulls(n, f.type) for f in _POINT_SCHEMA],
        schema=_POINT_SCHEMA,
    )


class MetricTables:
    """The metric half of the DuckDB store. Appends run on the loader thread, inside its transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        # Every stored series, so that a batch inserts only series never seen (no index probe per point).
        self._known: set[tuple[int, int]] = set(
            (int(org), int(sid))
            for org, sid in con.execute("SELECT org_id, series_id FROM metric_series").fetchall()
        )
        self._pending: set[tuple[int, int]] = set()
        # The span of point times loaded since the rollups were last compacted (in memory only: after a
        # restart, rows left unmerged are still right, only more of them are read).
        self._uncompacted: tuple[int, int] | None = None
        self._last_compaction = time.monotonic()

    def append(self, batch: PointBatch, now_ms: int) -> None:
        """Insert the batch's points and new series, and update metric_names (caller's transaction)."""
        con = self._con
        points = _points_table(batch)
        keys = list(batch.series)
        # Every series of the batch by name, for metric_names; the tags only of series never stored.
        names = pa.Table.from_arrays(
            [
                pa.array([org for org, _ in keys], pa.int32()),
                pa.array([sid for _, sid in keys], pa.uint64()),
                pa.array([batch.series[k][0] for k in keys], pa.string()),
            ],
            names=["org_id", "series_id", "metric"],
        )
        new = [k for k in keys if k not in self._known]
        con.register("incoming_points", points)
        con.register("incoming_series", names)
        try:
            con.execute(
                "INSERT INTO metric_points BY NAME SELECT * REPLACE "
                "(kind::metric_kind AS kind, temporality::metric_temporality AS temporality) "
                "FROM incoming_points"
            ).fetchall()
            metric_rollups.append_rollups(con, "incoming_points")
            if points.num_rows:
                span = pc.min_max(points.column("time_ms")).as_py()
                self._widen_uncompacted(int(span["min"]), int(span["max"]))
            if new:
                self._insert_series(batch, new, now_ms)
            con.execute(_UPSERT_NAMES).fetchall()
        finally:
            con.unregister("incoming_points")
            con.unregister("incoming_series")

    def _insert_series(self, batch: PointBatch, new: list[tuple[int, int]], now_ms: int) -> None:
        con = self._con
        table = pa.Table.from_arrays(
            [
                pa.array([org for org, _ in new], pa.int32()),
                pa.array([sid for _, sid in new], pa.uint64()),
                pa.array([batch.series[k][0] for k in new], pa.string()),
                pa.array([list(batch.series[k][1]) for k in new], pa.list_(pa.string())),
                pa.array([list(batch.resource_tags.get(k, ())) for k in new], pa.list_(pa.string())),
            ],
            schema=_SERIES_SCHEMA,
        )
        con.register("new_series", table)
        try:
            # The anti join keeps a series stored by an earlier, replayed load from being stored twice.
            con.execute(
                "INSERT INTO metric_series "
                "SELECT s.org_id, s.series_id, s.metric, s.tags, ?, s.resource_tags FROM new_series AS s "
                "ANTI JOIN metric_series AS m ON m.org_id = s.org_id AND m.series_id = s.series_id",
                [now_ms],
            ).fetchall()
        finally:
            con.unregister("new_series")
        self._pending.update(new)

    def known(self) -> set[tuple[int, int]]:
        return set(self._known)

    def definitions(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, tuple[str, ...]]]:
        if not keys:
            return {}
        wanted = pa.Table.from_arrays(
            [pa.array([k[0] for k in keys], pa.int32()), pa.array([k[1] for k in keys], pa.uint64())],
            names=["org_id", "series_id"],
        )
        self._con.register("wanted_series", wanted)
        try:
            rows = self._con.execute(
                "SELECT s.org_id, s.series_id, s.metric, s.tags FROM metric_series AS s "
                "SEMI JOIN wanted_series AS w ON w.org_id = s.org_id AND w.series_id = s.series_id"
            ).fetchall()
        finally:
            self._con.unregister("wanted_series")
        return {(int(org), int(sid)): (metric, tuple(tags)) for org, sid, metric, tags in rows}

    def committed(self) -> None:
        self._known |= self._pending
        self._pending.clear()

    def rolled_back(self) -> None:
        self._pending.clear()

    def delete_before(self, time_ms: int) -> int:
        rows = self._con.execute("DELETE FROM metric_points WHERE time_ms < ?", [time_ms]).fetchall()
        metric_rollups.delete_before(self._con, time_ms)
        return int(rows[0][0]) if rows else 0

    def _widen_uncompacted(self, start_ms: int, end_ms: int) -> None:
        if self._uncompacted is not None:
            start_ms, end_ms = min(start_ms, self._uncompacted[0]), max(end_ms, self._uncompacted[1])
        self._uncompacted = (start_ms, end_ms)

    @property
    def compaction_due(self) -> bool:
        return (
            self._uncompacted is not None
            and time.monotonic() - self._last_compaction >= COMPACTION_INTERVAL_S
        )

    def compact_step(self) -> int:
        """Merge the rollup rows of one day of the span loaded since the last compaction, newest first
        (caller's transaction); returns how many rows were merged."""
        assert self._uncompacted is not None
        start_ms, end_ms = self._uncompacted
        chunk_start = max(start_ms, end_ms - COMPACTION_CHUNK_MS)
        try:
            merged = metric_rollups.compact(self._con, chunk_start, end_ms)
        except Exception:
            self._last_compaction = time.monotonic()  # try again later, not at once
            raise
        if chunk_start <= start_ms:
            self._uncompacted = None
            self._last_compaction = time.monotonic()
        else:
            self._uncompacted = (start_ms, chunk_start - 1)
        return merged


def read_points(
    cursor: duckdb.DuckDBPyConnection, org_id: int, metric: str, start_ms: int, end_ms: int
) -> pa.Table:
    """Every point of the organization's `metric` in [start_ms, end_ms), with its series' tags, ordered by
    series then time."""
    return cursor.execute(
        "SELECT s.metric, s.tags, p.* EXCLUDE (org_id) FROM metric_points AS p "
        "JOIN metric_series AS s ON s.org_id = p.org_id AND s.series_id = p.series_id "
        "WHERE p.org_id = ? AND s.metric = ? AND p.time_ms >= ? AND p.time_ms < ? "
        "ORDER BY p.series_id, p.time_ms",
        [org_id, metric, start_ms, end_ms],
    ).to_arrow_table()


def read_series(cursor: duckdb.DuckDBPyConnection, query: SeriesQuery) -> SeriesFrame:
    """The selected series rolled up into the query's buckets (every bucket overlapping its range)."""
    if query.samples is not None:
        return _read_groups(cursor, query, *compile_samples_query(query))
    if query.pool_groups:
        return _read_groups(cursor, query, *compile_pooled_query(query))
    compiled = compile_series_query(query)
    series = cursor.execute(compiled.series_sql, compiled.series_params).fetchall()
    times = bucket_times(query.start_ms, query.end_ms, query.step_ms, query.bucket_origin_ms)
    ids = np.array([row[0] for row in series], dtype=np.uint64)
    points: pa.Table = cursor.execute(compiled.points_sql, compiled.points_params).to_arrow_table()
    values = np.full((len(series), len(times)), np.nan)
    if points.num_rows and compiled.rollup_rows:
        r, c, x, n = (points.column(name).to_numpy(zero_copy_only=False) for name in ("r", "c", "x", "n"))
        values = metric_rollups.combine_rows(query.time_aggregation, r, c, x, n, values.shape)
    elif points.num_rows:
        rows = np.searchsorted(ids, points.column("series_id").to_numpy())
        columns = (points.column("bucket").to_numpy() - times[0]) // query.step_ms
        values[rows, columns] = points.column("v").to_numpy(zero_copy_only=False)
    kind, unit = read_metric_info(cursor, query.org_id, query.metric) or (None, None)
    return SeriesFrame(
        times=times,
        values=values,
        group_by=query.group_by,
        labels=[tuple(row[2:]) for row in series],
        step_ms=query.step_ms,
        tags=[tuple(row[1]) for row in series],
        kind=kind,
        unit=unit,
    )


def _read_groups(
    cursor: duckdb.DuckDBPyConnection, query: SeriesQuery, sql: str, params: list[object]
) -> SeriesFrame:
    # One row per group (`g0..gn`, `bucket`, `v`), sorted by labels.
    table: pa.Table = cursor.execute(sql, params).to_arrow_table()
    times = bucket_times(query.start_ms, query.end_ms, query.step_ms, query.bucket_origin_ms)
    labels, rows = labels_of_rows(
        [table.column(f"g{i}").to_pylist() for i in range(len(query.group_by))], table.num_rows
    )
    values = densify(
        times,
        rows,
        table.column("bucket").to_numpy(),
        table.column("v").to_numpy(zero_copy_only=False).astype(float),
        len(labels),
        np.nan,
    )
    order = sorted(range(len(labels)), key=lambda i: label_sort_key(labels[i]))
    labels, values = [labels[i] for i in order], values[order]
    kind, unit = read_metric_info(cursor, query.org_id, query.metric) or (None, None)
    return SeriesFrame(times, values, query.group_by, labels, query.step_ms, kind=kind, unit=unit)


_HISTOGRAM_BUCKETS_SCHEMA = pa.schema(
    [
        ("series_id", pa.uint64()),
        ("tags", pa.list_(pa.string())),
        ("bucket", pa.int64()),
        ("bounds", pa.list_(pa.float64())),
        ("counts", pa.list_(pa.float64())),
    ]
)


def read_histogram_buckets(cursor: duckdb.DuckDBPyConnection, query: SeriesQuery) -> pa.Table:
    """The selected series' histogram bucket-count increases per bucket (see compile_histogram_query)."""
    sql, params = compile_histogram_query(query)
    table: pa.Table = cursor.execute(sql, params).to_arrow_table()
    return table.cast(_HISTOGRAM_BUCKETS_SCHEMA)


def read_metric_info(
    cursor: duckdb.DuckDBPyConnection, org_id: int, metric: str
) -> tuple[str, str | None] | None:
    """The metric's latest kind and unit, or None when it has no points."""
    rows = cursor.execute(
        "SELECT kind, unit FROM metric_names WHERE org_id = ? AND metric = ?", [org_id, metric]
    ).fetchall()
    return (str(rows[0][0]), rows[0][1]) if rows else None


def read_names(cursor: duckdb.DuckDBPyConnection, org_id: int) -> pa.Table:
    """The organization's metric names with their latest kind, unit and sum semantics, by name."""
    return cursor.execute(
        "SELECT metric, kind, unit, temporality, monotonic, first_seen_ms, last_seen_ms "
        "FROM metric_names WHERE org_id = ? ORDER BY metric",
        [org_id],
    ).to_arrow_table()
