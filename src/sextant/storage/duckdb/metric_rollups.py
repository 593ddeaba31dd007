"""Per-minute, per-5-minute and per-hour rollups of every series, kept as points are loaded, so that a
query whose buckets are whole minutes reads one row per series and minute (or 5 minutes, or hour) instead
of every point. The 5-minute resolution serves Datadog's default steps for one to two days (5 to 30
minutes).

A rollup row holds what any time aggregation needs to be combined again: the sum, count, min and max of
the values, the sum of value times interval (what a Datadog rate point counts), and the last value with its
time. A unit may have several rows (one per load that brought points for it); queries combine them, and
maintenance merges them later. Answers are the same as from the points: a bucket made of whole units
combines their rows, and the partial units at the edges of a query's range are read from the points.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt

from sextant.query.metrics import SeriesQuery
from sextant.series.buckets import first_bucket

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
# Coarsest first: a query uses the coarsest resolution its buckets are made of.
RESOLUTIONS = (
    (HOUR_MS, "metric_rollups_1h"),
    (5 * MINUTE_MS, "metric_rollups_5m"),
    (MINUTE_MS, "metric_rollups_1m"),
)

# What a point contributes, as a rollup row's columns (the edges of a query read points this way).
_INTERVAL_VALUE = "value * coalesce(interval_ms, 1000) / 1000.0"
_POINT_AS_ROW = (
    "value AS sum, CAST(value IS NOT NULL AS BIGINT) AS count, value AS min, value AS max, "
    f"{_INTERVAL_VALUE} AS sum_vi, value AS last, time_ms AS last_time_ms"
)


def table_ddl(table: str) -> str:
    return f"""
