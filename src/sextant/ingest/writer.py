"""One writer thread with group commit.

Requests hand their events to the queue and wait. The writer takes everything queued, commits it as one
Arrow batch in one transaction, and only then releases every request in that batch: many requests share
one fsync, and no request is answered before its events are durable. A bounded queue turns overload into
`WriteQueueFull` (the faces answer 503 with Retry-After) instead of unbounded memory.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass

from sextant.core.events import EventBatch
from sextant.core.timeutil import now_ms, retention_floor_ms
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.writer")

RETENTION_SWEEP_SECONDS = 3600.0


class WriteQueueFull(Exception):
    """Too many events are waiting for a commit; the client should retry after `retry_after` seconds."""

    retry_after = 1


class WriterStopped(Exception):
    """The writer is shutting down and takes no more events."""


@dataclass
class _Pending:
    batch: EventBatch
    future: asyncio.Future[None]


_STOP = object()


class GroupCommitWriter:
    def __init__(self, store: Backend, *, max_queued_events: int, max_commit_events: int) -> None:
        self._store = store
        self._max_queued = max_queued_events
        self._max_commit = max_commit_events
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._queued = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_event_id = store.max_event_id() + 1
        self._last_sweep = 0.0
        self.commits = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="sextant-writer", daemon=True)
        self._thread.start()

    async def write(self, batch: EventBatch) -> None:
        """Return once every event of `batch` is committed durably."""
        n = len(batch)
        if n == 0:
            return
        with self._lock:
            if self._stopping:
                raise WriterStopped()
            if self._queued + n > self._max_queued and self._queued > 0:
                raise WriteQueueFull()
            self._queued += n
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_Pending(batch, future))
        # Shielded: a client that hangs up does not cancel a commit other requests share.
        await asyncio.shield(future)

    async def stop(self) -> None:
        """Commit everything already queued, then stop the thread."""
        with self._lock:
            self._stopping = True
        self._queue.put(_STOP)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                # With background work waiting, come back to it soon; otherwise sleep until a write.
                first = self._queue.get(timeout=0.05 if self._store.has_maintenance else 60.0)
            except queue.Empty:
                self._maybe_sweep()
                self._maintain()
                continue
            if first is _STOP:
                break
            assert isinstance(first, _Pending)
            group = [first]
            count = len(first.batch)
            while count < self._max_commit:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, _Pending)
                group.append(item)
                count += len(item.batch)
            self._commit(group, count)
            self._maybe_sweep()
            self._maintain()
        self._drain_after_stop()

    def _maintain(self) -> None:
        # Writes come first: one bounded step at a time, and only while no request is waiting.
        while self._store.has_maintenance and self._queue.empty():
            try:
                self._store.maintain()
            except Exception:
                log.exception("background maintenance failed")
                return

    def _drain_after_stop(self) -> None:
        group: list[_Pending] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Pending):
                group.append(item)
        if group:
            self._commit(group, sum(len(p.batch) for p in group))

    def _commit(self, group: list[_Pending], count: int) -> None:
        merged = group[0].batch
        if len(group) > 1:
            merged = EventBatch()
            for pending in group:
                merged.extend(pending.batch)
        error: BaseException | None = None
        try:
            self._store.append_events(merged, self._next_event_id)
            self._next_event_id += count
            self.commits += 1
        except Exception as exc:  # reported to every waiting request; the writer keeps going
            log.exception("commit of %d events failed", count)
            error = exc
        with self._lock:
            self._queued -= count
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, [p.future for p in group], error)

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < RETENTION_SWEEP_SECONDS:
            return
        self._last_sweep = now
        try:
            dropped = self._store.delete_events_before(retention_floor_ms(now_ms()))
        except Exception:
            log.exception("retention sweep failed")
            return
        if dropped:
            log.info("retention sweep dropped %d events older than 15 months", dropped)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
