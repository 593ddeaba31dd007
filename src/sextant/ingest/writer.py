"""The write path: the event loop makes events and metric points durable, a loader thread makes them
queryable.

Requests add their events or points to the open group (one log record holds both kinds) and wait.
Once per turn of the event loop, the loop encodes the group gathered so far as one ingest-log record,
places it at the end of the log and hands it to the syncer (a native thread, see _syncer.c), which
writes it there and fdatasyncs the log; the syncer's completions arrive through a pipe the loop
watches, and only then are the requests of the synced groups released: many requests share one sync,
and no request is answered before its data is durable. The syncer does not wait for the loop between
syncs: while one runs, the groups handed over meanwhile wait for the next, which starts as soon as it
is done. Nothing on this path
waits for the interpreter lock held by another thread. The loader moves logged groups into the analytics
store, many per transaction, within a fraction of a second, and does the store's background work when
idle. A bound on events and points not yet in the store turns overload into `WriteQueueFull` (the faces
answer 503 with Retry-After) instead of unbounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass

from sextant.core.events import EventBatch
from sextant.core.metrics import PointBatch
from sextant.core.timeutil import now_ms, retention_floor_ms
from sextant.ingest._syncer import COMPLETION_SIZE, Syncer
from sextant.ingest.log import IngestLog, LoggedBatch, decode_batch, encode_batch
from sextant.storage.backend import Backend

log = logging.getLogger("sextant.writer")

RETENTION_SWEEP_SECONDS = 3600.0
# Every load takes the interpreter lock a few hundred times (DuckDB calls, Arrow conversion), each time
# taking it from the event loop: loading four times a second instead of twenty measured 10-20% more
# single-event intake, and events still become queryable well within a second.
LOAD_INTERVAL_S = 0.25
# How much lower than the event loop's the loader thread's scheduling priority is (its nice value, added).
# A load keeps one core busy for tens of milliseconds (DuckDB's insert and commit), and at equal priority
# the scheduler shares a core between the two whenever both want it; but events need only be queryable
# within a second, while every request waits on the event loop. Measured: 2-4% more single-event intake.
# Under full load of both cores the loader still gets about a tenth of one, more than a load needs.
LOADER_NICENESS = 10
# What the syncer reports per sync: the sequence number and errno (0 on success, negated for a failed
# write rather than a failed sync), native byte order.
_COMPLETION = struct.Struct("=qq")


class WriteQueueFull(Exception):
    """Too many events or points wait to be stored; the client should retry after `retry_after` seconds."""

    retry_after = 1


class WriterStopped(Exception):
    """The writer is shutting down and takes no more events."""


@dataclass(frozen=True)
class Busy:
    """Why the writer takes nothing now, for a face to answer 503 in its vendor's format."""

    message: str
    retry_after: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


_STOPPING = Busy("The server is shutting down; retry shortly", 1)


def submit(writer: GroupCommitWriter, batch: EventBatch | PointBatch, what: str) -> Awaitable[Busy | None]:
    """Write `batch`; await the result to learn once it is durable (None), or why the writer cannot take
    it (after waiting up to the writer's `queue_wait_s` for room in a full queue); `what` names what
    waits ("events", ...). A failure to write or sync is raised by the await."""
    try:
        # The writer's own future: the request's task waits on it without a coroutine in between.
        return writer.write(batch)
    except WriteQueueFull:
        return _submit_when_room(writer, batch, what)
    except WriterStopped:
        return _answered(_STOPPING)


async def _submit_when_room(
    writer: GroupCommitWriter, batch: EventBatch | PointBatch, what: str
) -> Busy | None:
    try:
        durable = await writer.write_when_room(batch, writer.queue_wait_s)
    except WriteQueueFull as exc:
        return Busy(f"Too many {what} are waiting to be written; retry shortly", exc.retry_after)
    except WriterStopped:
        return _STOPPING
    await durable
    return None


async def _answered(busy: Busy) -> Busy:
    return busy


class _Group:
    """Requests whose events are made durable by one append and one sync."""

    __slots__ = ("batch", "futures", "size")

    def __init__(self) -> None:
        self.batch = LoggedBatch()
        self.futures: list[asyncio.Future[None]] = []
        # len(batch), kept here: every write compares it with the commit bound.
        self.size = 0


