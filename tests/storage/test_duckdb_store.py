from __future__ import annotations

from pathlib import Path

from sextant.core.events import EventBatch
from sextant.storage.duckdb.store import DuckDBStore
from tests.storeread import stored_events


def batch_of(times: list[int], org_id: int = 1) -> EventBatch:
    batch = EventBatch()
    for i, t in enumerate(times):
        batch.add(
            org_id=org_id,
            time_ms=t,
            source="product_analytics",
            name=f"e{i}",
            type="server",
            application_id=None,
            usr_id=f"u{i}",
            account_id=None,
            session_id=None,
            attributes={"i": i, "tags": ["a", "b"]},
        )
    return batch


def test_append_assigns_ids_and_survives_reopen(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    assert store.max_event_id() == 0
    store.append_events(batch_of([10, 20, 30]), first_event_id=1)
    store.append_events(batch_of([40]), first_event_id=4)
    assert store.max_event_id() == 4
    store.close()
    reopened = DuckDBStore(tmp_path / "sextant.duckdb")
    assert reopened.max_event_id() == 4
    reopened.close()
    rows = stored_events(tmp_path)
    assert [r["event_id"] for r in rows] == [1, 2, 3, 4]
    assert [r["time_ms"] for r in rows] == [10, 20, 30, 40]
    assert rows[0]["attributes"] == {"i": 0, "tags": ["a", "b"]}
    assert rows[3]["event_name"] == "e0"


def test_retention_deletes_only_older_events(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    store.append_events(batch_of([100, 199, 200, 300]), first_event_id=1)
    assert store.delete_events_before(200) == 2
    assert store.delete_events_before(200) == 0
    store.close()
    assert [r["time_ms"] for r in stored_events(tmp_path)] == [200, 300]


def test_user_keys_are_dense_stable_and_rolled_back_with_their_transaction(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    store.append_events(batch_of([1, 2]), first_event_id=1)  # users u0, u1
    try:
        with store.transaction():
            store.append_events(batch_of([3, 4, 5]), first_event_id=3)  # u2 is new, then the import fails
            raise RuntimeError("import failed")
    except RuntimeError:
        pass
    store.append_events(batch_of([6, 7, 8, 9]), first_event_id=3)  # u2 and u3 are new now
    store.close()
    reopened = DuckDBStore(tmp_path / "sextant.duckdb")
    reopened.append_events(batch_of([10]), first_event_id=7)
    reopened.close()
    rows = stored_events(tmp_path)
    keys = {(r["usr_id"], r["usr_key"]) for r in rows}
    assert keys == {("u0", 1), ("u1", 2), ("u2", 3), ("u3", 4)}


def test_a_batch_mixing_known_new_and_missing_users_and_organizations_is_stored_as_sent(
    tmp_path: Path,
) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    store.append_events(batch_of([1, 2]), first_event_id=1)  # users u0, u1
    mixed = batch_of([3, 4, 5, 6, 7])
    mixed.usr_id = ["u1", None, "new", "u0", "new"]
    mixed.org_id = [1, 2, 1, 1, 2]
    mixed.source = ["product_analytics", "logs", "logs", "product_analytics", "logs"]
    store.append_events(mixed, first_event_id=3)
    store.close()
    rows = stored_events(tmp_path)[2:]
    assert [(r["usr_id"], r["usr_key"]) for r in rows] == [
        ("u1", 2),
        (None, None),
        ("new", 3),
        ("u0", 1),
        ("new", 3),
    ]
    assert [r["org_id"] for r in rows] == [1, 2, 1, 1, 2]
    assert [r["source"] for r in rows] == mixed.source
    assert {r["type"] for r in rows} == {"server"}


def test_queries_read_only_their_source(tmp_path: Path) -> None:
    from sextant.core.timeutil import now_ms
    from sextant.query.events import Aggregation, EventQuery
    from sextant.query.filters import MatchAll

    now = now_ms()
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    query = EventQuery(1, now - 100, now, MatchAll(), Aggregation("count"))
    store.append_events(batch_of([now - 90, now - 80]), first_event_id=1)
    # With one source stored, the compiled query can skip testing it; a second source must not leak in.
    assert store.query_events(query, 30).to_pylist() == [{"value": 2}]
    logs = batch_of([now - 70, now - 60, now - 50])
    logs.source = ["logs"] * 3
    store.append_events(logs, first_event_id=3)
    assert store.query_events(query, 30).to_pylist() == [{"value": 2}]
    store.close()
    reopened = DuckDBStore(tmp_path / "sextant.duckdb")
    assert reopened.query_events(query, 30).to_pylist() == [{"value": 2}]
    reopened.close()


def test_a_large_wal_is_checkpointed_when_the_loader_is_idle(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "sextant.duckdb")
    wal = tmp_path / "sextant.duckdb.wal"
    assert not store.has_maintenance
    # DuckDB's own checkpoint waits for a much larger WAL, so that commits under load stay cheap.
    for i in range(100):
        store.append_events(batch_of(list(range(1, 2_501))), first_event_id=1 + i * 2_500)
    assert wal.stat().st_size > 16 * 1024 * 1024
    assert store.has_maintenance
    store.maintain()
    assert not wal.exists() or wal.stat().st_size < 1024 * 1024
    assert not store.has_maintenance
    store.close()
    assert len(stored_events(tmp_path)) == 250_000