CREATE TABLE {table} (
    org_id          INTEGER NOT NULL,
    series_id       UBIGINT NOT NULL,
    time_ms         BIGINT NOT NULL,
    sum             DOUBLE,
    count           BIGINT NOT NULL,
    min             DOUBLE,
    max             DOUBLE,
    sum_vi          DOUBLE,
    last            DOUBLE,
    last_time_ms    BIGINT
)
"""


def rollup_insert_sql(points: str, unit: int, table: str) -> str:
    """The statement that rolls the points of the table `points` up into `table`, of unit `unit` ms."""
    return (
        f"INSERT INTO {table} SELECT org_id, series_id, time_ms // {unit} * {unit} AS unit_start, "
        f"sum(value), count(value), min(value), max(value), sum({_INTERVAL_VALUE}), "
        "arg_max(value, time_ms), max(time_ms) FILTER (WHERE value IS NOT NULL) "
        f"FROM {points} GROUP BY org_id, series_id, unit_start"
    )


def append_rollups(con: duckdb.DuckDBPyConnection, points: str) -> None:
    """Roll the points of the registered table `points` up into both resolutions (caller's transaction)."""
    for unit, table in RESOLUTIONS:
        con.execute(rollup_insert_sql(points, unit, table)).fetchall()


def delete_before(con: duckdb.DuckDBPyConnection, time_ms: int) -> None:
    """Drop the rollups of the points before `time_ms` (retention; the caller deletes the points, first).
    The unit the limit falls in is rolled up again from the points it keeps."""
    for unit, table in RESOLUTIONS:
        con.execute(f"DELETE FROM {table} WHERE time_ms < ?", [time_ms]).fetchall()
        straddled = time_ms // unit * unit
        if straddled < time_ms:
            kept = (
                f"(SELECT * FROM metric_points WHERE time_ms >= {straddled} AND time_ms < {straddled + unit})"
            )
            con.execute(rollup_insert_sql(kept, unit, table)).fetchall()


def compact(con: duckdb.DuckDBPyConnection, start_ms: int, end_ms: int) -> int:
    """Merge the rows of each unit holding times in [start_ms, end_ms] into one (caller's transaction);
    returns how many rows were merged. Open units may be merged too: later rows still combine."""
    merged = 0
    for unit, table in RESOLUTIONS:
        bounds = [start_ms // unit * unit, end_ms]
        con.execute(
            "CREATE OR REPLACE TEMP TABLE rollup_merge AS SELECT org_id, series_id, time_ms, "
            "sum(sum) AS sum, sum(count) AS count, min(min) AS min, max(max) AS max, "
            "sum(sum_vi) AS sum_vi, arg_max(last, last_time_ms) AS last, "
            "max(last_time_ms) AS last_time_ms, count(*) AS rows "
            f"FROM {table} WHERE time_ms >= ? AND time_ms <= ? "
            "GROUP BY org_id, series_id, time_ms HAVING count(*) > 1",
            bounds,
        ).fetchall()
        rows = con.execute("SELECT coalesce(sum(rows), 0) FROM rollup_merge").fetchall()[0][0]
        if rows:
            con.execute(
                f"DELETE FROM {table} AS r USING rollup_merge AS m WHERE r.org_id = m.org_id "
                "AND r.series_id = m.series_id AND r.time_ms = m.time_ms"
            ).fetchall()
            con.execute(f"INSERT INTO {table} SELECT * EXCLUDE (rows) FROM rollup_merge").fetchall()
            merged += int(rows)
        con.execute("DROP TABLE rollup_merge").fetchall()
    return merged


@dataclass(frozen=True)
class RollupPlan:
    """The rollup table to read and the part of the range made of its whole units."""

    table: str
    inner_start_ms: int
    inner_end_ms: int


def plan(query: SeriesQuery) -> RollupPlan | None:
    """The rollups that can answer `query` exactly, or None (it must read the points)."""
    last = query.point_value == "value" and query.time_aggregation == "last"
    if query.samples is not None or not (combined_in_numpy(query) or last):
        return None
    for unit, table in RESOLUTIONS:
        if query.step_ms % unit or query.bucket_origin_ms % unit:
            continue
        inner_start = -(-query.start_ms // unit) * unit
        inner_end = query.end_ms // unit * unit
        if inner_end <= inner_start:
            return None
        return RollupPlan(table, inner_start, inner_end)
    return None


# Aggregations combined in numpy rather than by a GROUP BY: a rollup query reads about one row per series
# and bucket already, and hashing those rows into groups cost more than the scan. The row's value `x` for
# each, and its count `n` of values.
_ROW_VALUE = {
    "value": {"avg": "sum", "sum": "sum", "min": "min", "max": "max", "count": "count"},
    "value_times_interval": {"avg": "sum_vi", "sum": "sum_vi", "count": "count"},
}


def combined_in_numpy(query: SeriesQuery) -> bool:
    return query.time_aggregation in _ROW_VALUE.get(query.point_value, {})


# The selected series' ids in a subquery `SELECT series_id FROM ...`, numbered as read_series rows them.
_ROW_NUMBER = "CAST(row_number() OVER (ORDER BY series_id) - 1 AS INTEGER)"


def rollup_rows_sql(
    query: SeriesQuery,
    rollup: RollupPlan,
    bucket: tuple[str, list[object]],
    selected: tuple[str, list[object]],
) -> tuple[str, list[object]]:
    """Rows (`r`, `c`, `x`, `n`: the series' row among the selected ones in series id order, the bucket's
    column, the row's value and its count of values) of the rollups for the whole units of the range and
    of the points for its partial edges, for `combine_rows`; and the parameters. See
    `rollup_last_sql`. Small integer indexes make the answer cheap to move and to place."""
    assert selected[0].startswith("SELECT series_id FROM "), selected[0]
    x = _ROW_VALUE[query.point_value][query.time_aggregation]
    bucket_sql, bucket_params = bucket
    selected_sql, selected_params = selected
    first = first_bucket(query.start_ms, query.step_ms, query.bucket_origin_ms)
    numbered = selected_sql.replace("SELECT series_id ", f"SELECT series_id, {_ROW_NUMBER} AS r ", 1)
    # The join with the numbered series selects the rows: filtering the union by the same series as well
    # probed a hash table twice per row (a third of the query's time on a day of 5-minute rollups).
    union, union_params = _union_sql(
        f"SELECT series_id, CAST(({{bucket}} - ?) // ? AS INTEGER) AS c, {x} AS x, count AS n FROM",
        "",
        query,
        rollup,
        (bucket_sql, [*bucket_params, first, query.step_ms]),
        None,
    )
    sql = f"SELECT r, c, x, CAST(n AS INTEGER) AS n FROM ({union}) JOIN ({numbered}) USING (series_id)"
    return sql, [*union_params, *selected_params]


def combine_rows(
    aggregation: str,
    rows: np.ndarray,
    columns: np.ndarray,
    x: np.ndarray,
    n: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray:
    """The bucket values of `rollup_rows_sql`'s rows: what the aggregation gives over their points (NaN
    for a bucket without rows, or without values where the aggregation needs some)."""
    cells = rows.astype(np.intp) * shape[1] + columns
    size = shape[0] * shape[1]
    # With weights, bincount sums in float64 (its stubs say integers).
    counts = np.asarray(np.bincount(cells, weights=n.astype(np.float64), minlength=size), np.float64)
    out: npt.NDArray[np.float64]
    if aggregation == "count":
        out = counts
        out[np.bincount(cells, minlength=size) == 0] = np.nan
    elif aggregation in ("min", "max"):
        empty = np.inf if aggregation == "min" else -np.inf
        out = np.full(size, empty)
        (np.minimum if aggregation == "min" else np.maximum).at(out, cells, np.nan_to_num(x, nan=empty))
        out[out == empty] = np.nan
    else:
        values = np.nan_to_num(x, nan=0.0) if np.isnan(x).any() else x
        out = np.asarray(np.bincount(cells, weights=values, minlength=size), np.float64)
        if aggregation == "avg":
            with np.errstate(invalid="ignore", divide="ignore"):
                out = out / counts
        out[counts == 0] = np.nan
    return out.reshape(shape)


def rollup_last_sql(
    query: SeriesQuery,
    rollup: RollupPlan,
    bucket: tuple[str, list[object]],
    selected: tuple[str, list[object]],
) -> tuple[str, list[object]]:
    """For `last`, which no sum combines: SQL with the shape of the points query (`series_id`, `bucket`,
    `v`) that reads the rollups for the whole units of the range and the points for its partial edges,
    and its parameters. `bucket` computes a bucket from `time_ms`; `selected` is a subquery of the
    selected series ids; both with their parameters."""
    return _union_sql(
        "SELECT series_id, {bucket} AS bucket, arg_max(last, last_time_ms) AS v FROM",
        " GROUP BY ALL",
        query,
        rollup,
        bucket,
        selected,
    )


def _union_sql(
    head: str,
    tail: str,
    query: SeriesQuery,
    rollup: RollupPlan,
    bucket: tuple[str, list[object]],
    selected: tuple[str, list[object]] | None,
) -> tuple[str, list[object]]:
    """Rows of the rollups and of the edges' points, of the `selected` series (None: of every series, for
    a caller that selects them itself)."""
    bucket_sql, bucket_params = bucket
    selected_sql, selected_params = ("", []) if selected is None else selected
    of_selected = "" if selected is None else f" AND series_id IN ({selected_sql})"
    sql = (
        head.format(bucket=bucket_sql) + " ("
        f"SELECT series_id, time_ms, sum, count, min, max, sum_vi, last, last_time_ms FROM {rollup.table} "
        f"WHERE org_id = ? AND time_ms >= ? AND time_ms < ?{of_selected} "
        f"UNION ALL SELECT series_id, time_ms, {_POINT_AS_ROW} FROM metric_points "
        "WHERE org_id = ? AND ((time_ms >= ? AND time_ms < ?) OR (time_ms >= ? AND time_ms < ?))"
        f"{of_selected}){tail}"
    )
    return sql, [
        *bucket_params,
        query.org_id,
        rollup.inner_start_ms,
        rollup.inner_end_ms,
        *selected_params,
        query.org_id,
        query.start_ms,
        rollup.inner_start_ms,
        rollup.inner_end_ms,
        query.end_ms,
        *selected_params,
    ]
