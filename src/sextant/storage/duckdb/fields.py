"""How one field of an event row reads in DuckDB SQL.

Standard fields are columns named after their path. Other attributes live in the `attributes` JSON
object; a frequently queried attribute is also copied into typed columns (see attribute_columns.py):
`a{slot}_t` (its JSON type), `a{slot}_s` (its text) and `a{slot}_d` (its value when a number), which
read 20-100x faster than JSON. Every value, and every attribute path, is a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sextant.core.events import STANDARD_PATHS
from sextant.query.filters import Field

COLUMNS: dict[str, str] = {path: path.replace(".", "_") for path in sorted(STANDARD_PATHS)}
NUMERIC_TYPES = "'BIGINT', 'UBIGINT', 'DOUBLE'"
_REFERENCE = re.compile(r"\$(p\d+)\b")


class UnsupportedPath(ValueError):
    """An attribute path that cannot be addressed (it contains a double quote or a control character)."""


@dataclass
class Params:
    """Named parameters ($p0, $p1, ...), the attribute columns usable by this statement, and the attribute
    paths it had to read from JSON (candidates for their own columns)."""

    slots: Mapping[str, int] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    from_json: set[str] = field(default_factory=set)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"

    def used_in(self, sql: str) -> dict[str, Any]:
        """The parameters `sql` refers to (DuckDB refuses unused ones; some expressions are built but not
        used, such as an attribute's array form when a filter only tests presence)."""
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
class FieldValue:
    """SQL for one field of the current row: JSON type name, text and number for scalars; for attributes
    also whether the stored value is an array, and the array as JSON[]."""

    type_sql: str
    text_sql: str
    number_sql: str
    present_sql: str
    is_array_sql: str | None  # None for a column, which is never an array
    array_sql: str | None


def field_value(f: Field, params: Params) -> FieldValue:
    column = COLUMNS.get(f.path)
    if column is not None:
        return FieldValue(
            type_sql=f"CASE WHEN {column} IS NULL THEN NULL ELSE 'VARCHAR' END",
            text_sql=column,
            number_sql="CAST(NULL AS DOUBLE)",
            present_sql=f"{column} IS NOT NULL",
            is_array_sql=None,
            array_sql=None,
        )
    p = params.add(json_path(f.path))
    array = f"CAST(json_extract(attributes, {p}) AS JSON[])"
    slot = params.slots.get(f.path)
    if slot is not None:
        t, s, d = slot_columns(slot)
        return FieldValue(t, s, d, f"{t} IS NOT NULL", f"{t} = 'ARRAY'", array)
    params.from_json.add(f.path)
    t, s, d = typed_projection(p)
    return FieldValue(t, s, d, f"json_exists(attributes, {p})", f"{t} = 'ARRAY'", array)


def element_value() -> tuple[str, str]:
    """Type and text of `e`, the lambda variable over array elements."""
    return "json_type(e)", "json_extract_string(e, '$')"


def group_key(f: Field, params: Params) -> tuple[str, str | None]:
    """The field as a group key: its text when a scalar (NULL when absent, null or an array), and for
    attributes the list of element texts when it is a non-empty array (NULL otherwise)."""
    v = field_value(f, params)
    if v.is_array_sql is None:
        return v.text_sql, None
    p = params.add(json_path(f.path) + "[*]")
    scalar = f"CASE WHEN {v.type_sql} IN ('ARRAY', 'NULL') THEN NULL ELSE {v.text_sql} END"
    elements = f"list_filter(json_extract_string(attributes, {p}), lambda x: x IS NOT NULL)"
    return scalar, f"CASE WHEN {v.is_array_sql} AND len({elements}) > 0 THEN {elements} END"
