"""Query deadlines: one thread calls a query's cancel function when its time is up.

A timer thread per query would cost more than a small query itself; this keeps one for the process.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._cancels: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, timeout_s: float, cancel: Callable[[], None]) -> int:
        """Call `cancel` in `timeout_s` seconds unless disarmed first; returns the ticket to disarm."""
        ticket = next(self._ids)
        with self._wake:
            self._cancels[ticket] = cancel
            heapq.heappush(self._heap, (time.monotonic() + timeout_s, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sextant-query-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return ticket

    def disarm(self, ticket: int) -> None:
        with self._wake:
            self._cancels.pop(ticket, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0][1] not in self._cancels:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, ticket = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._cancels.pop(ticket)()
