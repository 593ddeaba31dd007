"""Compiling the filter IR to a DuckDB boolean expression over a row of `events`.

Every value, and every attribute path, is a bound parameter: user input never becomes SQL text.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sextant.query import filters as F
from sextant.storage.duckdb.fields import COLUMNS, NUMERIC_TYPES, Params, element_value, field_value


def _on_values(f: F.Field, params: Params, scalar_predicate: Any) -> str:
    """`scalar_predicate(type_sql, text_sql)` over the field's value, or over any element of an array."""
    v = field_value(f, params)
    scalar = scalar_predicate(v.type_sql, v.text_sql)
    if v.array_sql is None:
        return f"coalesce({scalar}, false)"
    element = scalar_predicate(*element_value())
    return (
        f"(CASE WHEN {v.is_array_sql} "
        f"THEN coalesce(list_bool_or(list_transform({v.array_sql}, lambda e: {element})), false) "
        f"ELSE coalesce({scalar}, false) END)"
    )


# --- filters ---------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _as_number(text: str) -> float | None:
    if not _NUMBER.match(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def like_pattern(pattern: str) -> str:
    """A search wildcard pattern (`*`, `?`, backslash escapes) as a LIKE pattern with `\\` as escape."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            literal = next(chars, "\\")
            out.append("\\" + literal if literal in "%_\\" else literal)
        elif c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c in "%_":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


_WORD = "[A-Za-z0-9_]"


def free_text_regex(text: str, wildcard: bool) -> str:
    """RE2/Python regex matching `text` as a whole word; with `wildcard`, `*`/`?` match word characters."""
    parts: list[str] = []
    chars = iter(text)
    for c in chars:
        if c == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif wildcard and c == "*":
            parts.append(f"{_WORD}*")
        elif wildcard and c == "?":
            parts.append(_WORD)
        else:
            parts.append(re.escape(c))
    return rf"(?i)(^|[^A-Za-z0-9_]){''.join(parts)}($|[^A-Za-z0-9_])"


def _term(t: F.Term, params: Params) -> str:
    assert t.field is not None
    text = params.add(t.text)
    number = _as_number(t.text)
    if number is None:
        # Strings compare as text; booleans' text is "true"/"false", so `@a:true` matches both.
        return _on_values(
            t.field, params, lambda ty, tx: f"({ty} IN ('VARCHAR', 'BOOLEAN') AND {tx} = {text})"
        )
    num = params.add(number)
    return _on_values(
        t.field,
        params,
        lambda ty, tx: (
            f"(({ty} = 'VARCHAR' AND {tx} = {text}) "
            f"OR ({ty} IN ({NUMERIC_TYPES}) AND TRY_CAST({tx} AS DOUBLE) = {num}))"
        ),
    )


def _wildcard(w: F.Wildcard, params: Params) -> str:
    assert w.field is not None
    pattern = params.add(like_pattern(w.pattern))
    return _on_values(w.field, params, lambda ty, tx: f"({ty} <> 'NULL' AND {tx} LIKE {pattern} ESCAPE '\\')")


def _compare_one(op: str, bound: F.Bound, params: Params) -> Any:
    if isinstance(bound, float):
        num = params.add(bound)
        text = params.add(_number_text(bound))
        return lambda ty, tx: (
            f"(CASE WHEN {ty} IN ({NUMERIC_TYPES}) THEN TRY_CAST({tx} AS DOUBLE) {op} {num} "
            f"WHEN {ty} = 'VARCHAR' THEN {tx} {op} {text} END)"
        )
    text = params.add(bound)
    return lambda ty, tx: f"({ty} IN ('VARCHAR', {NUMERIC_TYPES}) AND {tx} {op} {text})"


def _compare(c: F.Compare, params: Params) -> str:
    return _on_values(c.field, params, _compare_one(c.op, c.value, params))


def _range(r: F.Range, params: Params) -> str:
    checks = []
    if r.low is not None:
        checks.append(_compare_one(">=" if r.low_inclusive else ">", r.low, params))
    if r.high is not None:
        checks.append(_compare_one("<=" if r.high_inclusive else "<", r.high, params))
    if not checks:
        return _on_values(r.field, params, lambda ty, tx: f"({ty} IN ('VARCHAR', {NUMERIC_TYPES}))")
    return _on_values(r.field, params, lambda ty, tx: "(" + " AND ".join(c(ty, tx) for c in checks) + ")")


def _exists(f: F.Field, params: Params) -> str:
    return field_value(f, params).present_sql


def _free_text(pattern: str, wildcard: bool, params: Params) -> str:
    regex = params.add(free_text_regex(pattern, wildcard))
    columns = " OR ".join(f"coalesce(regexp_matches({c}, {regex}), false)" for c in COLUMNS.values())
    strings = (
        "coalesce(list_bool_or(list_transform(json_extract(attributes, '$.*'), lambda v: "
        f"CASE json_type(v) WHEN 'VARCHAR' THEN regexp_matches(json_extract_string(v, '$'), {regex}) "
        "WHEN 'ARRAY' THEN coalesce(list_bool_or(list_transform(CAST(v AS JSON[]), lambda e: "
        f"json_type(e) = 'VARCHAR' AND regexp_matches(json_extract_string(e, '$'), {regex}))), false) "
        "ELSE false END)), false)"
    )
    return f"({columns} OR {strings})"


def compile_filter(f: F.Filter, params: Params) -> str:
    """A boolean SQL expression (never NULL) over a row of `events`."""
    if isinstance(f, F.MatchAll):
        return "true"
    if isinstance(f, F.MatchNone):
        return "false"
    if isinstance(f, F.Term):
        return _free_text(f.text, False, params) if f.field is None else _term(f, params)
    if isinstance(f, F.Wildcard):
        return _free_text(f.pattern, True, params) if f.field is None else _wildcard(f, params)
    if isinstance(f, F.Exists):
        return _exists(f.field, params)
    if isinstance(f, F.Compare):
        return _compare(f, params)
    if isinstance(f, F.Range):
        return _range(f, params)
    if isinstance(f, F.Not):
        return f"(NOT {compile_filter(f.operand, params)})"
    if isinstance(f, F.And):
        return (
            "(" + " AND ".join(compile_filter(o, params) for o in f.operands) + ")" if f.operands else "true"
        )
    if isinstance(f, F.Or):
        return (
            "(" + " OR ".join(compile_filter(o, params) for o in f.operands) + ")" if f.operands else "false"
        )
    raise TypeError(f"unknown filter node {f!r}")
