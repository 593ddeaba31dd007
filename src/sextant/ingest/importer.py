"""Bulk import of events from NDJSON or Parquet files, all-or-nothing.

The whole file goes in one store transaction: a bad record (reported with its line or row number) or an
interruption leaves the store as it was, so a failed import is fixed and simply run again. The store is
written directly, so the server must not be running on the same data dir (DuckDB allows one process).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq

from sextant.core.events import EventBatch
from sextant.core.timeutil import now_ms
from sextant.storage.duckdb.store import DuckDBStore

CHUNK_EVENTS = 20_000

AddEvent = Callable[[EventBatch, Any, int], None]
Progress = Callable[[int], None]


class ImportFailed(ValueError):
    pass


@dataclass(frozen=True)
class Source:
    """Records of a file, each with its 1-based line (NDJSON) or row (Parquet) number."""

    path: Path
    kind: str  # "ndjson" or "parquet"
    total: int  # bytes (NDJSON) or rows (Parquet), for progress

    @staticmethod
    def open(path: Path) -> Source:
        if not path.is_file():
            raise ImportFailed(f"{path} is not a file")
        if path.suffix.lower() in (".parquet", ".pq"):
            return Source(path, "parquet", pq.ParquetFile(path).metadata.num_rows)
        return Source(path, "ndjson", path.stat().st_size)

    def records(self, advance: Progress) -> Iterator[tuple[int, Any]]:
        if self.kind == "parquet":
            number = 0
            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=CHUNK_EVENTS):
                for record in batch.to_pylist():
                    number += 1
                    yield number, record
                advance(batch.num_rows)
            return
        decode = msgspec.json.Decoder().decode
        with self.path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                advance(len(line))
                if not line.strip():
                    continue
                try:
                    yield number, decode(line)
                except (msgspec.DecodeError, RecursionError) as exc:
                    raise ImportFailed(f"line {number}: not valid JSON ({exc})") from None


def import_events(store: DuckDBStore, source: Source, add: AddEvent, advance: Progress) -> int:
    """Add every record of `source` in one transaction; returns how many events were imported."""
    label = "row" if source.kind == "parquet" else "line"
    now = now_ms()
    next_id = store.max_event_id() + 1
    imported = 0
    with store.transaction():
        batch = EventBatch()
        for number, record in source.records(advance):
            try:
                add(batch, record, now)
            except ValueError as exc:
                raise ImportFailed(f"{label} {number}: {exc}") from None
            if len(batch) >= CHUNK_EVENTS:
                store.append_events(batch, next_id)
                next_id += len(batch)
                imported += len(batch)
                batch = EventBatch()
        if len(batch):
            store.append_events(batch, next_id)
            imported += len(batch)
    return imported
