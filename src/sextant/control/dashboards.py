"""Dashboards: Datadog dashboard definitions per organization, kept whole as the JSON that was sent.

The columns beside the definition are what a listing shows, so that listing never decodes definitions.
Deleting only marks a dashboard deleted, so that it can be restored. Every function takes the caller's
organization and never touches another organization's rows.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import sqlalchemy as sa

from sextant.control import schema
from sextant.core.timeutil import now_ms

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class DashboardSummary:
    id: str
    org_id: int
    title: str
    description: str | None
    layout_type: str
    is_read_only: bool
    author_handle: str
    author_name: str | None
    created_at: int
    modified_at: int
    deleted_at: int | None


@dataclass(frozen=True)
class Dashboard:
    summary: DashboardSummary
    # Everything the client sent except the fields the server owns (id, author, times, url).
    definition: dict[str, Any]


@dataclass(frozen=True)
class DashboardFields:
    """What a create or an update sets: the listed columns and the whole definition."""

    title: str
    description: str | None
    layout_type: str
    is_read_only: bool
    definition: Mapping[str, Any]


def new_dashboard_id() -> str:
    """Datadog's public id shape, `abc-d3f-gh1`: three groups of three lowercase letters or digits."""
    return "-".join("".join(secrets.choice(_ID_ALPHABET) for _ in range(3)) for _ in range(3))


_table = schema.dashboards
_summary_columns = [c for c in _table.c if c.name != "definition"]


def _summary(row: sa.Row[Any]) -> DashboardSummary:
    m = row._mapping
    return DashboardSummary(
        id=m["id"],
        org_id=m["org_id"],
        title=m["title"],
        description=m["description"],
        layout_type=m["layout_type"],
        is_read_only=bool(m["is_read_only"]),
        author_handle=m["author_handle"],
        author_name=m["author_name"],
        created_at=m["created_at"],
        modified_at=m["modified_at"],
        deleted_at=m["deleted_at"],
    )


def _values(fields: DashboardFields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "description": fields.description,
        "layout_type": fields.layout_type,
        "is_read_only": fields.is_read_only,
        "definition": msgspec.json.encode(fields.definition).decode(),
    }


def create_dashboard(
    conn: sa.Connection, *, org_id: int, fields: DashboardFields, author_handle: str, author_name: str | None
) -> Dashboard:
    dashboard_id = new_dashboard_id()
    # 36^9 ids make a collision very unlikely; the primary key makes one impossible to store.
    while conn.execute(sa.select(_table.c.id).where(_table.c.id == dashboard_id)).first() is not None:
        dashboard_id = new_dashboard_id()
    now = now_ms()
    conn.execute(
        _table.insert().values(
            id=dashboard_id,
            org_id=org_id,
            author_handle=author_handle,
            author_name=author_name,
            created_at=now,
            modified_at=now,
            deleted_at=None,
            **_values(fields),
        )
    )
    found = get_dashboard(conn, org_id, dashboard_id)
    assert found is not None
    return found


def get_dashboard(conn: sa.Connection, org_id: int, dashboard_id: str) -> Dashboard | None:
    """The organization's dashboard with that id, unless it is unknown or deleted."""
    row = conn.execute(
        sa.select(_table).where(
            _table.c.org_id == org_id, _table.c.id == dashboard_id, _table.c.deleted_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    return Dashboard(_summary(row), msgspec.json.decode(row.definition))


def update_dashboard(
    conn: sa.Connection, org_id: int, dashboard_id: str, fields: DashboardFields
) -> Dashboard | None:
    """Replace the definition of a dashboard that is not deleted; None when there is none."""
    current = get_dashboard(conn, org_id, dashboard_id)
    if current is None:
        return None
    # Two updates within one millisecond must still move modified_at forward.
    modified = max(now_ms(), current.summary.modified_at + 1)
    conn.execute(
        _table.update()
        .where(_table.c.org_id == org_id, _table.c.id == dashboard_id)
        .values(modified_at=modified, **_values(fields))
    )
    return get_dashboard(conn, org_id, dashboard_id)


def _existing(conn: sa.Connection, org_id: int, ids: list[str], *, deleted: bool | None) -> set[str]:
    where = [_table.c.org_id == org_id, _table.c.id.in_(ids)]
    if deleted is not None:
        where.append(_table.c.deleted_at.is_not(None) if deleted else _table.c.deleted_at.is_(None))
    return set(conn.execute(sa.select(_table.c.id).where(*where)).scalars())


def delete_dashboards(conn: sa.Connection, org_id: int, dashboard_ids: Iterable[str]) -> list[str]:
    """Mark the dashboards deleted, all or none: returns the ids that are unknown or already deleted
    (and then deletes nothing)."""
    ids = list(dict.fromkeys(dashboard_ids))
    missing = [i for i in ids if i not in _existing(conn, org_id, ids, deleted=False)]
    if missing or not ids:
        return missing
    conn.execute(
        _table.update()
        .where(_table.c.org_id == org_id, _table.c.id.in_(ids), _table.c.deleted_at.is_(None))
        .values(deleted_at=now_ms())
    )
    return []


def restore_dashboards(conn: sa.Connection, org_id: int, dashboard_ids: Iterable[str]) -> list[str]:
    """Bring deleted dashboards back, all or none: returns the ids the organization has no dashboard for
    (and then restores nothing). Restoring a dashboard that is not deleted changes nothing."""
    ids = list(dict.fromkeys(dashboard_ids))
    missing = [i for i in ids if i not in _existing(conn, org_id, ids, deleted=None)]
    if missing or not ids:
        return missing
    conn.execute(
        _table.update()
        .where(_table.c.org_id == org_id, _table.c.id.in_(ids), _table.c.deleted_at.is_not(None))
        .values(deleted_at=None)
    )
    return []


def list_dashboards(
    conn: sa.Connection, org_id: int, *, deleted: bool = False, start: int = 0, count: int | None = None
) -> list[DashboardSummary]:
    """The organization's dashboards (or only its deleted ones), oldest first, from offset `start`."""
    deleted_filter = _table.c.deleted_at.is_not(None) if deleted else _table.c.deleted_at.is_(None)
    query = (
        sa.select(*_summary_columns)
        .where(_table.c.org_id == org_id, deleted_filter)
        .order_by(_table.c.created_at, _table.c.id)
        .offset(start)
    )
    if count is not None:
        query = query.limit(count)
    return [_summary(row) for row in conn.execute(query)]
