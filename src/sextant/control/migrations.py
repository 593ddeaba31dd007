"""Versioned control-plane migrations, applied in order, each in its own transaction.

Append new steps; never edit a released one. The server and the CLI both migrate on open, so the
`schema_migrations` row is written in the same transaction as the step to make concurrent opens safe.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from sextant.control import schema
from sextant.core.timeutil import now_ms

_versions = sa.Table(
    "schema_migrations",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.BigInteger, nullable=False),
)


def _v1_initial(conn: sa.Connection) -> None:
    schema.metadata.create_all(
        conn,
        tables=[schema.orgs, schema.posthog_projects, schema.keys, schema.applications],
    )


def _v2_segments(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.segments, schema.segment_members])


def _v3_metric_metadata(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.metric_metadata])


# The scopes each kind had when it was first made: a key holding all of them was made as an all-scope
# key (`orgs create`, `keys create` without --scope), so it gets the scopes added since, as a key created
# now would.
_FIRST_SCOPES = {
    "dd_app_key": frozenset({"rum_apps_read", "timeseries_query", "metrics_read", "logs_read_data"}),
    "posthog_personal_key": frozenset({"query:read", "project:read"}),
}


def _grant_to_all_scope_keys(conn: sa.Connection, kind: str, added: tuple[str, ...]) -> None:
    keys = schema.keys
    rows = conn.execute(sa.select(keys.c.id, keys.c.scopes).where(keys.c.kind == kind)).all()
    for key_id, scopes in rows:
        missing = [s for s in added if s not in scopes]
        if set(scopes) >= _FIRST_SCOPES[kind] and missing:
            conn.execute(keys.update().where(keys.c.id == key_id).values(scopes=[*scopes, *missing]))


def _v4_dashboards(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.dashboards])
    _grant_to_all_scope_keys(conn, "dd_app_key", ("dashboards_read", "dashboards_write"))


def _v5_metric_metadata_write_scope(conn: sa.Connection) -> None:
    _grant_to_all_scope_keys(conn, "dd_app_key", ("metrics_metadata_write",))


def _v6_posthog_metrics_scopes(conn: sa.Connection) -> None:
    _grant_to_all_scope_keys(conn, "posthog_personal_key", ("metrics:read", "metrics:write"))


def _v7_custom_timeseries(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.custom_timeseries])


MIGRATIONS: list[tuple[int, Callable[[sa.Connection], None]]] = [
    (1, _v1_initial),
    (2, _v2_segments),
    (3, _v3_metric_metadata),
    (4, _v4_dashboards),
    (5, _v5_metric_metadata_write_scope),
    (6, _v6_posthog_metrics_scopes),
    (7, _v7_custom_timeseries),
]


def migrate(engine: sa.Engine) -> int:
    """Bring the control database up to date; returns the schema version."""
    if engine.dialect.name == "sqlite":
        # BEGIN IMMEDIATE takes the write lock before the version is read, so two processes opening
        # the same fresh data dir cannot both apply a step.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                _apply_pending(conn)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    else:
        with engine.begin() as conn:
            _apply_pending(conn)
    return MIGRATIONS[-1][0]


def _apply_pending(conn: sa.Connection) -> None:
    _versions.create(conn, checkfirst=True)
    done = set(conn.execute(sa.select(_versions.c.version)).scalars())
    for version, step in MIGRATIONS:
        if version not in done:
            step(conn)
            conn.execute(_versions.insert().values(version=version, applied_at=now_ms()))
