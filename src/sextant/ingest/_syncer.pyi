COMPLETION_SIZE: int

class Syncer:
    """A native thread that fdatasyncs on request and reports each completion to a pipe."""

    spin_ns: int
    """How long the thread watches for the next sync request after each sync before it sleeps."""
    watch_ns: int
    """How long the thread watches after its next sync: spin_ns, or less after watches that missed."""
    wakeups: int
    """How many sync requests found the thread asleep and had to wake it."""

    def __init__(self, notify_fd: int, *, spin_ns: int = 300_000) -> None: ...
    def sync(self, fd: int, seq: int, /) -> None:
        """fdatasync `fd` on the syncer's thread, then write (seq, errno) as two int64 to `notify_fd`."""

    def close(self) -> None:
        """Stop the thread after any outstanding sync (whose completion is still written)."""
