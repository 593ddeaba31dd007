"""Segments: stored sets of user ids, used by Product Analytics audience filters."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from sextant.control import schema
from sextant.core.timeutil import now_ms

MAX_SEGMENT_USERS = 1_000_000
MAX_USER_ID_LENGTH = 1024


@dataclass(frozen=True)
class Segment:
    id: str
    org_id: int
    name: str
    size: int
    created_at: int


def _clean_ids(user_ids: Iterable[str]) -> list[str]:
    ids = list(dict.fromkeys(u.strip() for u in user_ids if u.strip()))
    if len(ids) > MAX_SEGMENT_USERS:
        raise ValueError(f"a segment holds at most {MAX_SEGMENT_USERS} user ids; got {len(ids)}")
    long = next((u for u in ids if len(u) > MAX_USER_ID_LENGTH), None)
    if long is not None:
        raise ValueError(f"user id {long[:40]!r}... is longer than {MAX_USER_ID_LENGTH} characters")
    return ids


def create_segment(conn: sa.Connection, *, org_id: int, name: str, user_ids: Iterable[str]) -> Segment:
    name = name.strip()
    if not name:
        raise ValueError("segment name must not be empty")
    ids = _clean_ids(user_ids)
    segment = Segment(id=str(uuid.uuid4()), org_id=org_id, name=name, size=len(ids), created_at=now_ms())
    conn.execute(
        schema.segments.insert().values(
            id=segment.id, org_id=org_id, name=name, created_at=segment.created_at
        )
    )
    if ids:
        conn.execute(schema.segment_members.insert(), [{"segment_id": segment.id, "user_id": u} for u in ids])
    return segment


def list_segments(conn: sa.Connection, org_id: int) -> list[Segment]:
    members = (
        sa.select(schema.segment_members.c.segment_id, sa.func.count().label("size"))
        .group_by(schema.segment_members.c.segment_id)
        .subquery()
    )
    rows = conn.execute(
        sa.select(schema.segments, sa.func.coalesce(members.c.size, 0).label("size"))
        .select_from(schema.segments.outerjoin(members, members.c.segment_id == schema.segments.c.id))
        .where(schema.segments.c.org_id == org_id)
        .order_by(schema.segments.c.created_at)
    )
    return [
        Segment(id=r.id, org_id=r.org_id, name=r.name, size=r.size, created_at=r.created_at) for r in rows
    ]


def segment_members(conn: sa.Connection, org_id: int, segment_id: str) -> list[str] | None:
    """The user ids of the organization's segment, or None when it has no such segment."""
    try:
        canonical = str(uuid.UUID(segment_id))
    except ValueError:
        return None
    owner = conn.execute(
        sa.select(schema.segments.c.id).where(
            schema.segments.c.id == canonical, schema.segments.c.org_id == org_id
        )
    ).first()
    if owner is None:
        return None
    rows = conn.execute(
        sa.select(schema.segment_members.c.user_id).where(schema.segment_members.c.segment_id == canonical)
    )
    return list(rows.scalars())


def delete_segment(conn: sa.Connection, org_id: int, segment_id: str) -> bool:
    try:
        canonical = str(uuid.UUID(segment_id))
    except ValueError:
        return False
    owned = sa.and_(schema.segments.c.id == canonical, schema.segments.c.org_id == org_id)
    if conn.execute(sa.select(schema.segments.c.id).where(owned)).first() is None:
        return False
    conn.execute(schema.segment_members.delete().where(schema.segment_members.c.segment_id == canonical))
    conn.execute(schema.segments.delete().where(owned))
    return True
