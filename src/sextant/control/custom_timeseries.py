"""Dynatrace custom timeseries (`custom:` metrics registered with PUT /api/v1/timeseries/{id}), per
organization.

A registration is a definition only: display name, unit, dimension keys and technology types. Its data
points, if any, are stored like every other metric's, under the same name. Updating a registration
changes the fields given and keeps the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sextant.control import schema
from sextant.core.timeutil import now_ms

# The column sizes, so that SQLite keeps what PostgreSQL would.
MAX_ID_CHARS = 256
MAX_DISPLAY_NAME_CHARS = 256
MAX_UNIT_CHARS = 64


@dataclass(frozen=True)
class CustomTimeseries:
    org_id: int
    timeseries_id: str
    display_name: str
    unit: str
    dimensions: tuple[str, ...]
    types: tuple[str, ...]
    created_at: int
    updated_at: int


class DisplayNameRequired(ValueError):
    """A first registration without a display name."""


def _record(row: sa.Row[tuple[object, ...]]) -> CustomTimeseries:
    values = dict(row._mapping)
    values["dimensions"] = tuple(values["dimensions"])
    values["types"] = tuple(values["types"])
    return CustomTimeseries(**values)


def get_custom_timeseries(conn: sa.Connection, org_id: int, timeseries_id: str) -> CustomTimeseries | None:
    table = schema.custom_timeseries
    row = conn.execute(
        sa.select(table).where(table.c.org_id == org_id, table.c.timeseries_id == timeseries_id)
    ).first()
    return None if row is None else _record(row)


def list_custom_timeseries(conn: sa.Connection, org_id: int) -> list[CustomTimeseries]:
    table = schema.custom_timeseries
    rows = conn.execute(
        sa.select(table).where(table.c.org_id == org_id).order_by(table.c.timeseries_id)
    ).all()
    return [_record(row) for row in rows]


def put_custom_timeseries(
    conn: sa.Connection,
    org_id: int,
    timeseries_id: str,
    *,
    display_name: str | None,
    unit: str | None,
    dimensions: tuple[str, ...] | None,
    types: tuple[str, ...] | None,
) -> tuple[CustomTimeseries, bool]:
    """Register the timeseries, or update the fields given (None keeps a field as it is); returns what is
    stored and whether it is new. Raises DisplayNameRequired for a new one without a display name, and
    ValueError for a value longer than its column."""
    for text, limit, what in (
        (timeseries_id, MAX_ID_CHARS, "timeseries id"),
        (display_name, MAX_DISPLAY_NAME_CHARS, "displayName"),
        (unit, MAX_UNIT_CHARS, "unit"),
    ):
        if text is not None and len(text) > limit:
            raise ValueError(f"{what} is longer than {limit} characters")
    existing = get_custom_timeseries(conn, org_id, timeseries_id)
    if existing is None and display_name is None:
        raise DisplayNameRequired(timeseries_id)
    now = now_ms()
    changes: dict[str, object] = {"updated_at": now}
    for name, value in (
        ("display_name", display_name),
        ("unit", unit),
        ("dimensions", None if dimensions is None else list(dimensions)),
        ("types", None if types is None else list(types)),
    ):
        if value is not None:
            changes[name] = value
    table = schema.custom_timeseries
    first = {
        "org_id": org_id,
        "timeseries_id": timeseries_id,
        "display_name": display_name or "",
        "unit": unit or "",
        "dimensions": [],
        "types": [],
        "created_at": now,
        **changes,
    }
    # One statement whichever writer wins a race between two first registrations of an id.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values(**first)
    conn.execute(
        insert.on_conflict_do_update(index_elements=[table.c.org_id, table.c.timeseries_id], set_=changes)
    )
    stored = get_custom_timeseries(conn, org_id, timeseries_id)
    assert stored is not None
    return stored, existing is None


def delete_custom_timeseries(conn: sa.Connection, org_id: int, timeseries_id: str) -> bool:
    """Whether there was such a registration (it is gone now)."""
    table = schema.custom_timeseries
    result = conn.execute(
        table.delete().where(table.c.org_id == org_id, table.c.timeseries_id == timeseries_id)
    )
    return bool(result.rowcount)
