"""Compiling the filter IR to a DuckDB boolean expression over a row of `events`.

Expressions may be NULL where a value is missing; NULL behaves as false under AND, OR and WHERE, and only
NOT needs it made false first (`NOT coalesce(x, false)`). Keeping plain comparisons (`event_name = $p1`)
lets DuckDB push them into the scan. Every value and every attribute path is a bound parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from sextant.query import filters as F
from sextant.storage.duckdb.fields import COLUMNS, ELEMENT, NUMERIC_TYPES, Params, Scalar, field_value

Predicate = Callable[[Scalar], str]


def _on_values(f: F.Field, params: Params, predicate: Predicate) -> str:
    """`predicate` over the field's value, or over any element when this row's value is an array."""
    v = field_value(f, params)
    scalar = predicate(v.scalar)
    if v.is_array_sql is None:
        return scalar
    element = predicate(ELEMENT)
    any_element = f"list_bool_or(list_transform({v.elements_sql}, lambda e: {element}))"
    return f"(CASE WHEN {v.is_array_sql} THEN {any_element} ELSE {scalar} END)"


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
        # No number's text can equal a non-numeric text, and booleans' text is "true"/"false", so the text
        # alone decides: `@a:true` matches the boolean and the string.
        return _on_values(t.field, params, lambda v: f"{v.text_sql} = {text}")
    num = params.add(number)

    def numeric(v: Scalar) -> str:
        if v.is_column:
            return f"{v.text_sql} = {text}"
        return f"(({v.type_sql} = 'VARCHAR' AND {v.text_sql} = {text}) OR {v.number_sql} = {num})"

    return _on_values(t.field, params, numeric)


def _wildcard(w: F.Wildcard, params: Params) -> str:
    assert w.field is not None
    pattern = params.add(like_pattern(w.pattern))
    return _on_values(w.field, params, lambda v: f"{v.text_sql} LIKE {pattern} ESCAPE '\\'")


def _compare_one(op: str, bound: F.Bound, params: Params) -> Predicate:
    if isinstance(bound, float):
        num = params.add(bound)
        text = params.add(_number_text(bound))

        def numeric(v: Scalar) -> str:
            as_text = f"{v.text_sql} {op} {text}"
            if v.is_column:
                return as_text
            return f"(CASE WHEN {v.type_sql} = 'VARCHAR' THEN {as_text} ELSE {v.number_sql} {op} {num} END)"

        return numeric
    text = params.add(bound)

    def textual(v: Scalar) -> str:
        if v.is_column:
            return f"{v.text_sql} {op} {text}"
        return f"({v.type_sql} IN ('VARCHAR', {NUMERIC_TYPES}) AND {v.text_sql} {op} {text})"

    return textual


def _range(r: F.Range, params: Params) -> str:
    checks = []
    if r.low is not None:
        checks.append(_compare_one(">=" if r.low_inclusive else ">", r.low, params))
    if r.high is not None:
        checks.append(_compare_one("<=" if r.high_inclusive else "<", r.high, params))
    if not checks:
        return _on_values(
            r.field,
            params,
            lambda v: (
                f"{v.text_sql} IS NOT NULL"
                if v.is_column
                else f"{v.type_sql} IN ('VARCHAR', {NUMERIC_TYPES})"
            ),
        )
    return _on_values(r.field, params, lambda v: "(" + " AND ".join(c(v) for c in checks) + ")")


def _free_text(pattern: str, wildcard: bool, params: Params) -> str:
    regex = params.add(free_text_regex(pattern, wildcard))
    columns = " OR ".join(f"regexp_matches({c}, {regex})" for c in COLUMNS.values())
    strings = (
        "list_bool_or(list_transform(json_extract(attributes, '$.*'), lambda v: "
        f"CASE json_type(v) WHEN 'VARCHAR' THEN regexp_matches(json_extract_string(v, '$'), {regex}) "
        "WHEN 'ARRAY' THEN list_bool_or(list_transform(CAST(v AS JSON[]), lambda e: "
        f"json_type(e) = 'VARCHAR' AND regexp_matches(json_extract_string(e, '$'), {regex}))) "
        "ELSE false END))"
    )
    return f"({columns} OR {strings})"


def compile_filter(f: F.Filter, params: Params) -> str:
    """A SQL condition over a row of `events`: true when the row matches, false or NULL when not."""
    if isinstance(f, F.MatchAll):
        return "true"
    if isinstance(f, F.MatchNone):
        return "false"
    if isinstance(f, F.Term):
        return _free_text(f.text, False, params) if f.field is None else _term(f, params)
    if isinstance(f, F.Wildcard):
        return _free_text(f.pattern, True, params) if f.field is None else _wildcard(f, params)
    if isinstance(f, F.Text):
        regex = params.add(free_text_regex(f.pattern, True))
        return _on_values(
            f.field, params, lambda v: f"({v.type_sql} = 'VARCHAR' AND regexp_matches({v.text_sql}, {regex}))"
        )
    if isinstance(f, F.Exists):
        return field_value(f.field, params).present_sql
    if isinstance(f, F.Compare):
        return _on_values(f.field, params, _compare_one(f.op, f.value, params))
    if isinstance(f, F.Range):
        return _range(f, params)
    if isinstance(f, F.Not):
        return f"(NOT coalesce({compile_filter(f.operand, params)}, false))"
    if isinstance(f, F.And):
        return (
            "(" + " AND ".join(compile_filter(o, params) for o in f.operands) + ")" if f.operands else "true"
        )
    if isinstance(f, F.Or):
        return (
            "(" + " OR ".join(compile_filter(o, params) for o in f.operands) + ")" if f.operands else "false"
        )
    raise TypeError(f"unknown filter node {f!r}")
