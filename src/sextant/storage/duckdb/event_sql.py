"""Compiling event queries (audiences, occurrences, nested top-N group-bys, aggregations) to DuckDB SQL.

Statements read events only through `_scope`, which writes the organization, source, retention and time
range conditions, so no query can leave its tenant. Results come back as columns: `k0..kn` (group
values), `bucket` (timeseries) and `value`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sextant.core.timeutil import now_ms, retention_floor_ms
from sextant.query.events import (
    Aggregation,
    Audience,
    AudienceExpr,
    EntitiesMatching,
    EventListQuery,
    EventQuery,
    Occurrence,
    SetAnd,
    SetNot,
    SetOr,
    SetRef,
)
from sextant.query.filters import Field, Filter
from sextant.storage.duckdb.filter_sql import COLUMNS, Params, compile_filter, json_path

_NUMERIC_TYPES = "('BIGINT', 'UBIGINT', 'DOUBLE')"


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: dict[str, object]


def _scope(org_id: int, source: str, start_ms: int, end_ms: int, params: Params) -> str:
    floor = max(start_ms, retention_floor_ms(now_ms()))
    return (
        f"org_id = {params.add(org_id)} AND source = {params.add(source)} "
        f"AND time_ms >= {params.add(floor)} AND time_ms < {params.add(end_ms)}"
    )


def _entity_column(entity: Field) -> str:
    column = COLUMNS.get(entity.path)
    if column not in ("usr_id", "account_id"):
        raise ValueError(f"audiences and occurrences count users or accounts, not {entity.path!r}")
    return column


def _audience_sql(audience: Audience, scope: str, params: Params) -> str:
    def entities(expr: AudienceExpr) -> set[str]:
        if isinstance(expr, SetRef):
            return {_entity_column(audience.sets[expr.name].entity)}
        if isinstance(expr, SetNot):
            return entities(expr.operand)
        return set().union(*(entities(o) for o in expr.operands))

    def compile_expr(expr: AudienceExpr) -> str:
        if isinstance(expr, SetRef):
            member = audience.sets[expr.name]
            column = _entity_column(member.entity)
            if isinstance(member, EntitiesMatching):
                inner = compile_filter(member.filter, params)
                members = f"SELECT {column} FROM events WHERE {scope} AND {inner} AND {column} IS NOT NULL"
                return f"{column} IN ({members})"
            return f"{column} IN (SELECT unnest({params.add(list(member.ids))}))"
        if isinstance(expr, SetNot):
            # The complement among known entities: an event without that entity is in neither set.
            known = " AND ".join(f"{c} IS NOT NULL" for c in sorted(entities(expr.operand)))
            return f"({known} AND NOT coalesce({compile_expr(expr.operand)}, false))"
        joiner = " AND " if isinstance(expr, SetAnd) else " OR "
        assert isinstance(expr, (SetAnd, SetOr))
        return "(" + joiner.join(f"coalesce({compile_expr(o)}, false)" for o in expr.operands) + ")"

    return compile_expr(audience.formula)


def _selection(
    org_id: int,
    source: str,
    start_ms: int,
    end_ms: int,
    flt: Filter,
    audience: Audience | None,
    params: Params,
) -> str:
    """The WHERE condition selecting events: scope, search filter, audience."""
    scope = _scope(org_id, source, start_ms, end_ms, params)
    parts = [scope, compile_filter(flt, params)]
    if audience is not None:
        parts.append(_audience_sql(audience, scope, params))
    return " AND ".join(parts)


def _occurrence_cte(occurrence: Occurrence, params: Params) -> tuple[str, str]:
    """CTEs keeping only events of entities whose selected-event count satisfies the condition."""
    column = _entity_column(occurrence.entity)
    op = "=" if occurrence.op == "=" else occurrence.op
    qualified = (
        f"qualified AS (SELECT {column} FROM selected WHERE {column} IS NOT NULL "
        f"GROUP BY {column} HAVING count(*) {op} {params.add(occurrence.count)})"
    )
    kept = f"kept AS (SELECT * FROM selected SEMI JOIN qualified USING ({column}))"
    return qualified, kept


def _key_list(f: Field, params: Params) -> str:
    """Every value of the field on the row, as a list (a missing field is [NULL], an array its elements)."""
    column = COLUMNS.get(f.path)
    if column is not None:
        return f"[{column}]"
    p = params.add(json_path(f.path))
    elements = params.add(json_path(f.path) + "[*]")
    return (
        f"CASE WHEN json_type(attributes, {p}) = 'ARRAY' AND json_array_length(attributes, {p}) > 0 "
        f"THEN json_extract_string(attributes, {elements}) ELSE [json_extract_string(attributes, {p})] END"
    )


def _measure(f: Field, params: Params) -> str:
    """The field as a number, or NULL when it is not a JSON number (strings and arrays are not measures)."""
    column = COLUMNS.get(f.path)
    if column is not None:
        return "CAST(NULL AS DOUBLE)"
    p = params.add(json_path(f.path))
    return (
        f"CASE WHEN json_type(attributes, {p}) IN {_NUMERIC_TYPES} "
        f"THEN CAST(json_extract_string(attributes, {p}) AS DOUBLE) END"
    )


def _aggregation_input(agg: Aggregation, params: Params) -> str | None:
    if agg.kind == "count":
        return None
    assert agg.field is not None
    if agg.kind == "cardinality":
        column = COLUMNS.get(agg.field.path)
        return column if column is not None else _key_list(agg.field, params)
    return _measure(agg.field, params)


def _aggregate(agg: Aggregation, column: str | None, params: Params) -> str:
    if agg.kind == "count":
        return "count(*)"
    assert column is not None and agg.field is not None
    if agg.kind == "cardinality":
        if agg.field.path in COLUMNS:
            return f"count(DISTINCT {column})"
        return f"length(list_distinct(flatten(list({column}))))"
    if agg.kind == "percentile":
        assert agg.quantile is not None
        return f"quantile_cont({column}, {params.add(agg.quantile)})"
    return f"{agg.kind}({column})"


def compile_event_query(q: EventQuery) -> Compiled:
    params = Params()
    aggregations = [q.aggregation, *(g.rank_by for g in q.group_by)]
    inputs = [_aggregation_input(a, params) for a in aggregations]
    select = ["time_ms"]
    select += [f"{expr} AS a{i}" for i, expr in enumerate(inputs) if expr is not None]
    select += [f"{_key_list(g.field, params)} AS kl{j}" for j, g in enumerate(q.group_by)]
    if q.occurrence is not None:
        column = _entity_column(q.occurrence.entity)
        if column not in select:
            select.append(column)
    where = _selection(q.org_id, q.source, q.start_ms, q.end_ms, q.filter, q.audience, params)
    ctes = [f"selected AS (SELECT {', '.join(select)} FROM events WHERE {where})"]
    source = "selected"
    if q.occurrence is not None:
        ctes.extend(_occurrence_cte(q.occurrence, params))
        source = "kept"

    def agg_sql(i: int) -> str:
        return _aggregate(aggregations[i], f"a{i}" if inputs[i] is not None else None, params)

    keys = [f"k{j}" for j in range(len(q.group_by))]
    if q.group_by:
        # One unnest per level, each in its own SELECT, so that multi-valued facets multiply rather than zip.
        relation = source
        for j, g in enumerate(q.group_by):
            label = params.add(g.missing_label)
            key = f"coalesce(k{j}, {label})" if g.include_missing else f"k{j}"
            unnested = f"(SELECT *, unnest(kl{j}) AS k{j} FROM {relation})"
            relation = f"(SELECT * REPLACE ({key} AS k{j}) FROM {unnested} WHERE {key} IS NOT NULL)"
        lists = ", ".join(f"kl{j}" for j in range(len(q.group_by)))
        ctes.append(f"keyed AS (SELECT * EXCLUDE ({lists}) FROM {relation})")
        previous: str | None = None
        for j, g in enumerate(q.group_by):
            order = "DESC" if g.descending else "ASC"
            prefix = ", ".join(keys[: j + 1])
            ranks = "".join(f", r{i}" for i in range(j))
            source_j = "keyed" if previous is None else f"keyed JOIN {previous} USING ({', '.join(keys[:j])})"
            partition = f"PARTITION BY {', '.join(keys[:j])} " if j else ""
            ctes.append(
                f"level{j} AS (SELECT * FROM (SELECT {prefix}{ranks}, row_number() OVER ({partition}"
                f"ORDER BY {agg_sql(j + 1)} {order} NULLS LAST, k{j} ASC) AS r{j} "
                f"FROM {source_j} GROUP BY {prefix}{ranks}) WHERE r{j} <= {params.add(g.limit)})"
            )
            previous = f"level{j}"
        source = f"keyed JOIN {previous} USING ({', '.join(keys)})"
    outputs = list(keys)
    order_by = [f"r{j}" for j in range(len(keys))]
    if q.interval_ms is not None:
        outputs.append(f"time_ms - (time_ms % {params.add(q.interval_ms)}) AS bucket")
        order_by.append("bucket")
    grouping = outputs + order_by[: len(keys)]
    group = f" GROUP BY {', '.join(g.split(' AS ')[-1] for g in grouping)}" if grouping else ""
    order = f" ORDER BY {', '.join(order_by)}" if order_by else ""
    sql = (
        f"WITH {', '.join(ctes)} "
        f"SELECT {', '.join([*outputs, f'{agg_sql(0)} AS value'])} FROM {source}{group}{order}"
    )
    return Compiled(sql, params.values)


def compile_event_list(q: EventListQuery) -> tuple[Compiled, Compiled]:
    """The page of events and the total count of events matching, before the limit."""
    params = Params()
    head, source = _list_source(q, params)
    columns = []
    for i, f in enumerate(q.columns):
        column = COLUMNS.get(f.path)
        expr = (
            f"to_json({column})" if column else f"json_extract(attributes, {params.add(json_path(f.path))})"
        )
        columns.append(f"CAST({expr} AS VARCHAR) AS c{i}")
    order = "DESC" if q.descending else "ASC"
    if q.sort_field is None:
        sort = f"time_ms {order}, event_id {order}"
    else:
        column = COLUMNS.get(q.sort_field.path)
        if column is not None:
            sort = f"{column} {order} NULLS LAST"
        else:
            p = params.add(json_path(q.sort_field.path))
            sort = (
                f"(CASE WHEN json_type(attributes, {p}) IN {_NUMERIC_TYPES} "
                f"THEN CAST(json_extract_string(attributes, {p}) AS DOUBLE) END) {order} NULLS LAST, "
                f"json_extract_string(attributes, {p}) {order} NULLS LAST"
            )
        sort += f", time_ms {order}, event_id {order}"
    standard = ", ".join(f'{column} AS "{path}"' for path, column in COLUMNS.items())
    page = Compiled(
        head + f"SELECT event_id, time_ms, {standard}, "
        f"CAST(attributes AS VARCHAR) AS attributes{''.join(', ' + c for c in columns)} "
        f"FROM {source} ORDER BY {sort} LIMIT {params.add(q.limit)}",
        params.values,
    )
    total_params = Params()
    total_head, total_source = _list_source(q, total_params)
    total = Compiled(total_head + f"SELECT count(*) AS total FROM {total_source}", total_params.values)
    return page, total


def _list_source(q: EventListQuery, params: Params) -> tuple[str, str]:
    where = _selection(q.org_id, q.source, q.start_ms, q.end_ms, q.filter, q.audience, params)
    ctes = [f"selected AS (SELECT * FROM events WHERE {where})"]
    source = "selected"
    if q.occurrence is not None:
        ctes.extend(_occurrence_cte(q.occurrence, params))
        source = "kept"
    return f"WITH {', '.join(ctes)} ", source