@dataclass
class _Logged:
    seq: int
    batch: LoggedBatch
    first_event_id: int
    # Where the record was placed, in which of the syncer's epochs (see _failed), and the series it was
    # the first to define.
    offset: int
    epoch: int
    new_series: tuple[tuple[int, int], ...]


def store_batch(store: Backend, batch: LoggedBatch, first_event_id: int, log_seq: int) -> None:
    """Store a logged group in one transaction that also records `log_seq` as loaded."""
    events, points = batch.events, batch.points
    if events is not None and points is not None:
        with store.transaction():
            store.append_events(events, first_event_id)
            store.append_points(points, log_seq)
    elif events is not None:
        store.append_events(events, first_event_id, log_seq)
    elif points is not None:
        store.append_points(points, log_seq)


def recover(store: Backend, ingest_log: IngestLog) -> int:
    """Load logged groups the store lacks (after a crash); returns the next log sequence number."""
    last = store.loaded_log_seq()
    replayed = 0
    for seq, payload in ingest_log.replay(last):
        batch, first_event_id = decode_batch(payload)
        if batch.points is not None:
            # A record defines only the series no earlier one did; those earlier records are stored by
            # now (they are replayed in order, and pruned only once stored), so the store knows the rest.
            points = batch.points
            missing = points.referenced_series() - points.series.keys()
            points.series.update(store.series_definitions(missing))
        store_batch(store, batch, first_event_id, seq)
        replayed += len(batch)
        last = seq
    if replayed:
        log.info("recovered %d acknowledged events and points from the ingest log", replayed)
    ingest_log.prune(last)
    return last + 1


def _lower_priority(niceness: int) -> None:
    """Add `niceness` to the calling thread's nice value (Linux keeps one per thread)."""
    if sys.platform != "linux":
        return  # elsewhere the nice value is the whole process's, the event loop's too
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError as exc:  # a sandbox may refuse it; only the intake's rate is at stake
        log.warning("could not lower the loader thread's priority: %s", exc)


