"""SeriesQuery → DuckDB SQL: select the series by their tag list, roll their points up into buckets.

User input only ever reaches DuckDB as bound parameters (also inside list lambdas); tag keys and patterns
are values, never identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sextant.query.metrics import (
    AllTags,
    SeriesQuery,
    TagAnd,
    TagCompare,
    TagFilter,
    TagGlob,
    TagNot,
    TagOr,
    TagRegex,
)

_TIME_AGGREGATIONS = {
    "avg": "avg(v)",
    "sum": "sum(v)",
    "min": "min(v)",
    "max": "max(v)",
    "count": "count(v)",
    "last": "arg_max(v, time_ms)",
}


@dataclass(frozen=True)
class CompiledSeriesQuery:
    series_sql: str
    series_params: list[object]
    points_sql: str
    points_params: list[object]


def glob_to_like(pattern: str) -> str:
    """A `*` wildcard pattern as a LIKE pattern with `\\` as its escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def compile_tag_filter(node: TagFilter, params: list[object]) -> str:
    """A boolean SQL expression over the column `tags` (VARCHAR[]); appends its parameters."""
    if isinstance(node, AllTags):
        return "TRUE"
    if isinstance(node, TagGlob):
        if "*" not in node.pattern:
            params.append(node.pattern)
            return "list_contains(tags, ?)"
        params.append(glob_to_like(node.pattern))
        return "len(list_filter(tags, lambda t: t LIKE ? ESCAPE '\\')) > 0"
    if isinstance(node, TagRegex):
        params.extend([node.key + ":", len(node.key) + 2, node.regex])
        return (
            "len(list_filter(tags, lambda t: starts_with(t, ?) AND regexp_full_match(substr(t, ?), ?))) > 0"
        )
    if isinstance(node, TagCompare):
        params.extend([node.key + ":", len(node.key) + 2, node.value])
        return (
            "len(list_filter(tags, lambda t: starts_with(t, ?) "
            f"AND TRY_CAST(substr(t, ?) AS DOUBLE) {node.op} ?)) > 0"
        )
    if isinstance(node, TagNot):
        return f"NOT ({compile_tag_filter(node.operand, params)})"
    if isinstance(node, TagAnd | TagOr):
        joiner = " AND " if isinstance(node, TagAnd) else " OR "
        if not node.operands:
            return "TRUE" if isinstance(node, TagAnd) else "FALSE"
        return "(" + joiner.join(compile_tag_filter(op, params) for op in node.operands) + ")"
    raise TypeError(f"unknown tag filter {node!r}")


_SAMPLE_AGGREGATIONS = {
    "avg": "sum(value) / nullif(sum(count), 0)",
    "sum": "sum(value)",
    "count": "sum(count)",
    "min": "min(min)",
    "max": "max(max)",
}


def compile_samples_query(query: SeriesQuery) -> tuple[str, list[object]]:
    """One row per group and bucket (`g0..gn`, `bucket`, `v`), combining the distribution points of every
    series of the group: sums and counts for avg/sum/count, min and max, or a percentile of all samples."""
    assert query.samples is not None
    params: list[object] = []
    groups = []
    for key in query.group_by:
        params.extend([len(key) + 2, key + ":"])
        groups.append("list_extract([substr(t, ?) FOR t IN tags IF starts_with(t, ?)], 1)")
    where: list[object] = [query.org_id, query.metric]
    selected = (
        f"SELECT series_id{''.join(f', {g} AS g{i}' for i, g in enumerate(groups))} FROM metric_series "
        f"WHERE org_id = ? AND metric = ? AND {compile_tag_filter(query.filter, where)}"
    )
    keys = "".join(f"g{i}, " for i in range(len(groups)))
    rows = (
        "FROM metric_points AS p JOIN sel USING (series_id) "
        "WHERE p.org_id = ? AND time_ms >= ? AND time_ms < ?"
    )
    bounds: list[object] = [query.step_ms, query.step_ms, query.org_id, query.start_ms, query.end_ms]
    if query.samples in _SAMPLE_AGGREGATIONS:
        sql = (
            f"WITH sel AS ({selected}) SELECT {keys}time_ms // ? * ? AS bucket, "
            f"{_SAMPLE_AGGREGATIONS[query.samples]} AS v {rows} GROUP BY ALL"
        )
        return sql, [*params, *where, *bounds]
    quantile = float(query.samples.removeprefix("p")) / 100
    sql = (
        f"WITH sel AS ({selected}) SELECT {keys}bucket, quantile_cont(s, ?) AS v FROM ("
        f"SELECT {keys}time_ms // ? * ? AS bucket, unnest(samples) AS s {rows}) GROUP BY ALL"
    )
    return sql, [*params, *where, quantile, *bounds]


def compile_series_query(query: SeriesQuery) -> CompiledSeriesQuery:
    series_params: list[object] = []
    groups = []
    for key in query.group_by:
        series_params.extend([len(key) + 2, key + ":"])
        groups.append("list_extract([substr(t, ?) FOR t IN tags IF starts_with(t, ?)], 1)")
    where_params: list[object] = [query.org_id, query.metric]
    where = "org_id = ? AND metric = ? AND " + compile_tag_filter(query.filter, where_params)
    group_columns = "".join(f", {sql} AS g{i}" for i, sql in enumerate(groups))
    series_sql = f"SELECT series_id, tags{group_columns} FROM metric_series WHERE {where} ORDER BY series_id"
    value = "value" if query.point_value == "value" else "value * coalesce(interval_ms, 1000) / 1000.0"
    if query.step_ms <= 0:
        raise ValueError("step_ms must be positive")
    points_sql = (
        "SELECT series_id, time_ms // ? * ? AS bucket, "
        f"{_TIME_AGGREGATIONS[query.time_aggregation]} AS v "
        f"FROM (SELECT series_id, time_ms, {value} AS v FROM metric_points "
        "WHERE org_id = ? AND time_ms >= ? AND time_ms < ? "
        f"AND series_id IN (SELECT series_id FROM metric_series WHERE {where})) "
        "GROUP BY ALL"
    )
    return CompiledSeriesQuery(
        series_sql,
        series_params + where_params,
        points_sql,
        [query.step_ms, query.step_ms, query.org_id, query.start_ms, query.end_ms, *where_params],
    )
