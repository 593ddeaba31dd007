"""Organizations, and provisioning a new one with everything a client needs to start sending."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sextant.control import schema
from sextant.control.apps import create_app
from sextant.control.keys import KeyKind, create_key
from sextant.core.timeutil import now_ms


@dataclass(frozen=True)
class Org:
    id: int
    name: str
    created_at: int


class OrgNotFound(LookupError):
    pass


def create_org(conn: sa.Connection, name: str) -> Org:
    name = name.strip()
    if not name:
        raise ValueError("organization name must not be empty")
    if conn.execute(sa.select(schema.orgs.c.id).where(schema.orgs.c.name == name)).first() is not None:
        raise ValueError(f"organization {name!r} already exists")
    created = now_ms()
    org_id = conn.execute(schema.orgs.insert().values(name=name, created_at=created)).inserted_primary_key
    assert org_id is not None
    return Org(id=int(org_id[0]), name=name, created_at=created)


def list_orgs(conn: sa.Connection) -> list[Org]:
    rows = conn.execute(sa.select(schema.orgs).order_by(schema.orgs.c.id))
    return [Org(id=r.id, name=r.name, created_at=r.created_at) for r in rows]


def find_org(conn: sa.Connection, name_or_id: str) -> Org:
    """The organization with this name, or with this numeric id."""
    query = sa.select(schema.orgs).where(schema.orgs.c.name == name_or_id)
    row = conn.execute(query).first()
    if row is None and name_or_id.isdigit():
        row = conn.execute(sa.select(schema.orgs).where(schema.orgs.c.id == int(name_or_id))).first()
    if row is None:
        raise OrgNotFound(f"no organization named {name_or_id!r} (see `sextant orgs list`)")
    return Org(id=row.id, name=row.name, created_at=row.created_at)


def posthog_project_owner(conn: sa.Connection, project_id: int) -> int | None:
    """The organization that owns a PostHog project, or None when there is no such project."""
    query = sa.select(schema.posthog_projects.c.org_id).where(schema.posthog_projects.c.id == project_id)
    return conn.execute(query).scalar()


def posthog_project_of(conn: sa.Connection, org_id: int) -> int | None:
    """The organization's first PostHog project, which project tokens belong to."""
    query = (
        sa.select(schema.posthog_projects.c.id)
        .where(schema.posthog_projects.c.org_id == org_id)
        .order_by(schema.posthog_projects.c.id)
        .limit(1)
    )
    return conn.execute(query).scalar()


@dataclass(frozen=True)
class ProvisionedOrg:
    org_id: int
    name: str
    application_id: str
    posthog_project_id: int
    keys: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "application_id": self.application_id,
            "posthog_project_id": self.posthog_project_id,
            "keys": self.keys,
        }


def provision_org(engine: sa.Engine, name: str) -> ProvisionedOrg:
    """Create an organization with one key of each kind (all scopes), a PostHog project and an app."""
    with engine.begin() as conn:
        org = create_org(conn, name)
        project_id = conn.execute(
            schema.posthog_projects.insert().values(org_id=org.id, name=name, created_at=now_ms())
        ).inserted_primary_key
        assert project_id is not None
        project = int(project_id[0])
        app = create_app(conn, org_id=org.id, name=f"{name} app")
        secrets: dict[str, str] = {}
        for kind in KeyKind:
            _, raw = create_key(
                conn,
                org_id=org.id,
                kind=kind,
                name=kind.value,
                posthog_project_id=project if kind is KeyKind.POSTHOG_PROJECT_TOKEN else None,
            )
            secrets[kind.value] = raw
    return ProvisionedOrg(
        org_id=org.id, name=org.name, application_id=app.id, posthog_project_id=project, keys=secrets
    )


DEFAULT_ORG = "default"


def bootstrap_default_org(engine: sa.Engine, credentials_path: Path) -> ProvisionedOrg | None:
    """On an empty control database, create the `default` organization and save its keys (mode 0600)."""
    with engine.connect() as conn:
        if conn.execute(sa.select(schema.orgs.c.id).limit(1)).first() is not None:
            return None
    provisioned = provision_org(engine, DEFAULT_ORG)
    fd = os.open(credentials_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(provisioned.as_json(), f, indent=2)
        f.write("\n")
    os.chmod(credentials_path, 0o600)
    return provisioned
