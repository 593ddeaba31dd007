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
    time_percentile,
)
from sextant.storage.duckdb.metric_rollups import combined_in_numpy, rollup_last_sql, rollup_rows_sql
from sextant.storage.duckdb.metric_rollups import plan as rollup_plan

_TIME_AGGREGATIONS = {
    "avg": "avg(v)",
    "sum": "sum(v)",
    "min": "min(v)",
    "max": "max(v)",
    "count": "count(v)",
    "last": "arg_max(v, time_ms)",
}


def time_aggregation_sql(aggregation: str) -> tuple[str, list[object]]:
    """The aggregate over `v` (and `time_ms`) for a time aggregation, and its parameters."""
    fraction = time_percentile(aggregation)
    if fraction is None:
        return _TIME_AGGREGATIONS[aggregation], []
    # Interpolated between the two nearest values, as numpy's default percentile and the samples path.
    return "quantile_cont(v, ?)", [fraction]


def _point_value_sql(query: SeriesQuery) -> str:
    if query.point_value == "counter_increase":
        return _COUNTER_INCREASE
    return "value" if query.point_value == "value" else "value * coalesce(interval_ms, 1000) / 1000.0"


# A point's increase since the previous point of its series in the range (see PointValue).
_PREVIOUS = "lag(value) OVER (PARTITION BY series_id ORDER BY time_ms)"
_COUNTER_INCREASE = (
    "CASE WHEN temporality = 'delta' THEN value "
    "WHEN kind = 'rate' THEN value * coalesce(interval_ms, 1000) / 1000.0 "
    f"WHEN {_PREVIOUS} IS NULL THEN 0.0 "
    f"WHEN value >= {_PREVIOUS} THEN value - {_PREVIOUS} "
    "ELSE value END"
)


def bucket_sql(query: SeriesQuery) -> tuple[str, list[object]]:
    """The start of the bucket of a point (`time_ms`), and its parameters."""
    if not query.bucket_origin_ms:
        return "time_ms // ? * ?", [query.step_ms, query.step_ms]
    origin = query.bucket_origin_ms % query.step_ms
    return "(time_ms - ?) // ? * ? + ?", [origin, query.step_ms, query.step_ms, origin]


@dataclass(frozen=True)
class CompiledSeriesQuery:
    series_sql: str
    series_params: list[object]
    points_sql: str
    points_params: list[object]
    # The points query returns rollup rows to combine (metric_rollups.combine_rows), not bucket values.
    rollup_rows: bool = False


