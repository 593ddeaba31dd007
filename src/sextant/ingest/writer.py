"""The write path: a writer thread that makes events durable, a loader thread that makes them queryable.

Requests hand their events to the queue and wait. The writer takes everything queued, appends it to the
ingest log as one record, fdatasyncs, and only then releases every request of the group: many requests
share one sync, and no request is answered before its events are durable. The loader moves logged groups
into the analytics store, many per transaction, within a fraction of a second, and does the store's
background work when idle. A bound on events not yet in the store turns overload into `WriteQueueFull`
(the faces answer 503 with Retry-After) instead of unbounded memory.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass

from sextant.core.events import EventBatch
from sextant.core.timeutil import now_ms, retention_floor_ms
from sextant.ingest.log import IngestLog, decode_batch, encode_batch
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.writer")

RETENTION_SWEEP_SECONDS = 3600.0
LOAD_INTERVAL_S = 0.05


class WriteQueueFull(Exception):
    """Too many events are waiting to be stored; the client should retry after `retry_after` seconds."""

    retry_after = 1


class WriterStopped(Exception):
    """The writer is shutting down and takes no more events."""


@dataclass
class _Pending:
    batch: EventBatch
    future: asyncio.Future[None]


@dataclass
class _Logged:
    seq: int
    batch: EventBatch
    first_event_id: int


_STOP = object()


def recover(store: Backend, ingest_log: IngestLog) -> int:
    """Load logged groups the store lacks (after a crash); returns the next log sequence number."""
    last = store.loaded_log_seq()
    replayed = 0
    for seq, payload in ingest_log.replay(last):
        batch, first_event_id = decode_batch(payload)
        store.append_events(batch, first_event_id, seq)
        replayed += len(batch)
        last = seq
    if replayed:
        log.info("recovered %d acknowledged events from the ingest log", replayed)
    ingest_log.prune(last)
    return last + 1


class GroupCommitWriter:
    def __init__(
        self, store: Backend, ingest_log: IngestLog, *, max_queued_events: int, max_commit_events: int
    ) -> None:
        self._store = store
        self._log = ingest_log
        self._max_queued = max_queued_events
        self._max_commit = max_commit_events
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        # Events accepted but not yet in the store; bounded by max_queued_events.
        self._queued = 0
        self._lock = threading.Lock()
        self._loaded = threading.Condition(self._lock)
        self._to_load: deque[_Logged] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._stopping = False
        self._writer_done = False
        self._next_seq = recover(store, ingest_log)
        ingest_log.start(self._next_seq)
        self._next_event_id = store.max_event_id() + 1
        self._last_sweep = 0.0
        self.commits = 0

    @property
    def running(self) -> bool:
        return self._writer is not None and self._writer.is_alive() and not self._stopping

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._writer = threading.Thread(target=self._write_loop, name="sextant-writer", daemon=True)
        self._loader = threading.Thread(target=self._load_loop, name="sextant-loader", daemon=True)
        self._writer.start()
        self._loader.start()

    async def write(self, batch: EventBatch) -> None:
        """Return once every event of `batch` is durable (and queryable within a second)."""
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
        """Make durable and store everything already accepted, then stop both threads."""
        with self._lock:
            self._stopping = True
        self._queue.put(_STOP)
        for thread in (self._writer, self._loader):
            if thread is not None:
                await asyncio.to_thread(thread.join)
        self._log.close()

    # --- writer thread: durability ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
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
        leftovers = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Pending):
                leftovers.append(item)
        if leftovers:
            self._commit(leftovers, sum(len(p.batch) for p in leftovers))
        with self._lock:
            self._writer_done = True
            self._loaded.notify_all()

    def _commit(self, group: list[_Pending], count: int) -> None:
        merged = group[0].batch
        if len(group) > 1:
            merged = EventBatch()
            for pending in group:
                merged.extend(pending.batch)
        error: BaseException | None = None
        seq, first_id = self._next_seq, self._next_event_id
        try:
            self._log.append(seq, encode_batch(merged, first_id))
        except Exception as exc:  # reported to every waiting request; the writer keeps going
            log.exception("appending %d events to the ingest log failed", count)
            error = exc
        if error is None:
            self._next_seq += 1
            self._next_event_id += count
            self.commits += 1
            with self._lock:
                self._to_load.append(_Logged(seq, merged, first_id))
                self._loaded.notify_all()
        else:
            with self._lock:
                self._queued -= count
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_settle, [p.future for p in group], error)

    # --- loader thread: visibility, and the store's background work -----------------------------------

    def _load_loop(self) -> None:
        last_load = 0.0
        while True:
            # Each store transaction has a fixed cost: under load, let groups gather for a moment so that
            # one transaction carries many (events still reach the store well within a second).
            pause = last_load + LOAD_INTERVAL_S - time.monotonic()
            if pause > 0 and not self._writer_done:
                time.sleep(pause)
            with self._lock:
                while not self._to_load and not self._writer_done:
                    if self._store.has_maintenance or self._due_sweep():
                        break
                    self._loaded.wait(timeout=60.0)
                groups = list(self._to_load)
                self._to_load.clear()
                done = self._writer_done and not groups
            if done:
                return
            if groups:
                last_load = time.monotonic()
                self._load(groups)
            else:
                self._maybe_sweep()
                self._maintain()

    def _load(self, groups: list[_Logged]) -> None:
        batch = groups[0].batch
        if len(groups) > 1:
            batch = EventBatch()
            for g in groups:
                batch.extend(g.batch)
        try:
            self._store.append_events(batch, groups[0].first_event_id, groups[-1].seq)
        except Exception:
            # The events are durable in the log. Retry in order (a later group must not be stored before
            # them); while this fails, unstored events pile up and the intakes answer 503.
            log.exception("loading %d logged events into the store failed; retrying", len(batch))
            with self._lock:
                if not self._writer_done:
                    self._to_load.extendleft(reversed(groups))
                    self._loaded.wait(timeout=1.0)
                    return
            log.error(
                "stopping with %d events in the ingest log only; they load at the next start", len(batch)
            )
            return
        self._log.prune(groups[-1].seq)
        with self._lock:
            self._queued -= len(batch)

    def _due_sweep(self) -> bool:
        return time.monotonic() - self._last_sweep >= RETENTION_SWEEP_SECONDS

    def _maintain(self) -> None:
        # Loading comes first: one bounded step at a time, and only while nothing waits to be loaded.
        while self._store.has_maintenance and not self._to_load:
            try:
                self._store.maintain()
            except Exception:
                log.exception("background maintenance failed")
                return
            if self._writer_done:
                return

    def _maybe_sweep(self) -> None:
        if not self._due_sweep():
            return
        self._last_sweep = time.monotonic()
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
