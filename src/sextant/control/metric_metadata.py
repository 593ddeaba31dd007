"""Metric metadata set by users (description, short name, type, units, StatsD interval), per organization.

Only what was set is stored: a field left unset reads as what ingestion knows about the metric (its latest
kind and unit), which the face merges in. Setting a field to None clears it.

`unit` and `per_unit` are names of the unit catalog (`sextant.core.units`, Datadog's list: `byte`,
`millisecond`, `request` ...), as Datadog refuses any other; and, as Datadog's backend does, a time unit
cannot be per a time unit (`millisecond` per `second`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from sextant.control import schema
from sextant.core.timeutil import now_ms
from sextant.core.units import close_names, unit_named

Field = Literal["description", "short_name", "type", "unit", "per_unit", "statsd_interval"]
FIELDS: tuple[Field, ...] = ("description", "short_name", "type", "unit", "per_unit", "statsd_interval")
# Characters per text field: the column sizes, so PostgreSQL and SQLite keep the same values.
MAX_CHARS: dict[Field, int] = {
    "description": 4000,
    "short_name": 200,
    "type": 40,
    "unit": 100,
    "per_unit": 100,
}
# A StatsD flush interval is a few seconds; a day is far past any real one and fits every integer column.
MAX_STATSD_INTERVAL_S = 86_400


@dataclass(frozen=True)
class StoredMetricMetadata:
    org_id: int
    metric: str
    description: str | None
    short_name: str | None
    type: str | None
    unit: str | None
    per_unit: str | None
    statsd_interval: int | None
    updated_at: int


def _check(changes: Mapping[Field, str | int | None]) -> None:
    for field, value in changes.items():
        if field not in FIELDS:
            raise ValueError(f"{field} cannot be set")
        if value is None:
            continue
        if field == "statsd_interval":
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 < value <= MAX_STATSD_INTERVAL_S
            ):
                raise ValueError(f"statsd_interval must be from 1 to {MAX_STATSD_INTERVAL_S} seconds")
        elif not isinstance(value, str):
            raise ValueError(f"{field} must be a string")
        elif len(value) > MAX_CHARS[field]:
            raise ValueError(f"{field} is longer than {MAX_CHARS[field]} characters")
        elif field in ("unit", "per_unit") and unit_named(value) is None:
            near = close_names(value)
            hint = f" (did you mean {' or '.join(near)}?)" if near else ""
            raise ValueError(
                f"{field} {value!r} is not a metric unit{hint}; use a unit name such as byte, millisecond "
                "or request, as listed at https://docs.datadoghq.com/metrics/units/"
            )


def _check_units(stored: StoredMetricMetadata) -> None:
    unit = unit_named(stored.unit) if stored.unit else None
    per = unit_named(stored.per_unit) if stored.per_unit else None
    if unit is not None and per is not None and unit.family == per.family == "time":
        raise ValueError(
            f"a time unit per a time unit ({unit.name} per {per.name}) is not allowed: give a duration "
            "without per_unit, or a unit of what is counted per time"
        )


def get_metric_metadata(conn: sa.Connection, org_id: int, metric: str) -> StoredMetricMetadata | None:
    table = schema.metric_metadata
    row = conn.execute(sa.select(table).where(table.c.org_id == org_id, table.c.metric == metric)).first()
    return None if row is None else StoredMetricMetadata(**row._mapping)


def set_metric_metadata(
    conn: sa.Connection, org_id: int, metric: str, changes: Mapping[Field, str | int | None]
) -> StoredMetricMetadata | None:
    """Set the given fields (None clears one), leave the others as they are; returns what is now stored,
    None when nothing is. Raises ValueError for a value that cannot be stored."""
    _check(changes)
    table = schema.metric_metadata
    values: dict[str, str | int | None] = {field: value for field, value in changes.items()}
    values["updated_at"] = now_ms()
    # One statement whichever writer wins a race: two first edits of a metric must not collide on the key.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table).values(org_id=org_id, metric=metric, **values)
    conn.execute(insert.on_conflict_do_update(index_elements=[table.c.org_id, table.c.metric], set_=values))
    stored = get_metric_metadata(conn, org_id, metric)
    assert stored is not None
    _check_units(stored)  # raising rolls the caller's transaction back
    if all(getattr(stored, field) is None for field in FIELDS):
        conn.execute(table.delete().where(table.c.org_id == org_id, table.c.metric == metric))
        return None
    return stored
