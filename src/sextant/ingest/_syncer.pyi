COMPLETION_SIZE: int

class Syncer:
    """A native thread that fdatasyncs on request and reports each completion to a pipe."""

    def __init__(self, notify_fd: int) -> None: ...
    def sync(self, fd: int, seq: int, /) -> None:
        """fdatasync `fd` on the syncer's thread, then write (seq, errno) as two int64 to `notify_fd`."""

    def close(self) -> None:
        """Stop the thread after any outstanding sync (whose completion is still written)."""
