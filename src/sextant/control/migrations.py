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


MIGRATIONS: list[tuple[int, Callable[[sa.Connection], None]]] = [
    (1, _v1_initial),
    (2, _v2_segments),
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
