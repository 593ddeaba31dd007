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

# What PUT /api/v1/metrics/{metric_name} set; a null column means "as ingestion knows it".
metric_metadata = sa.Table(
    "metric_metadata",
    metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), primary_key=True),
    sa.Column("metric", sa.String(200), primary_key=True),
    sa.Column("description", sa.String(4000), nullable=True),
    sa.Column("short_name", sa.String(200), nullable=True),
    sa.Column("type", sa.String(40), nullable=True),
    sa.Column("unit", sa.String(100), nullable=True),
    sa.Column("per_unit", sa.String(100), nullable=True),
    sa.Column("statsd_interval", sa.Integer, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# Datadog dashboards (/api/v1/dashboard): the definition as sent, minus the fields the server owns; the
# other columns are what a listing shows. A deleted dashboard keeps its row until it is restored.
dashboards = sa.Table(
    "dashboards",
    metadata,
    # Datadog's public id shape, `abc-def-ghi`; unique across organizations since URLs carry it.
    sa.Column("id", sa.String(11), primary_key=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("layout_type", sa.String(16), nullable=False),
    sa.Column("is_read_only", sa.Boolean, nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("author_handle", sa.String(200), nullable=False),
    sa.Column("author_name", sa.String(200), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("modified_at", sa.BigInteger, nullable=False),
    sa.Column("deleted_at", sa.BigInteger, nullable=True),
)

# Dynatrace custom timeseries registered with PUT /api/v1/timeseries/{id} (ids start with `custom:`).
# `dimensions` and `types` are JSON lists of strings, as registered.
custom_timeseries = sa.Table(
    "custom_timeseries",
    metadata,
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), primary_key=True),
    sa.Column("timeseries_id", sa.String(256), primary_key=True),
    sa.Column("display_name", sa.String(256), nullable=False),
    sa.Column("unit", sa.String(64), nullable=False),
    sa.Column("dimensions", sa.JSON, nullable=False),
    sa.Column("types", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)
