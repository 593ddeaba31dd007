"""How one field of an event row reads in DuckDB SQL.

Standard fields are columns named after their path. Other attributes live in the `attributes` JSON object;
a frequently queried attribute is also copied into typed columns (see attribute_columns.py):
`a{slot}_t` (its JSON type), `a{slot}_s` (its text) and `a{slot}_d` (its value when a number), which read
20-100x faster than JSON. Paths that never held an array skip array handling altogether. Every value, and
every attribute path, is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sextant.core.events import STANDARD_PATHS
from sextant.query.filters import Field

COLUMNS: dict[str, str] = {path: path.replace(".", "_") for path in sorted(STANDARD_PATHS)}
# Dense integer keys of fields that queries count distinct values of and join on: integers hash and
# compare faster than strings (`user_keys` maps each user id to its key).
KEY_COLUMNS: dict[str, str] = {"usr.id": "usr_key"}
NUMERIC_TYPES = "'BIGINT', 'UBIGINT', 'DOUBLE'"
_REFERENCE = re.compile(r"\$(p\d+)\b")


class UnsupportedPath(ValueError):
    """An attribute path that cannot be addressed (it contains a double quote or a control character)."""


@dataclass(frozen=True)
class Schema:
    """What a statement may rely on: attributes with their own columns, and paths that held arrays."""

    slots: Mapping[str, int] = field(default_factory=dict)
    arrays: frozenset[str] = frozenset()
    max_user_key: int = 0  # user keys run from 1 to this
    sources: frozenset[str] = frozenset()  # the sources of the events stored


@dataclass
class Params:
    """Named parameters ($p0, $p1, ...), the schema the statement is compiled against, and the attribute
    paths it had to read from JSON (candidates for their own columns)."""

    schema: Schema = field(default_factory=Schema)
    values: dict[str, Any] = field(default_factory=dict)
    from_json: set[str] = field(default_factory=set)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def used_in(self, sql: str) -> dict[str, Any]:
        """The parameters `sql` refers to (DuckDB refuses unused ones)."""
        used = set(_REFERENCE.findall(sql))
        return {name: value for name, value in self.values.items() if name in used}


def json_path(path: str) -> str:
    if '"' in path or any(ord(c) < 32 for c in path):
        raise UnsupportedPath(f"attribute path {path!r} contains a double quote or a control character")
    return f'$."{path}"'


def slot_columns(slot: int) -> tuple[str, str, str]:
    return f"a{slot}_t", f"a{slot}_s", f"a{slot}_d"


def typed_projection(path_param: str, source: str = "attributes") -> tuple[str, str, str]:
    """Type, text and number of the attribute at JSON path `path_param`, as written to a slot's columns."""
    return (
        f"json_type({source}, {path_param})",
        f"json_extract_string({source}, {path_param})",
        f"CASE WHEN json_type({source}, {path_param}) IN ({NUMERIC_TYPES}) "
        f"THEN CAST(json_extract_string({source}, {path_param}) AS DOUBLE) END",
    )


@dataclass(frozen=True)
class Scalar:
    """One scalar value in SQL: its JSON type name, its text and its number (NULL unless numeric)."""

    type_sql: str
    text_sql: str
    number_sql: str
    is_column: bool = False  # a standard column: a string or NULL, never anything else


@dataclass(frozen=True)
class FieldValue:
    scalar: Scalar
    present_sql: str
    # For attributes that held an array somewhere: whether this row's value is one, and its elements.
    is_array_sql: str | None = None
    elements_sql: str | None = None  # JSON[]


ELEMENT = Scalar(
    "json_type(e)",
    "json_extract_string(e, '$')",
    f"CASE WHEN json_type(e) IN ({NUMERIC_TYPES}) THEN CAST(json_extract_string(e, '$') AS DOUBLE) END",
)


def field_value(f: Field, params: Params) -> FieldValue:
    column = COLUMNS.get(f.path)
    if column is not None:
        return FieldValue(
            Scalar("'VARCHAR'", column, "CAST(NULL AS DOUBLE)", is_column=True), f"{column} IS NOT NULL"
        )
    p = params.add(json_path(f.path))
    slot = params.schema.slots.get(f.path)
    if slot is not None:
        t, s, d = slot_columns(slot)
        scalar = Scalar(t, s, d)
        present = f"{t} IS NOT NULL"
    else:
        params.from_json.add(f.path)
        scalar = Scalar(*typed_projection(p))
        present = f"json_exists(attributes, {p})"
    if f.path not in params.schema.arrays:
        return FieldValue(scalar, present)
    return FieldValue(
        scalar, present, f"{scalar.type_sql} = 'ARRAY'", f"CAST(json_extract(attributes, {p}) AS JSON[])"
    )


def group_key(f: Field, params: Params) -> tuple[str, str | None]:
    """The field as a group key: its text when a scalar (NULL when absent or null), and, for attributes
    that held arrays, the element texts when this row's value is a non-empty array (NULL otherwise)."""
    v = field_value(f, params)
    if v.is_array_sql is None:
        return v.scalar.text_sql, None  # a JSON null's text is NULL already
    p = params.add(json_path(f.path) + "[*]")
    scalar = f"CASE WHEN {v.is_array_sql} THEN NULL ELSE {v.scalar.text_sql} END"
    elements = f"list_filter(json_extract_string(attributes, {p}), lambda x: x IS NOT NULL)"
    return scalar, f"CASE WHEN {v.is_array_sql} AND len({elements}) > 0 THEN {elements} END"
