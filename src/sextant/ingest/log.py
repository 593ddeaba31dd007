"""The ingest log: where accepted events and metric points become durable before they reach the store.

A commit of the analytics store costs milliseconds; appending to a file and fdatasync'ing it costs a
fraction of one. So the writer appends each group of requests as one record here, syncs, and only then
answers them; the loader moves records into the store in larger transactions that also record the last
record loaded. After a crash, records past that mark are loaded again: nothing acknowledged is lost,
nothing is loaded twice.

A record is `length (u32) | crc32 (u32) | sequence (u64) | payload`; a segment file is named after the
sequence of its first record. A torn record at the end of the last segment (a crash during the append,
so never acknowledged) ends the replay.

Under load, segments are written into files prepared beforehand: zero-filled to their full size and
synced, in the background. Appending to a file changes its size, which every fdatasync must then commit
through the filesystem's journal; writing over blocks that already exist changes only data, and the
sync is a third faster and far steadier. Zeros after the last record read as its end (no record is
empty).
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from sextant.core.events import EventBatch
from sextant.core.metrics import PlainRuns, PointBatch

log = logging.getLogger("sextant.ingest")

_HEADER = struct.Struct("<IIQ")
SEGMENT_BYTES = 64 * 1024 * 1024
_SUFFIX = ".log"
# The next segment, zero-filled and synced, waiting to be renamed in place (never a "*.log" file).
_PREPARED = "next-segment.prepared"
_PREPARING = "next-segment.preparing"

_EVENT_COLUMNS = tuple(c for c in EventBatch.__slots__ if c != "array_paths")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class LoggedBatch:
    """What one log record holds: the events and the metric points of one group of requests."""

    __slots__ = ("events", "points")

    def __init__(self, events: EventBatch | None = None, points: PointBatch | None = None) -> None:
        self.events = events
        self.points = points

    def __len__(self) -> int:
        return (len(self.events) if self.events else 0) + (len(self.points) if self.points else 0)

    @property
    def event_count(self) -> int:
        return len(self.events) if self.events else 0

    def add(self, batch: EventBatch | PointBatch) -> None:
        """Take `batch` in (the first of each kind without a copy: the caller must not change it after)."""
        if isinstance(batch, EventBatch):
            if self.events is None:
                self.events = batch
            else:
                self.events.extend(batch)
        elif self.points is None:
            self.points = batch
        else:
            self.points.extend(batch)

    def extend(self, other: LoggedBatch) -> None:
        for part in (other.events, other.points):
            if part is not None:
                self.add(part)


def encode_batch(
    batch: LoggedBatch, first_event_id: int, series: Iterable[tuple[int, int]] | None = None
) -> bytes:
    """The record of a batch. `series`: the series whose definitions (name and tags) it carries, by default
    all it has points of; a writer names only those no earlier record defined (see `recover`)."""
    events = batch.events
    event_columns = None if events is None else [getattr(events, c) for c in _EVENT_COLUMNS]
    array_paths = [] if events is None else sorted(events.array_paths)
    points = batch.points
    if points is None:
        return _encode((first_event_id, event_columns, array_paths))
    known = points.series
    defined = [(org, sid, *known[org, sid]) for org, sid in (known if series is None else series)]
    resource = [
        (org, sid, points.resource_tags[org, sid])
        for org, sid, *_ in defined
        if (org, sid) in points.resource_tags
    ]
    columns, runs = points.parts()
    # Run buffers as raw bytes: the log is read back only on the machine that wrote it.
    plain = (runs.headers, bytes(runs.times_ms), bytes(runs.values))
    return _encode((first_event_id, event_columns, array_paths, columns, defined, plain, resource))


def decode_batch(payload: bytes) -> tuple[LoggedBatch, int]:
    # Records written before metrics existed have three parts; their events are read the same way.
    parts = _decode(payload)
    first_event_id, event_columns, array_paths = parts[:3]
    batch = LoggedBatch()
    if event_columns is not None:
        events = EventBatch()
        for name, values in zip(_EVENT_COLUMNS, event_columns, strict=True):
            setattr(events, name, values)
        events.array_paths = set(array_paths)
        batch.events = events
    if len(parts) > 3:
        point_columns, series, (headers, times, values) = parts[3], parts[4], parts[5]
        runs = PlainRuns([tuple(h) for h in headers], bytearray(times), bytearray(values))
        batch.points = PointBatch.from_parts(
            point_columns,
            runs,
            {(org, sid): (metric, tuple(tags)) for org, sid, metric, tags in series},
        )
        # Records written before resource tags were kept have six parts.
        if len(parts) > 6:
            batch.points.resource_tags = {(org, sid): tuple(tags) for org, sid, tags in parts[6]}
    return batch, first_event_id


def _rename(source: Path, target: Path) -> bool:
    try:
        os.rename(source, target)
    except FileNotFoundError:  # removed by hand: a growing file does as well, only slower to sync
        return False
    return True


class IngestLog:
    """Append-only segments in one directory. One thread appends; another may prune."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file: int | None = None
        self._size = 0
        # The next segment: "ready" (prepared), "preparing" (by a background thread), or "" (neither:
        # asked for once the current segment has seen traffic; "failed" until the next segment then).
        self._next = "ready" if (directory / _PREPARED).exists() else ""
        # Left by a stop during the preparation: its zeros may not all be there.
        (directory / _PREPARING).unlink(missing_ok=True)

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._dir.glob(f"*{_SUFFIX}"):
            stem = path.name[: -len(_SUFFIX)]
            if stem.isdigit():
                found.append((int(stem), path))
        return sorted(found)

    def replay(self, after_seq: int) -> Iterator[tuple[int, bytes]]:
        """Every intact record with a sequence above `after_seq`, in order."""
        for _, path in self._segments():
            data = path.read_bytes()
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, crc, seq = _HEADER.unpack_from(data, offset)
                if length == 0:
                    break  # the unused, zero-filled rest of a prepared segment
                payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
                if len(payload) < length or zlib.crc32(payload) != crc:
                    log.warning(
                        "ingest log %s ends with a torn record at byte %d; it was never acknowledged",
                        path.name,
                        offset,
                    )
                    break
                if seq > after_seq:
                    yield seq, payload
                offset += _HEADER.size + length

    def start(self, next_seq: int) -> None:
        """Open a fresh segment for records from `next_seq` on (after replay)."""
        self._open(next_seq)

    def _open(self, first_seq: int) -> None:
        path = self._dir / f"{first_seq:020d}{_SUFFIX}"
        if self._next == "ready" and _rename(self._dir / _PREPARED, path):
            self._file = os.open(path, os.O_WRONLY)
            self._next = ""
        else:
            self._file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            if self._next != "preparing":
                self._next = ""
        self._size = 0
        # The new file's directory entry must be durable too, or a crash could lose the whole segment.
        directory = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @property
    def rotates(self) -> bool:
        """The next write starts a new segment."""
        return self._file is None or self._size >= SEGMENT_BYTES

    def append(self, seq: int, payload: bytes) -> None:
        """Write one record and make it durable before returning (see `place` for when a record may start
        a new segment)."""
        fd, offset, record = self.place(seq, payload)
        try:
            written = os.pwrite(fd, record, offset)
            if written != len(record):
                raise OSError(f"short write to the ingest log ({written} of {len(record)} bytes)")
        except OSError:
            self.discard_from(offset)
            raise
        os.fdatasync(fd)

    def place(self, seq: int, payload: bytes) -> tuple[int, int, bytes]:
        """Make room for one record at the end of the log: the file descriptor and offset to write it at,
        and the record. Until it is written there, no later record may be; if it cannot be written
        whole, `discard_from(offset)`.

        When the record `rotates` the log, call only once every earlier record is durable: syncing the new
        segment does not sync the one before."""
        if self.rotates:
            with self._lock:
                if self._file is not None:
                    os.close(self._file)
                self._open(seq)
        assert self._file is not None
        record = _HEADER.pack(len(payload), zlib.crc32(payload), seq) + payload
        offset = self._size
        self._size += len(record)
        if not self._next and self._size >= SEGMENT_BYTES // 8:
            # Only once a segment has seen real traffic: an idle server keeps no 64 MB of zeros around.
            self._next = "preparing"
            threading.Thread(target=self._prepare, name="sextant-log-preparer", daemon=True).start()
        return self._file, offset, record

    def discard_from(self, offset: int) -> None:
        """Cut the current segment off at `offset`, where a record was placed but not written whole: a
        torn record would end every later replay there, and the records placed after it were never
        written. The next record goes at `offset`."""
        assert self._file is not None
        try:
            os.ftruncate(self._file, offset)
        except OSError as exc:
            # Whatever is left there must not hide later records: they go to a new segment instead.
            log.error("could not cut the ingest log back to byte %d (%s): a new segment follows", offset, exc)
            self._size = SEGMENT_BYTES
            return
        self._size = offset

    def _prepare(self) -> None:
        preparing = self._dir / _PREPARING
        try:
            fd = os.open(preparing, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                zeros = bytes(min(SEGMENT_BYTES, 1024 * 1024))
                left = SEGMENT_BYTES
                while left > 0:
                    left -= os.write(fd, zeros[: min(left, len(zeros))])
                # Durable zeros, so that the blocks exist: overwriting them will change no metadata.
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(preparing, self._dir / _PREPARED)
        except OSError as exc:
            # Only slower syncs follow: the next segment is then a file that grows.
            log.warning("could not prepare the next ingest log segment: %s", exc)
            preparing.unlink(missing_ok=True)
            self._next = "failed"
        else:
            self._next = "ready"

    def prune(self, loaded_seq: int) -> None:
        """Delete segments whose every record is in the store (never the segment being written)."""
        with self._lock:
            segments = self._segments()
            for (_, path), (next_first, _) in itertools.pairwise(segments):
                if next_first <= loaded_seq + 1:
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                os.close(self._file)
                self._file = None