class GroupCommitWriter:
    def __init__(
        self,
        store: Backend,
        ingest_log: IngestLog,
        *,
        max_queued_events: int,
        max_commit_events: int,
        max_queued_points: int = 2_000_000,
        queue_wait_s: float = 0.0,
    ) -> None:
        self._store = store
        # How long a write may wait for room in a full queue before it is refused (see submit).
        self.queue_wait_s = queue_wait_s
        self._log = ingest_log
        self._max_queued = max_queued_events
        self._max_queued_points = max_queued_points
        self._max_commit = max_commit_events
        # Event-loop side, touched by the loop thread only: groups not yet written (the last one is open),
        # whether a turn of the loop will write them, and the groups written but not yet synced, in order.
        self._groups: deque[_Group] = deque()
        self._flush_scheduled = False
        self._syncing: deque[tuple[_Logged, _Group]] = deque()
        # Raised with the syncer's own after a failed write (see _failed).
        self._epoch = 0
        self._drained: asyncio.Future[None] | None = None
        self._synced_r, self._synced_w = os.pipe()
        self._syncer: Syncer | None = None
        # Events, and metric points, accepted but not yet in the store; each kind has its bound (a plain
        # point takes a few dozen bytes until it is stored, an event about a kilobyte).
        self._queued = 0
        self._queued_points = 0
        # True while the loader lets groups gather (see _load_loop); guarded by _lock.
        self._gathering = False
        # Requests waiting for room in a full queue (write_when_room), woken when loads free some.
        self._room_waiters: list[asyncio.Future[None]] = []
        self._lock = threading.Lock()
        self._loaded = threading.Condition(self._lock)
        self._to_load: deque[_Logged] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loader: threading.Thread | None = None
        self._stopping = False
        self._writer_done = False
        self._next_seq = recover(store, ingest_log)
        ingest_log.start(self._next_seq)
        self._next_event_id = store.max_event_id() + 1
        # Series some log record or the store defines: a record carries only the definitions of new ones.
        self._defined_series: set[tuple[int, int]] = store.known_series()
        self._last_sweep = 0.0
        self.commits = 0

    @property
    def running(self) -> bool:
        return self._loader is not None and self._loader.is_alive() and not self._stopping

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        os.set_blocking(self._synced_r, False)
        self._loop.add_reader(self._synced_r, self._synced)
        self._syncer = Syncer(self._synced_w)
        self._loader = threading.Thread(target=self._load_loop, name="sextant-loader", daemon=True)
        self._loader.start()

    def write(self, batch: EventBatch | PointBatch) -> asyncio.Future[None]:
        """A future done once every event or point of `batch` is durable (and queryable within a second).

        The writer takes `batch` over: the caller must not change it afterwards. Call from the loop that
        started the writer. Refusals (WriteQueueFull, WriterStopped) are raised at once; a failure to
        write or sync is the future's exception."""
        assert self._loop is not None
        n = len(batch)
        if n == 0:
            done: asyncio.Future[None] = self._loop.create_future()
            done.set_result(None)
            return done
        if self._stopping:
            raise WriterStopped()
        with self._lock:
            if isinstance(batch, PointBatch):
                if self._queued_points + n > self._max_queued_points and self._queued_points > 0:
                    raise WriteQueueFull()
                self._queued_points += n
            else:
                if self._queued + n > self._max_queued and self._queued > 0:
                    raise WriteQueueFull()
                self._queued += n
        groups = self._groups
        group = groups[-1] if groups else None
        if group is None or group.size >= self._max_commit:
            group = _Group()
            groups.append(group)
        group.batch.add(batch)
        group.size += n
        future: asyncio.Future[None] = self._loop.create_future()
        group.futures.append(future)
        if not self._flush_scheduled:
            # The rest of this turn of the loop joins the group: one record, and one write, for all.
            self._flush_scheduled = True
            self._loop.call_soon(self._write_groups)
        # A client that hangs up cancels only its own future: the group is written all the same.
        return future

    async def write_when_room(self, batch: EventBatch | PointBatch, wait_s: float) -> asyncio.Future[None]:
        """`write(batch)` once the queue has room for it, waiting up to `wait_s`; then WriteQueueFull."""
        assert self._loop is not None
        deadline = self._loop.time() + wait_s
        while True:
            waiter = self._loop.create_future()
            self._room_waiters.append(waiter)
            try:
                # Tried again after registering: room freed just before would have woken nobody.
                return self.write(batch)
            except WriteQueueFull:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, remaining)
            finally:
                if waiter in self._room_waiters:
                    self._room_waiters.remove(waiter)

    def _wake_room_waiters(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def stop(self) -> None:
        """Make durable and store everything already accepted, then stop."""
        self._stopping = True
        assert self._loop is not None
        if self._syncing or self._groups:
            self._drained = self._loop.create_future()
            await self._drained
        self._loop.remove_reader(self._synced_r)
        if self._syncer is not None:
            self._syncer.close()
        os.close(self._synced_r)
        os.close(self._synced_w)
        with self._lock:
            self._writer_done = True
            self._loaded.notify_all()
        if self._loader is not None:
            await asyncio.to_thread(self._loader.join)
        self._log.close()

    def _write_groups(self) -> None:
        """Place the waiting groups in the log and have the syncer write and sync them."""
        assert self._syncer is not None
        self._flush_scheduled = False
        while self._groups:
            if self._log.rotates and self._syncing:
                # A sync covers one segment: the next one starts once this one is durable (see _synced).
                break
            group = self._groups.popleft()
            batch = group.batch
            seq, first_id = self._next_seq, self._next_event_id
            new_series = self._new_series(batch)
            try:
                fd, offset, record = self._log.place(seq, encode_batch(batch, first_id, new_series))
            except Exception as exc:  # reported to the group's requests; the writer keeps going
                log.exception("appending %d events and points to the ingest log failed", len(batch))
                self._release(group, batch, exc)
                continue
            try:
                self._syncer.write(fd, offset, record, seq)
            except Exception as exc:
                self._log.discard_from(offset)
                log.exception("handing %d events and points to the syncer failed", len(batch))
                self._release(group, batch, exc)
                continue
            # The record may be in the log file from now on, durable or not: never reuse its numbers.
            self._defined_series.update(new_series)
            self._next_seq += 1
            self._next_event_id += batch.event_count
            logged = _Logged(seq, batch, first_id, offset, self._epoch, tuple(new_series))
            self._syncing.append((logged, group))
        self._note_drained()

    def _note_drained(self) -> None:
        if not self._groups and not self._syncing and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def _new_series(self, batch: LoggedBatch) -> list[tuple[int, int]]:
        if batch.points is None:
            return []
        defined = self._defined_series
        return [key for key in batch.points.series if key not in defined]

    def _synced(self) -> None:
        """On the loop, when the syncer reports: release the synced groups, then write any waiting."""
        try:
            data = os.read(self._synced_r, COMPLETION_SIZE * 256)
        except BlockingIOError:
            return
        synced: list[_Logged] = []
        for seq, errno_value in _COMPLETION.iter_unpack(data):
            while self._syncing and self._syncing[0][0].seq <= seq:
                logged, group = self._syncing.popleft()
                if errno_value:
                    self._failed(logged, group, errno_value)
                else:
                    synced.append(logged)
                    self._release(group, None, None)
        if synced:
            self.commits += len(synced)
            with self._lock:
                self._to_load.extend(synced)
                # A gathering loader is woken only to keep the queue from filling (see _load_loop).
                if not self._gathering or self._behind():
                    self._loaded.notify_all()
        if self._groups and not self._flush_scheduled:
            self._write_groups()
        else:
            self._note_drained()

    def _failed(self, logged: _Logged, group: _Group, errno_value: int) -> None:
        """A group's record was not made durable: tell its requests, and let later records stand."""
        write_failed = errno_value < 0
        exc = OSError(abs(errno_value), os.strerror(abs(errno_value)))
        what = "writing" if write_failed else "syncing"
        log.error("%s %d events and points to the ingest log failed: %s", what, len(logged.batch), exc)
        # Later records must define the series again: this one may never be read back.
        self._defined_series.difference_update(logged.new_series)
        if write_failed and logged.epoch == self._epoch:
            # The first write of this epoch to fail: it may have left a torn record, and every record
            # placed after it fails unwritten (the syncer's failure is sticky). Cut the tear off, and
            # write again from there.
            assert self._syncer is not None
            self._log.discard_from(logged.offset)
            self._epoch += 1
            self._syncer.resume()
        self._release(group, logged.batch, exc)

    def _release(self, group: _Group, unqueue: LoggedBatch | None, error: BaseException | None) -> None:
        if unqueue is not None:
            self._unqueue(unqueue)
        for future in group.futures:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    # --- loader thread: visibility, and the store's background work -----------------------------------

    def _behind(self) -> bool:
        """More than a quarter of a queue bound waits to be stored (call with _lock held)."""
        return self._queued * 4 > self._max_queued or self._queued_points * 4 > self._max_queued_points

    def _load_loop(self) -> None:
        _lower_priority(LOADER_NICENESS)
        last_load = 0.0
        while True:
            # Each store transaction has a fixed cost: under load, let groups gather for a moment so that
            # one transaction carries many (events still reach the store well within a second).
            # Unless the queue is filling up: then loads follow each other at once, so that bursts of
            # batches are answered with 503 only when the store truly cannot keep up.
            pause = last_load + LOAD_INTERVAL_S - time.monotonic()
            if pause > 0 and not self._writer_done:
                with self._lock:
                    self._gathering = True
                    self._loaded.wait_for(lambda: self._writer_done or self._behind(), timeout=pause)
                    self._gathering = False
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
            batch = LoggedBatch()
            for g in groups:
                batch.extend(g.batch)
        try:
            store_batch(self._store, batch, groups[0].first_event_id, groups[-1].seq)
        except Exception:
            # The events are durable in the log. Retry in order (a later group must not be stored before
            # them); while this fails, unstored events pile up and the intakes answer 503.
            log.exception("loading %d logged events and points into the store failed; retrying", len(batch))
            with self._lock:
                if not self._writer_done:
                    self._to_load.extendleft(reversed(groups))
                    self._loaded.wait(timeout=1.0)
                    return
            log.error(
                "stopping with %d events and points in the ingest log only; they load at the next start",
                len(batch),
            )
            return
        self._log.prune(groups[-1].seq)
        self._unqueue(batch)

    def _unqueue(self, batch: LoggedBatch) -> None:
        with self._lock:
            self._queued -= batch.event_count
            self._queued_points -= len(batch) - batch.event_count
        if self._room_waiters and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_room_waiters)

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
        floor = retention_floor_ms(now_ms())
        try:
            dropped = self._store.delete_events_before(floor)
            dropped_points = self._store.delete_points_before(floor)
        except Exception:
            log.exception("retention sweep failed")
            return
        if dropped or dropped_points:
            log.info(
                "retention sweep dropped %d events and %d metric points older than 15 months",
                dropped,
                dropped_points,
            )
