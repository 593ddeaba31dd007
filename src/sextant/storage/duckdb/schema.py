"""DuckDB tables, versioned like the control plane: append steps, never edit released ones."""

from __future__ import annotations

import duckdb

from sextant.storage.duckdb import metric_rollups

# Standard event fields are columns; everything else is one JSON object of flattened dotted paths,
# which DuckDB stores as text (cheap to append) and reads with vectorized JSON extraction.
_V1 = [
    """
CREATE TABLE events (
    org_id          INTEGER NOT NULL,
    event_id        UBIGINT NOT NULL,
    time_ms         BIGINT NOT NULL,
    source          VARCHAR NOT NULL,
    event_name      VARCHAR NOT NULL,
    type            VARCHAR NOT NULL,
    application_id  VARCHAR,
    usr_id          VARCHAR,
    account_id      VARCHAR,
    session_id      VARCHAR,
    attributes      JSON NOT NULL
)
"""
]

# Attribute paths that held an array in some event; queries on every other path skip array handling.
_V2 = [
    "CREATE TABLE array_paths (path VARCHAR PRIMARY KEY)",
    "INSERT INTO array_paths SELECT DISTINCT j.key FROM events, json_each(events.attributes) AS j "
    "WHERE j.type = 'ARRAY'",
]

# The last ingest-log record stored, written in the same transaction as its events (exactly-once loads).
_V3 = [
    "CREATE TABLE ingest_state (id INTEGER PRIMARY KEY, loaded_log_seq UBIGINT NOT NULL)",
    "INSERT INTO ingest_state VALUES (1, 0)",
]

# Dense integer user keys (distinct counts and joins on integers are much faster than on strings), and
# the source as an enum (its filter, in every query, becomes an integer compare).
_V4 = [
    "CREATE TYPE event_source AS ENUM ('product_analytics', 'logs')",
    "ALTER TABLE events ALTER COLUMN source TYPE event_source",
    "CREATE TABLE user_keys (usr_id VARCHAR PRIMARY KEY, usr_key INTEGER NOT NULL)",
    "INSERT INTO user_keys SELECT usr_id, CAST(row_number() OVER (ORDER BY usr_id) AS INTEGER) "
    "FROM (SELECT DISTINCT usr_id FROM events WHERE usr_id IS NOT NULL)",
    "ALTER TABLE events ADD COLUMN usr_key INTEGER",
    "UPDATE events SET usr_key = k.usr_key FROM user_keys AS k WHERE events.usr_id = k.usr_id",
]

# Metrics: a series index (organization, 64-bit id of name + sorted tags) and points that refer to it,
# in the order they arrive; one row per metric name for listings and metadata. See core/metrics.py.
_V5 = [
    "CREATE TYPE metric_kind AS ENUM "
    "('gauge', 'count', 'rate', 'distribution', 'histogram', 'exponential_histogram', 'summary')",
    "CREATE TYPE metric_temporality AS ENUM ('delta', 'cumulative')",
    """
CREATE TABLE metric_series (
    org_id          INTEGER NOT NULL,
    series_id       UBIGINT NOT NULL,
    metric          VARCHAR NOT NULL,
    tags            VARCHAR[] NOT NULL,
    first_seen_ms   BIGINT NOT NULL,
    PRIMARY KEY (org_id, series_id)
)
""",
    """
CREATE TABLE metric_points (
    org_id          INTEGER NOT NULL,
    series_id       UBIGINT NOT NULL,
    time_ms         BIGINT NOT NULL,
    kind            metric_kind NOT NULL,
    value           DOUBLE,
    count           BIGINT,
    min             DOUBLE,
    max             DOUBLE,
    bounds          DOUBLE[],
    bucket_counts   BIGINT[],
    samples         DOUBLE[],
    interval_ms     BIGINT,
    start_time_ms   BIGINT,
    temporality     metric_temporality,
    monotonic       BOOLEAN,
    unit            VARCHAR
)
""",
    """
CREATE TABLE metric_names (
    org_id          INTEGER NOT NULL,
    metric          VARCHAR NOT NULL,
    kind            metric_kind NOT NULL,
    unit            VARCHAR,
    temporality     metric_temporality,
    monotonic       BOOLEAN,
    first_seen_ms   BIGINT NOT NULL,
    last_seen_ms    BIGINT NOT NULL,
    PRIMARY KEY (org_id, metric)
)
""",
]

# Per-minute, 5-minute and hourly rollups of every series (storage/duckdb/metric_rollups.py), filled for
# the points already stored.
_V6 = [
    *(metric_rollups.table_ddl(table) for _, table in metric_rollups.RESOLUTIONS),
    *(
        metric_rollups.rollup_insert_sql("metric_points", unit, table)
        for unit, table in metric_rollups.RESOLUTIONS
    ),
]

# Which of a series' tags came from the resource that sent it (OTLP), for filters that tell resource and
# data point attributes apart; empty for series stored before, and for every other intake.
_V7 = ["ALTER TABLE metric_series ADD COLUMN resource_tags VARCHAR[] DEFAULT CAST([] AS VARCHAR[])"]

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, _V1),
    (2, _V2),
    (3, _V3),
    (4, _V4),
    (5, _V5),
    (6, _V6),
    (7, _V7),
]


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT)"
    ).fetchall()
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    for version, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in ("BEGIN", *statements):
            con.execute(statement).fetchall()
        con.execute("INSERT INTO schema_migrations VALUES (?, epoch_ms(now()))", [version]).fetchall()
        con.execute("COMMIT").fetchall()
