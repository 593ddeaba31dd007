"""The contract every analytics store implements."""

from __future__ import annotations

from typing import Protocol

from sextant.core.events import EventBatch


class Backend(Protocol):
    def append_events(self, batch: EventBatch, first_event_id: int) -> None:
        """Store `batch` in one transaction, durable when this returns; ids run from `first_event_id`."""

    def max_event_id(self) -> int:
        """The largest event id stored, 0 when there is none."""

    def delete_events_before(self, time_ms: int) -> int:
        """Drop events older than `time_ms` (retention); returns how many were dropped."""

    def close(self) -> None:
        """Flush and release the store."""
