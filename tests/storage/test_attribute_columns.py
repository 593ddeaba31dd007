"""Attributes read from their own typed columns give exactly the answers they give from JSON."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.data import default_shape, events

from sextant.core.events import EventBatch, flatten_attributes
from sextant.query.events import Aggregation, EventListQuery, EventQuery, GroupBy, Occurrence
from sextant.query.filters import Field, MatchAll
from sextant.query.search_syntax import parse_search
from sextant.storage.duckdb.store import DuckDBStore

END = 1_800_000_000_000
START = END - 8 * 86_400_000


def _store(path: Path) -> DuckDBStore:
    store = DuckDBStore(path)
    batch = EventBatch()
    docs = events(default_shape(1500, end_ms=END - 1, days=7, seed=3), "app")
    for i, doc in enumerate(docs):
        doc["labels"] = ["x", "y"] if i % 3 == 0 else ([] if i % 3 == 1 else "z")
        doc["mixed"] = [1, "1", None, True] if i % 5 == 0 else i % 4
        batch.add(
            org_id=1,
            time_ms=doc["date"],
            source="product_analytics",
            name=doc["event"]["name"],
            type="server",
            application_id="app",
            usr_id=doc["usr"]["id"],
            account_id=doc["account"]["id"],
            session_id=doc["session"]["id"],
            attributes=flatten_attributes(doc, max_depth=32),
        )
    store.append_events(batch, 1)
    return store


def _queries() -> list[EventQuery | EventListQuery]:
    def q(**kw: Any) -> EventQuery:
        base: dict[str, Any] = {
            "org_id": 1,
            "start_ms": START,
            "end_ms": END,
            "filter": MatchAll(),
            "aggregation": Aggregation("count"),
        }
        return EventQuery(**{**base, **kw})

    tier, country, labels = Field("customer.tier"), Field("geo.country"), Field("labels")
    return [
        q(filter=parse_search("@customer.tier:premium @amount:>20")),
        q(
            aggregation=Aggregation("percentile", Field("amount"), 0.95),
            group_by=(GroupBy(tier, 10, Aggregation("count")),),
        ),
        q(
            aggregation=Aggregation("avg", Field("duration_ms")),
            interval_ms=86_400_000,
            group_by=(
                GroupBy(country, 3, Aggregation("sum", Field("amount"))),
                GroupBy(labels, 5, Aggregation("count")),
            ),
        ),
        q(group_by=(GroupBy(labels, 10, Aggregation("count"), include_missing=False),)),
        q(group_by=(GroupBy(Field("mixed"), 10, Aggregation("count")),)),
        q(aggregation=Aggregation("cardinality", labels)),
        q(aggregation=Aggregation("cardinality", Field("mixed"))),
        q(
            aggregation=Aggregation("cardinality", Field("usr.id")),
            occurrence=Occurrence(">=", 2),
            filter=parse_search("@beta:true OR @cart.items:[3 TO 5]"),
        ),
        EventListQuery(
            org_id=1,
            start_ms=START,
            end_ms=END,
            filter=parse_search("@labels:x -@mixed:1"),
            columns=(tier, labels),
            limit=50,
            sort_field=Field("amount"),
        ),
    ]


def _answers(store: DuckDBStore) -> list[Any]:
    out: list[Any] = []
    for query in _queries():
        if isinstance(query, EventListQuery):
            rows, total = store.list_events(query, 30)
            out.append((rows.to_pylist(), total))
        else:
            out.append(store.query_events(query, 30).to_pylist())
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_columns_answer_like_json(tmp_path: Path) -> None:
    store = _store(tmp_path / "sextant.duckdb")
    from_json = _answers(store)
    assert store.has_maintenance  # the queries asked for columns for the attributes they read
    while store.has_maintenance:
        store.maintain()
    assert {"customer.tier", "amount", "labels", "mixed", "geo.country"} <= set(store._columns.ready())
    from_columns = _answers(store)
    for i, (a, b) in enumerate(zip(from_json, from_columns, strict=True)):
        assert _same(a, b), f"query {i}: {a!r} != {b!r}"
    assert all(answer for answer in from_json)
    store.close()


def test_columns_survive_restart_and_new_events_fill_them(tmp_path: Path) -> None:
    store = _store(tmp_path / "sextant.duckdb")
    store._columns.request(["customer.tier"])
    while store.has_maintenance:
        store.maintain()
    store.close()
    reopened = DuckDBStore(tmp_path / "sextant.duckdb")
    assert "customer.tier" in reopened._columns.ready()
    batch = EventBatch()
    batch.add(
        org_id=1,
        time_ms=END - 5,
        source="product_analytics",
        name="late",
        type="server",
        application_id="app",
        usr_id="u",
        account_id=None,
        session_id=None,
        attributes={"customer.tier": "late-tier"},
    )
    reopened.append_events(batch, reopened.max_event_id() + 1)
    query = EventQuery(1, START, END, parse_search("@customer.tier:late-tier"), Aggregation("count"))
    assert reopened.query_events(query, 30).to_pylist() == [{"value": 1}]
    reopened.close()
