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
from sextant.query.planning import bucket_count
from sextant.storage.duckdb.fields import (
    COLUMNS,
    KEY_COLUMNS,
    Params,
    Schema,
    field_value,
    group_key,
    json_path,
)
from sextant.storage.duckdb.filter_sql import compile_filter


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: dict[str, object]
    # Attribute paths read from JSON: the store gives them their own columns for next time.
    from_json: frozenset[str] = frozenset()


def _scope(org_id: int, source: str, start_ms: int, end_ms: int, params: Params) -> str:
    floor = max(start_ms, retention_floor_ms(now_ms()))
    # While the store holds events of no other source, testing the source of every row is wasted work.
    only_source = params.schema.sources <= {source}
    source_test = "" if only_source else f" AND source = {params.add(source)}"
    return (
        f"org_id = {params.add(org_id)}{source_test} "
        f"AND time_ms >= {params.add(floor)} AND time_ms < {params.add(end_ms)}"
    )


def _entity_column(entity: Field) -> str:
    if entity.path not in ("usr.id", "account.id"):
        raise ValueError(f"audiences and occurrences count users or accounts, not {entity.path!r}")
    return KEY_COLUMNS.get(entity.path) or COLUMNS[entity.path]


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
            # Stored sets hold the ids themselves.
            return f"{COLUMNS[member.entity.path]} IN (SELECT unnest({params.add(list(member.ids))}))"
        if isinstance(expr, SetNot):
            # The complement among known entities: an event without that entity is in neither set.
            known = " AND ".join(f"{c} IS NOT NULL" for c in sorted(entities(expr.operand)))
            return f"({known} AND NOT coalesce({compile_expr(expr.operand)}, false))"
        joiner = " AND " if isinstance(expr, SetAnd) else " OR "
        assert isinstance(expr, (SetAnd, SetOr))
        return "(" + joiner.join(compile_expr(o) for o in expr.operands) + ")"

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


def _aggregation_input(agg: Aggregation, params: Params) -> tuple[str | None, str | None]:
    """The per-event input of an aggregation: a scalar expression, and for attribute cardinality also
    the array elements (whose values each count)."""
    if agg.kind == "count":
        return None, None
    assert agg.field is not None
    if agg.kind == "cardinality":
        key = KEY_COLUMNS.get(agg.field.path)
        return (key, None) if key else group_key(agg.field, params)
    return field_value(agg.field, params).scalar.number_sql, None


def _aggregate(agg: Aggregation, column: str | None, elements: str | None, params: Params) -> str:
    if agg.kind == "count":
        return "count(*)"
    assert column is not None
    if agg.kind == "cardinality":
        if elements is None:
            return f"count(DISTINCT {column})"
        return f"length(list_distinct(flatten(list(coalesce({elements}, [{column}])))))"
    if agg.kind == "percentile":
        assert agg.quantile is not None
        return f"quantile_cont({column}, {params.add(agg.quantile)})"
    return f"{agg.kind}({column})"


def _counts_qualifying_entities(q: EventQuery) -> bool:
    return (
        q.occurrence is not None
        and not q.group_by
        and q.interval_ms is None
        and q.aggregation == Aggregation("cardinality", q.occurrence.entity)
    )


BITMAP_BUDGET_BYTES = 128 * 1024 * 1024


