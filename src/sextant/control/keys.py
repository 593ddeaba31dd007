"""API keys and tokens: generated in each vendor's format, stored only as SHA-256 hashes.

Keys are 128+ bits of randomness, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa

from sextant.control import schema
from sextant.core.timeutil import now_ms


class KeyKind(StrEnum):
    DD_API_KEY = "dd_api_key"
    DD_APP_KEY = "dd_app_key"
    DYNATRACE_TOKEN = "dynatrace_token"
    POSTHOG_PERSONAL_KEY = "posthog_personal_key"
    POSTHOG_PROJECT_TOKEN = "posthog_project_token"


# Every scope a key of each kind can hold; `keys create` without --scope grants all of them.
SCOPES: dict[KeyKind, tuple[str, ...]] = {
    KeyKind.DD_API_KEY: ("events_write", "logs_write", "metrics_write"),
    KeyKind.DD_APP_KEY: (
        "rum_apps_read",
        "timeseries_query",
        "metrics_read",
        "logs_read_data",
        "dashboards_read",
        "dashboards_write",
        "metrics_metadata_write",
    ),
    KeyKind.DYNATRACE_TOKEN: ("metrics.ingest", "metrics.read", "DataExport"),
    KeyKind.POSTHOG_PERSONAL_KEY: ("query:read", "project:read", "metrics:read", "metrics:write"),
    KeyKind.POSTHOG_PROJECT_TOKEN: ("ingest",),
}

_ALNUM = string.ascii_letters + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def generate_key(kind: KeyKind) -> str:
    """A new secret in the shape the vendor's clients expect for this kind."""
    if kind is KeyKind.DD_API_KEY:
        return secrets.token_hex(16)
    if kind is KeyKind.DD_APP_KEY:
        return secrets.token_hex(20)
    if kind is KeyKind.DYNATRACE_TOKEN:
        return f"dt0c01.{_random(_UPPER_ALNUM, 24)}.{_random(_UPPER_ALNUM, 64)}"
    if kind is KeyKind.POSTHOG_PERSONAL_KEY:
        return "phx_" + _random(_ALNUM, 43)
    return "phc_" + _random(_ALNUM, 43)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    id: str
    org_id: int
    kind: KeyKind
    name: str
    scopes: tuple[str, ...]
    prefix: str
    posthog_project_id: int | None
    created_at: int
    revoked_at: int | None


def validate_scopes(kind: KeyKind, scopes: tuple[str, ...] | None) -> tuple[str, ...]:
    allowed = SCOPES[kind]
    if scopes is None:
        return allowed
    unknown = [s for s in scopes if s not in allowed]
    if unknown:
        raise ValueError(
            f"unknown scope(s) {', '.join(unknown)} for {kind.value}; allowed: {', '.join(allowed)}"
        )
    return scopes


def create_key(
    conn: sa.Connection,
    *,
    org_id: int,
    kind: KeyKind,
    name: str,
    scopes: tuple[str, ...] | None = None,
    posthog_project_id: int | None = None,
) -> tuple[KeyRecord, str]:
    """Store a new key; returns its record and the secret, which is never retrievable again."""
    raw = generate_key(kind)
    record = KeyRecord(
        id="key_" + secrets.token_hex(8),
        org_id=org_id,
        kind=kind,
        name=name,
        scopes=validate_scopes(kind, scopes),
        prefix=raw[:8],
        posthog_project_id=posthog_project_id,
        created_at=now_ms(),
        revoked_at=None,
    )
    conn.execute(
        schema.keys.insert().values(
            id=record.id,
            org_id=org_id,
            kind=kind.value,
            name=name,
            scopes=list(record.scopes),
            key_hash=hash_key(raw),
            prefix=record.prefix,
            posthog_project_id=posthog_project_id,
            created_at=record.created_at,
        )
    )
    return record, raw


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    m = row._mapping
    return KeyRecord(
        id=m["id"],
        org_id=m["org_id"],
        kind=KeyKind(m["kind"]),
        name=m["name"],
        scopes=tuple(m["scopes"]),
        prefix=m["prefix"],
        posthog_project_id=m["posthog_project_id"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
    )


def list_keys(conn: sa.Connection, org_id: int) -> list[KeyRecord]:
    rows = conn.execute(
        sa.select(schema.keys).where(schema.keys.c.org_id == org_id).order_by(schema.keys.c.created_at)
    )
    return [_record(r) for r in rows]


def find_key(conn: sa.Connection, raw: str) -> KeyRecord | None:
    """The key whose secret is `raw`, revoked or not."""
    row = conn.execute(sa.select(schema.keys).where(schema.keys.c.key_hash == hash_key(raw))).first()
    return None if row is None else _record(row)


def revoke_key(conn: sa.Connection, key_id: str) -> bool:
    """Revoke a key; False when no active key has that id."""
    result = conn.execute(
        schema.keys.update()
        .where(schema.keys.c.id == key_id, schema.keys.c.revoked_at.is_(None))
        .values(revoked_at=now_ms())
    )
    return result.rowcount == 1
