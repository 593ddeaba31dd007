from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sextant.core.events import EventBatch
from sextant.query.events import Aggregation, EventQuery
from sextant.query.filters import Term
from sextant.storage.backend import QueryTimeout
from sextant.storage.duckdb.store import DuckDBStore
from sextant.storage.watchdog import Watchdog


def test_watchdog_cancels_only_what_outlives_its_deadline() -> None:
    watchdog = Watchdog()
    fired: list[str] = []
    done = threading.Event()
    kept = watchdog.arm(0.05, lambda: fired.append("late"))
    early = watchdog.arm(0.01, lambda: (fired.append("early"), done.set()))
    watchdog.disarm(kept)
    assert done.wait(2)
    time.sleep(0.1)
    assert fired == ["early"]
    watchdog.disarm(early)  # disarming a spent ticket is harmless


def test_a_query_past_its_time_limit_is_cancelled(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    batch = EventBatch()
    for i in range(200_000):
        batch.add(
            org_id=1, time_ms=1_800_000_000_000 - i, source="product_analytics", name="e", type="server",
            application_id=None, usr_id=str(i), account_id=None, session_id=None,
            attributes={"text": f"word{i} other{i % 97} more text", "more": "abc def"},
        )  # fmt: skip
    store.append_events(batch, 1)
    # Free text runs a regular expression over every string of every event: over 100 ms here.
    slow = EventQuery(1, 0, 1_900_000_000_000, Term(None, "other5"), Aggregation("count"))
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"longer than 0\.02 s"):
        store.query_events(slow, timeout_s=0.02)
    assert time.monotonic() - started < 5
    assert store.query_events(slow, timeout_s=60).to_pylist() == [{"value": 2062}]
    store.close()


def test_a_deadline_that_passes_before_the_statement_starts_still_counts(tmp_path: Path) -> None:
    """A query that finishes after its deadline is answered as past its limit whether or not the watchdog's
    interrupt stopped it (an interrupt that comes before DuckDB starts the statement does nothing, which a
    busy machine makes happen): with no time at all, every query is past its limit."""
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    quick = EventQuery(1, 0, 1_900_000_000_000, Term(None, "x"), Aggregation("count"))
    with pytest.raises(QueryTimeout, match=r"longer than 0 s"):
        store.query_events(quick, timeout_s=0)
    assert store.query_events(quick, timeout_s=60).to_pylist() == [{"value": 0}]
    store.close()