def _bitmap_cardinality(q: EventQuery, schema: Schema) -> int:
    """The largest user key when distinct users are best counted with one bitmap per group (exact, and
    twice as fast as hashing), or 0. Only for the final aggregation without facets, where the number of
    groups (time buckets) is known, so the bitmaps fit in BITMAP_BUDGET_BYTES."""
    if q.group_by or q.aggregation != Aggregation("cardinality", Field("usr.id")) or schema.max_user_key < 1:
        return 0
    groups = 1 if q.interval_ms is None else bucket_count(q.start_ms, q.end_ms, q.interval_ms)
    return schema.max_user_key if groups * (schema.max_user_key // 8 + 1) <= BITMAP_BUDGET_BYTES else 0


def compile_event_query(q: EventQuery, schema: Schema) -> Compiled:
    params = Params(schema=schema)
    # Each distinct aggregation gets one input column and one SQL text, so that ranking groups by the
    # aggregation being computed (the usual case) lets DuckDB compute it once.
    aggregations = list(dict.fromkeys([q.aggregation, *(g.rank_by for g in q.group_by)]))
    if _counts_qualifying_entities(q):
        assert q.occurrence is not None
        # "How many users qualify": the qualifying set is the answer; no need to go back to their events.
        ctes, _ = _selected(q, _entity_column(q.occurrence.entity), params)
        selected, qualified = ctes[0], ctes[1]
        sql = f"WITH {selected}, {qualified} SELECT count(*) AS value FROM qualified"
        return Compiled(sql, params.used_in(sql), frozenset(params.from_json))
    select = ["time_ms"]
    inputs: list[tuple[str | None, str | None]] = []
    for i, agg in enumerate(aggregations):
        scalar, elements = _aggregation_input(agg, params)
        inputs.append((f"a{i}" if scalar else None, f"ae{i}" if elements else None))
        if scalar:
            select.append(f"{scalar} AS a{i}")
        if elements:
            select.append(f"{elements} AS ae{i}")
    texts: dict[int, str] = {}
    keys = []
    for j, g in enumerate(q.group_by):
        scalar, elements = group_key(g.field, params)
        select.append(f"{scalar} AS ks{j}")
        keys.append(elements is not None)
        if elements is not None:
            select.append(f"{elements} AS kl{j}")
    if q.occurrence is not None:
        column = _entity_column(q.occurrence.entity)
        if column not in select:
            select.append(column)
    ctes, source = _selected(q, ", ".join(select), params)
    bitmap = _bitmap_cardinality(q, params.schema)

    def agg_sql(agg: Aggregation) -> str:
        i = aggregations.index(agg)
        if i not in texts:
            if bitmap and agg == q.aggregation:
                texts[i] = f"coalesce(bit_count(bitstring_agg({inputs[i][0]}, 1, {params.add(bitmap)})), 0)"
            else:
                texts[i] = _aggregate(agg, inputs[i][0], inputs[i][1], params)
        return texts[i]

    names = [f"k{j}" for j in range(len(q.group_by))]
    if q.group_by:
        for j, g in enumerate(q.group_by):
            ctes.append(_keyed_level(j, g.include_missing, g.missing_label, keys[j], source, params))
            source = f"keyed{j}"
        previous: str | None = None
        # When the last level ranks its groups by the very aggregation asked for (the usual case) and no
        # time buckets are wanted, ranking already computed the answer: one pass instead of two.
        last = len(q.group_by) - 1
        single_pass = q.interval_ms is None and q.group_by[last].rank_by == q.aggregation
        for j, g in enumerate(q.group_by):
            order = "DESC" if g.descending else "ASC"
            prefix = ", ".join(names[: j + 1])
            ranks = "".join(f", r{i}" for i in range(j))
            source_j = (
                source if previous is None else f"{source} JOIN {previous} USING ({', '.join(names[:j])})"
            )
            partition = f"PARTITION BY {', '.join(names[:j])} " if j else ""
            value = f", {agg_sql(q.aggregation)} AS value" if single_pass and j == last else ""
            ctes.append(
                f"level{j} AS (SELECT * FROM (SELECT {prefix}{ranks}{value}, row_number() OVER ({partition}"
                f"ORDER BY {agg_sql(g.rank_by)} {order} NULLS LAST, k{j} ASC) AS r{j} "
                f"FROM {source_j} GROUP BY {prefix}{ranks}) WHERE r{j} <= {params.add(g.limit)})"
            )
            previous = f"level{j}"
        if single_pass:
            ranked = ", ".join(f"r{j}" for j in range(len(names)))
            sql = f"WITH {', '.join(ctes)} SELECT {', '.join(names)}, value FROM {previous} ORDER BY {ranked}"
            return Compiled(sql, params.used_in(sql), frozenset(params.from_json))
        source = f"{source} JOIN {previous} USING ({', '.join(names)})"
    outputs = list(names)
    order_by = [f"r{j}" for j in range(len(names))]
    if q.interval_ms is not None:
        outputs.append(f"time_ms - (time_ms % {params.add(q.interval_ms)}) AS bucket")
        order_by.append("bucket")
    grouping = [*names, *order_by]
    group = f" GROUP BY {', '.join(grouping)}" if grouping else ""
    order = f" ORDER BY {', '.join(order_by)}" if order_by else ""
    sql = (
        f"WITH {', '.join(ctes)} "
        f"SELECT {', '.join([*outputs, f'{agg_sql(q.aggregation)} AS value'])} FROM {source}{group}{order}"
    )
    return Compiled(sql, params.used_in(sql), frozenset(params.from_json))


def _keyed_level(
    j: int, include_missing: bool, missing_label: str, has_elements: bool, source: str, params: Params
) -> str:
    """Rows of `source` with the key `k{j}`: scalar values as they are, each element of an array as its
    own row (an event with several values belongs to several groups), a missing value as the label."""
    drop = f"ks{j}, kl{j}" if has_elements else f"ks{j}"
    key = f"coalesce(ks{j}, {params.add(missing_label)})" if include_missing else f"ks{j}"
    scalar_rows = f"SELECT * EXCLUDE ({drop}), {key} AS k{j} FROM {source}"
    conditions = [f"kl{j} IS NULL"] if has_elements else []
    if not include_missing:
        conditions.append(f"ks{j} IS NOT NULL")
    if conditions:
        scalar_rows += " WHERE " + " AND ".join(conditions)
    if not has_elements:
        return f"keyed{j} AS ({scalar_rows})"
    array_rows = f"SELECT * EXCLUDE ({drop}), unnest(kl{j}) AS k{j} FROM {source} WHERE kl{j} IS NOT NULL"
    return f"keyed{j} AS ({scalar_rows} UNION ALL BY NAME {array_rows})"


def compile_event_list(q: EventListQuery, schema: Schema) -> tuple[Compiled, Compiled]:
    """The page of events and the total count of events matching, before the limit."""
    params = Params(schema=schema)
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
        # Numbers in numeric order first, then everything else by its text.
        v = field_value(q.sort_field, params)
        sort = (
            f"{v.scalar.number_sql} {order} NULLS LAST, {v.scalar.text_sql} {order} NULLS LAST, "
            f"time_ms {order}, event_id {order}"
        )
    standard = ", ".join(f'{column} AS "{path}"' for path, column in COLUMNS.items())
    sql = (
        head + f"SELECT event_id, time_ms, {standard}, "
        f"CAST(attributes AS VARCHAR) AS attributes{''.join(', ' + c for c in columns)} "
        f"FROM {source} ORDER BY {sort} LIMIT {params.add(q.limit)}"
    )
    if q.offset:
        sql += f" OFFSET {params.add(q.offset)}"
    page = Compiled(sql, params.used_in(sql), frozenset(params.from_json))
    total_params = Params(schema=schema)
    total_head, total_source = _list_source(q, total_params)
    total_sql = total_head + f"SELECT count(*) AS total FROM {total_source}"
    total = Compiled(total_sql, total_params.used_in(total_sql))
    return page, total


def _list_source(q: EventListQuery, params: Params) -> tuple[str, str]:
    ctes, source = _selected(q, "*", params)
    return f"WITH {', '.join(ctes)} ", source


def _selected(q: EventQuery | EventListQuery, columns: str, params: Params) -> tuple[list[str], str]:
    """CTEs of the events a query reads (scope, search, audience, occurrences) and the last one's name."""
    where = _selection(q.org_id, q.source, q.start_ms, q.end_ms, q.filter, q.audience, params)
    ctes = [f"selected AS (SELECT {columns} FROM events WHERE {where})"]
    if q.occurrence is None:
        return ctes, "selected"
    ctes.extend(_occurrence_cte(q.occurrence, params))
    return ctes, "kept"
