"""Server settings: one immutable object, built from CLI flags (typer also reads SEXTANT_* variables)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Resource bounds. Each one has a documented error and a test."""

    # Datadog documents 5 MB uncompressed for /api/v2/prodlytics; compressed bodies may not be larger.
    intake_body_bytes: int = 5 * MIB
    intake_decoded_bytes: int = 5 * MIB
    json_depth: int = 32
    # Events accepted but not yet in the store. Past this the intakes answer 503 with Retry-After.
    write_queue_events: int = 200_000
    # Metric points accepted but not yet in the store (a plain point takes a few dozen bytes meanwhile).
    write_queue_points: int = 2_000_000
    # How long a request may wait for room in a full queue before that 503: a client sending as fast as it
    # can is slowed to the store's pace rather than refused, and a 503 means the store has fallen behind.
    queue_wait_s: float = 2.0
    # Events in one commit: large enough to amortize the fsync, small enough to bound commit latency.
    commit_events: int = 50_000
    # Datadog documents these for POST /api/v2/series (500 KB compressed, 5 MB decompressed) and
    # POST /api/v1/series (3.2 MB compressed, 62 MiB decompressed).
    series_v2_body_bytes: int = 512_000
    series_v2_decoded_bytes: int = 5_242_880
    series_v1_body_bytes: int = 3_200_000
    series_v1_decoded_bytes: int = 62_914_560
    # Datadog logs: 5 MB per request (uncompressed), 1 MB per log, 1000 logs per request.
    logs_body_bytes: int = 5 * MIB
    logs_decoded_bytes: int = 5 * MIB
    log_entry_bytes: int = 1 * MIB
    logs_per_request: int = 1000
    # OTLP/HTTP names no limit; these keep one export's decoded objects well within memory.
    otlp_body_bytes: int = 8 * MIB
    otlp_decoded_bytes: int = 32 * MIB
    # Dynatrace metrics ingest v2.
    dynatrace_body_bytes: int = 1 * MIB
    dynatrace_decoded_bytes: int = 1 * MIB


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    access_log: bool = True
    limits: Limits = Limits()

    @property
    def control_db_path(self) -> Path:
        return self.data_dir / "control.sqlite3"

    @property
    def store_path(self) -> Path:
        return self.data_dir / "sextant.duckdb"

    @property
    def ingest_log_dir(self) -> Path:
        return self.data_dir / "ingest-log"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials.json"
