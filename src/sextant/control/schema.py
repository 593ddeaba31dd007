"""Control-plane tables (SQLAlchemy Core). Changes to them go through migrations.py."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

posthog_projects = sa.Table(
    "posthog_projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

keys = sa.Table(
    "keys",
    metadata,
    # Public identifier, safe to print and to pass to `keys revoke`.
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    # First characters of the key, so that a person can tell which key a row is.
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("posthog_project_id", sa.Integer, sa.ForeignKey("posthog_projects.id"), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column(
        "segment_id", sa.String(36), sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("user_id", sa.String(1024), primary_key=True),
)
