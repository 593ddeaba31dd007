"""The DuckDB filter compiler against the independent in-Python matcher, on random filters and queries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sextant.core.events import EventBatch
from sextant.core.timeutil import now_ms
from sextant.query import filters as F
from sextant.query.events import EventListQuery
from sextant.query.search_syntax import SearchSyntaxError, parse_search
from sextant.storage.duckdb.store import DuckDBStore
from tests.query.matcher import matches

STRINGS = ["a", "b", "foo", "Foo bar", "x*y", "10", "2", "true", "hello world", "héllo", "", "a.b", "q?"]
NUMBERS: list[Any] = [0, 1, 2, 10, 100, -5, 0.5, 2.25, 10.0, 99.5]
SCALARS: list[Any] = [*STRINGS, *NUMBERS, True, False, None]
PATHS = ["s", "n", "b", "m", "l", "nested.k", "usr.email"]
# Paths that hold arrays in some events; the others never do, which the store compiles more simply.
ARRAY_PATHS = {"m", "l", "nested.k"}
STANDARD = {
    "event.name": ["checkout", "view", "Checkout"],
    "usr.id": ["u1", "u2", "10"],
    "account.id": ["acme"],
}
START = now_ms() - 3_600_000


def _event(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """Standard fields and flattened attributes of a random event."""
    standard = {path: rng.choice([*values, None]) for path, values in STANDARD.items()}
    if standard["usr.id"] is None and standard["account.id"] is None:
        standard["usr.id"] = "u1"
    standard["event.name"] = standard["event.name"] or "view"
    attributes: dict[str, Any] = {}
    for path in PATHS:
        roll = rng.random()
        if roll < 0.3:
            continue
        if path == "l" or (path in ARRAY_PATHS and roll > 0.85):
            attributes[path] = [rng.choice(SCALARS) for _ in range(rng.randint(0, 3))]
        elif path == "s":
            attributes[path] = rng.choice(STRINGS)
        elif path == "n":
            attributes[path] = rng.choice(NUMBERS)
        elif path == "b":
            attributes[path] = rng.choice([True, False])
        else:
            attributes[path] = rng.choice(SCALARS)
    return standard, attributes


class Corpus:
    """The store and the same events as dicts; a short repr keeps hypothesis reports readable."""

    def __init__(self, store: DuckDBStore, events: dict[int, dict[str, Any]]) -> None:
        self.store = store
        self.events = events

    def __repr__(self) -> str:
        return f"Corpus({len(self.events)} events)"


@pytest.fixture(scope="module", params=["json", "columns"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """The events, with attributes read from JSON, or from their own typed columns."""
    rng = random.Random(20261123)
    batch = EventBatch()
    events: dict[int, dict[str, Any]] = {}
    for i in range(400):
        standard, attributes = _event(rng)
        batch.add(
            org_id=1,
            time_ms=START + i,
            source="product_analytics",
            name=standard["event.name"],
            type="server",
            application_id=None,
            usr_id=standard["usr.id"],
            account_id=standard["account.id"],
            session_id=None,
            attributes=attributes,
        )
        events[i + 1] = {
            "type": "server",
            "application.id": None,
            "session.id": None,
            **standard,
            **attributes,
        }
    # Another organization's events must never match.
    other = EventBatch()
    other.add(
        org_id=2, time_ms=START, source="product_analytics", name="view", type="server",
        application_id=None, usr_id="u1", account_id=None, session_id=None, attributes={"s": "a"},
    )  # fmt: skip
    store = DuckDBStore(tmp_path_factory.mktemp("oracle") / "sextant.duckdb")
    store.append_events(batch, 1)
    store.append_events(other, 401)
    assert store._arrays == ARRAY_PATHS
    if request.param == "columns":
        store._columns.request(PATHS)
        while store.has_maintenance:
            store.maintain()
        assert set(store._columns.ready()) == set(PATHS)
    yield Corpus(store, events)
    store.close()


def _sql_matches(store: DuckDBStore, flt: F.Filter) -> set[int]:
    query = EventListQuery(org_id=1, start_ms=START, end_ms=START + 1000, filter=flt, columns=(), limit=1000)
    rows, total = store.list_events(query, timeout_s=30)
    ids = set(rows.column("event_id").to_pylist())
    assert total == len(ids)
    return ids


def _expected(events: dict[int, dict[str, Any]], flt: F.Filter) -> set[int]:
    return {i for i, e in events.items() if matches(flt, e)}


fields = st.sampled_from([*PATHS, *STANDARD]).map(F.Field)
words = st.sampled_from(
    ["a", "b", "foo", "bar", "hello", "world", "x", "10", "true", "u1", "checkout", "héllo"]
)
patterns = st.sampled_from(["*", "a*", "*o*", "f?o", "x\\*y", "1*", "*world", "?", "h*o", "Foo*", "*.b"])
bounds = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 10.0, 50.5, -5.0, 100.0]), st.sampled_from(["a", "b", "1", "f", "z"])
)
leaves = st.one_of(
    st.builds(
        F.Term, fields, st.sampled_from([*STRINGS, "0", "1", "2.25", "10.0", "false", "u1", "checkout"])
    ),
    st.builds(F.Wildcard, fields, patterns),
    st.builds(F.Exists, fields),
    st.builds(F.Compare, fields, st.sampled_from(["<", "<=", ">", ">="]), bounds),
    st.builds(F.Range, fields, st.none() | bounds, st.none() | bounds, st.booleans(), st.booleans()),
    st.builds(F.Term, st.none(), words),
    st.builds(F.Wildcard, st.none(), st.sampled_from(["hel*", "wor?d", "*oo", "che*"])),
    st.just(F.MatchAll()),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(F.Not, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: F.And(tuple(xs))),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: F.Or(tuple(xs))),
    ),
    max_leaves=6,
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flt=filters)
def test_sql_equals_matcher_on_random_filters(corpus: Corpus, flt: F.Filter) -> None:
    store, events = corpus.store, corpus.events
    assert _sql_matches(store, flt) == _expected(events, flt)


query_parts = st.sampled_from(
    ["@s:a", "@s:foo", "@n:>5", "@n:[1 TO 10]", "@n:{2 TO 100}", "@l:b", "@m:*", "-@s:a", "@nested.k:true",
     "hello", "wor*", "@event.name:checkout", "@usr.id:u*", "@s:\"Foo bar\"", "@b:true", "@n:10",
     "@s:[a TO f]", "@usr.email:*", "_exists_:@m", "_missing_:@s", "NOT @b:false", "@s:(a OR b)", "@n:<=0.5"]
)  # fmt: skip
joiners = st.sampled_from([" ", " AND ", " OR ", " -", " NOT "])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.tuples(joiners, query_parts), min_size=1, max_size=4), group=st.booleans())
def test_sql_equals_matcher_on_random_queries(
    corpus: Corpus, parts: list[tuple[str, str]], group: bool
) -> None:
    store, events = corpus.store, corpus.events
    text = "".join(j + p for j, p in parts).strip()
    if group and len(parts) > 1:
        text = f"({text}) {parts[0][1]}"
    try:
        flt = parse_search(text)
    except SearchSyntaxError:
        return
    assert _sql_matches(store, flt) == _expected(events, flt), text


def test_oracle_sees_a_real_spread(corpus: Corpus) -> None:
    """The corpus is varied enough that filters select neither nothing nor everything."""
    store, events = corpus.store, corpus.events
    for text in ["@s:a", "@n:>5", "@l:b", "-@s:a", "hello", "@m:*"]:
        selected = _sql_matches(store, parse_search(text))
        assert 0 < len(selected) < len(events), text
    assert len(_sql_matches(store, F.MatchAll())) == len(events) == 400
