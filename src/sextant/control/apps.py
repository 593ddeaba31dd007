"""Product Analytics applications: the `application.id` every event names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from sextant.control import schema
from sextant.core.timeutil import now_ms


@dataclass(frozen=True)
class Application:
    id: str
    org_id: int
    name: str
    enabled: bool
    created_at: int


def normalize_app_id(value: str) -> str | None:
    """The canonical (lowercase, hyphenated) form of a UUID, or None when `value` is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def create_app(conn: sa.Connection, *, org_id: int, name: str, app_id: str | None = None) -> Application:
    if app_id is None:
        canonical = str(uuid.uuid4())
    else:
        checked = normalize_app_id(app_id)
        if checked is None:
            raise ValueError(f"application id {app_id!r} is not a UUID")
        canonical = checked
    taken = conn.execute(sa.select(schema.applications.c.id).where(schema.applications.c.id == canonical))
    if taken.first() is not None:
        raise ValueError(f"application id {canonical} already exists")
    app = Application(id=canonical, org_id=org_id, name=name, enabled=True, created_at=now_ms())
    conn.execute(
        schema.applications.insert().values(
            id=app.id, org_id=org_id, name=name, enabled=True, created_at=app.created_at
        )
    )
    return app


def _app(row: sa.Row[tuple[object, ...]]) -> Application:
    m = row._mapping
    return Application(
        id=m["id"], org_id=m["org_id"], name=m["name"], enabled=bool(m["enabled"]), created_at=m["created_at"]
    )


def list_apps(conn: sa.Connection, org_id: int) -> list[Application]:
    rows = conn.execute(
        sa.select(schema.applications)
        .where(schema.applications.c.org_id == org_id)
        .order_by(schema.applications.c.created_at)
    )
    return [_app(r) for r in rows]


def get_app(conn: sa.Connection, app_id: str) -> Application | None:
    canonical = normalize_app_id(app_id)
    if canonical is None:
        return None
    row = conn.execute(sa.select(schema.applications).where(schema.applications.c.id == canonical)).first()
    return None if row is None else _app(row)


def set_app_enabled(conn: sa.Connection, app_id: str, enabled: bool) -> bool:
    """Enable or disable an application; False when there is none with that id."""
    canonical = normalize_app_id(app_id)
    if canonical is None:
        return False
    result = conn.execute(
        schema.applications.update().where(schema.applications.c.id == canonical).values(enabled=enabled)
    )
    return result.rowcount == 1