def glob_to_like(pattern: str) -> str:
    """A `*` wildcard pattern as a LIKE pattern with `\\` as its escape character."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


# The tags a scope reads (see TagRegex): a data point attribute equal to a resource tag is one tag.
_SCOPE_TAGS = {
    "any": "tags",
    "resource": "resource_tags",
    "attribute": "list_filter(tags, lambda t: NOT list_contains(resource_tags, t))",
}


def _scoped_regex(node: TagRegex, params: list[object]) -> str:
    def matches(scope: str) -> str:
        params.extend([node.key + ":", len(node.key) + 2, node.regex])
        return (
            f"len(list_filter({_SCOPE_TAGS[scope]}, lambda t: starts_with(t, ?) "
            "AND regexp_full_match(substr(t, ?), ?))) > 0"
        )

    if node.scope != "auto":
        return matches(node.scope)
    params.append(node.key + ":")
    has_key = "len(list_filter(resource_tags, lambda t: starts_with(t, ?))) > 0"
    resource = matches("resource")
    return f"(CASE WHEN {has_key} THEN {resource} ELSE {matches('attribute')} END)"


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
        return _scoped_regex(node, params)
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
    selected, params, keys = _grouped_selection(query)
    rows = _GROUP_POINTS
    bucket, bucket_params = bucket_sql(query)
    bounds: list[object] = [*bucket_params, query.org_id, query.start_ms, query.end_ms]
    if query.value_filter is not None:
        if query.samples != "count":
            raise ValueError("a value filter counts samples: it needs samples='count'")
        op, threshold = query.value_filter
        sql = (
            f"WITH sel AS ({selected}) SELECT {keys}bucket, count(*) FILTER (WHERE s {_COMPARE[op]} ?) AS v "
            f"FROM (SELECT {keys}{bucket} AS bucket, unnest(samples) AS s {rows}) GROUP BY ALL"
        )
        return sql, [*params, float(threshold), *bounds]
    if query.samples in _SAMPLE_AGGREGATIONS:
        sql = (
            f"WITH sel AS ({selected}) SELECT {keys}{bucket} AS bucket, "
            f"{_SAMPLE_AGGREGATIONS[query.samples]} AS v {rows} GROUP BY ALL"
        )
        return sql, [*params, *bounds]
    quantile = float(query.samples.removeprefix("p")) / 100
    sql = (
        f"WITH sel AS ({selected}) SELECT {keys}bucket, quantile_cont(s, ?) AS v FROM ("
        f"SELECT {keys}{bucket} AS bucket, unnest(samples) AS s {rows}) GROUP BY ALL"
    )
    return sql, [*params, quantile, *bounds]


# The value filter's comparison as SQL, from a fixed set (never the caller's text).
_COMPARE = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}

_GROUP_POINTS = (
    "FROM metric_points AS p JOIN sel USING (series_id) WHERE p.org_id = ? AND time_ms >= ? AND time_ms < ?"
)


def _grouped_selection(query: SeriesQuery) -> tuple[str, list[object], str]:
    """The selected series with their group values `g0..gn` (for a CTE `sel`), its parameters, and the
    group columns as the start of a select list."""
    params: list[object] = []
    groups = []
    for key in query.group_by:
        params.extend([len(key) + 2, key + ":"])
        groups.append("list_extract([substr(t, ?) FOR t IN tags IF starts_with(t, ?)], 1)")
    params.extend([query.org_id, query.metric])
    selected = (
        f"SELECT series_id{''.join(f', {g} AS g{i}' for i, g in enumerate(groups))} FROM metric_series "
        f"WHERE org_id = ? AND metric = ? AND {compile_tag_filter(query.filter, params)}"
    )
    return selected, params, "".join(f"g{i}, " for i in range(len(groups)))


def compile_pooled_query(query: SeriesQuery) -> tuple[str, list[object]]:
    """One row per group and bucket (`g0..gn`, `bucket`, `v`): the time aggregation over the points of
    every series of the group together (`pool_groups`)."""
    if query.step_ms <= 0:
        raise ValueError("step_ms must be positive")
    selected, params, keys = _grouped_selection(query)
    aggregate, aggregate_params = time_aggregation_sql(query.time_aggregation)
    bucket, bucket_params = bucket_sql(query)
    sql = (
        f"WITH sel AS ({selected}) SELECT {keys}bucket, {aggregate} AS v FROM ("
        f"SELECT {keys}{bucket} AS bucket, time_ms, {_point_value_sql(query)} AS v "
        f"{_GROUP_POINTS}) GROUP BY ALL"
    )
    bounds = [*bucket_params, query.org_id, query.start_ms, query.end_ms]
    return sql, [*params, *aggregate_params, *bounds]


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
    value = _point_value_sql(query)
    if query.step_ms <= 0:
        raise ValueError("step_ms must be positive")
    bucket, bucket_params = bucket_sql(query)
    selected = (f"SELECT series_id FROM metric_series WHERE {where}", where_params)
    rollup = rollup_plan(query)
    if rollup is not None:
        rows = combined_in_numpy(query)
        compile_points = rollup_rows_sql if rows else rollup_last_sql
        points_sql, points_params = compile_points(query, rollup, (bucket, bucket_params), selected)
        return CompiledSeriesQuery(
            series_sql, series_params + where_params, points_sql, points_params, rollup_rows=rows
        )
    aggregate, aggregate_params = time_aggregation_sql(query.time_aggregation)
    points_sql = (
        f"SELECT series_id, {bucket} AS bucket, "
        f"{aggregate} AS v "
        f"FROM (SELECT series_id, time_ms, {value} AS v FROM metric_points "
        "WHERE org_id = ? AND time_ms >= ? AND time_ms < ? "
        f"AND series_id IN (SELECT series_id FROM metric_series WHERE {where})) "
        "GROUP BY ALL"
    )
    return CompiledSeriesQuery(
        series_sql,
        series_params + where_params,
        points_sql,
        [
            *bucket_params,
            *aggregate_params,
            query.org_id,
            query.start_ms,
            query.end_ms,
            *where_params,
        ],
    )


# Per point with bucket counts, the increase of each count since the previous such point of its series in
# the range: the counts as they are for delta temporality, zeros for the series' first point (nothing to
# compare with), the counts again where the layout changed or any count dropped (a reset).
_HISTOGRAM_INCREASES = """
CASE WHEN temporality = 'delta' THEN c
     WHEN prev IS NULL THEN list_transform(c, lambda x: 0)
     WHEN len(prev) <> len(c) THEN c
     WHEN list_bool_and(list_transform(list_zip(c, prev), lambda z: z[1] >= z[2]))
          THEN list_transform(list_zip(c, prev), lambda z: z[1] - z[2])
     ELSE c END
"""


def compile_histogram_query(query: SeriesQuery) -> tuple[str, list[object]]:
    """One row per selected series, bucket and bucket layout (`series_id`, `tags`, `bucket`, `bounds`,
    `counts`): the increases of the series' histogram bucket counts (see _HISTOGRAM_INCREASES) over the
    points in the bucket, added up count by count. Points without bucket counts are left out."""
    if query.step_ms <= 0:
        raise ValueError("step_ms must be positive")
    params: list[object] = [query.org_id, query.metric]
    selected = (
        "SELECT series_id, tags FROM metric_series "
        f"WHERE org_id = ? AND metric = ? AND {compile_tag_filter(query.filter, params)}"
    )
    bucket, bucket_params = bucket_sql(query)
    sql = f"""
WITH sel AS ({selected}),
pts AS (
    SELECT series_id, time_ms, temporality, coalesce(bounds, []) AS bounds, bucket_counts AS c,
           lag(bucket_counts) OVER (PARTITION BY series_id ORDER BY time_ms) AS prev
    FROM metric_points
    WHERE org_id = ? AND time_ms >= ? AND time_ms < ? AND len(bucket_counts) > 0
      AND series_id IN (SELECT series_id FROM sel)
),
increases AS (SELECT series_id, {bucket} AS bucket, bounds, {_HISTOGRAM_INCREASES} AS d FROM pts),
summed AS (
    SELECT series_id, bucket, bounds, i, sum(x)::DOUBLE AS total
    FROM (SELECT series_id, bucket, bounds, unnest(d) AS x, generate_subscripts(d, 1) AS i FROM increases)
    GROUP BY ALL
)
SELECT s.series_id, sel.tags, s.bucket, s.bounds, list(s.total ORDER BY s.i) AS counts
FROM summed AS s JOIN sel USING (series_id)
GROUP BY s.series_id, sel.tags, s.bucket, s.bounds
ORDER BY s.series_id, s.bucket
"""
    return sql, [*params, query.org_id, query.start_ms, query.end_ms, *bucket_params]
