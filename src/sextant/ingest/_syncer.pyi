COMPLETION_SIZE: int

class Syncer:
    """A native thread that writes ingest-log records, fdatasyncs them and reports each completion to a
    pipe."""

    spin_ns: int
    """How long the thread watches for the next write request after each sync before it sleeps."""
    watch_ns: int
    """How long the thread watches after its next sync: spin_ns, or less after watches that missed."""
    wakeups: int
    """How many write requests found the thread asleep and had to wake it."""

    def __init__(self, notify_fd: int, *, spin_ns: int = 300_000) -> None: ...
    def write(self, fd: int, offset: int, record: bytes, seq: int, /) -> None:
        """pwrite a copy of `record` at `offset` of `fd` on the syncer's thread, fdatasync `fd`, then write
        (seq, errno) as two int64 to `notify_fd`. Writes asked for meanwhile are synced together and
        reported once, for the newest seq. After a failed write, every write fails until `resume()`."""

    def resume(self) -> None:
        """Writes asked for from now on are written again (call once the failed record is cut off)."""

    def close(self) -> None:
        """Stop the thread after any outstanding writes and sync (whose completions are still written)."""
