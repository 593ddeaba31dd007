"""Flattening event attributes to dotted paths, and the columnar EventBatch the writer commits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.core.events import STANDARD_PATHS, AttributeLimitError, EventBatch, flatten_attributes


def flat(document: dict[str, Any], max_depth: int = 32) -> dict[str, Any]:
    return flatten_attributes(document, max_depth=max_depth)


def typed(values: list[Any]) -> list[tuple[type, Any]]:
    """Values with their types, so that 1, 1.0 and True do not compare equal."""
    return [(type(v), v) for v in values]


def test_nested_objects_become_dotted_paths() -> None:
    out = flat({"a": {"b": {"c": "deep"}, "d": 1}, "top": "x"})
    assert out == {"a.b.c": "deep", "a.d": 1, "top": "x"}


def test_json_types_are_kept() -> None:
    out = flat({"s": "text", "i": 42, "f": 1.5, "t": True, "no": False, "n": None, "big": 2**62})
    assert typed(list(out.values())) == typed(["text", 42, 1.5, True, False, None, 2**62])
    assert list(out) == ["s", "i", "f", "t", "no", "n", "big"]
    # The stored form keeps them too.
    assert json.loads(json.dumps(out)) == out


def test_arrays_of_scalars_stay_lists() -> None:
    out = flat({"tags": ["a", "b", "c"], "one": [7], "mixed": [1, "x", None, True, 2.5], "empty": []})
    assert out == {"tags": ["a", "b", "c"], "one": [7], "mixed": [1, "x", None, True, 2.5], "empty": []}


def test_arrays_of_objects_give_a_list_per_field() -> None:
    out = flat({"items": [{"sku": "a", "qty": 1}, {"sku": "b"}, {"sku": "c", "qty": 3}]})
    assert out == {"items.sku": ["a", "b", "c"], "items.qty": [1, 3]}


def test_a_path_reached_through_an_array_is_a_list_even_with_one_value() -> None:
    # Whether an order has one item or three, `items.sku` has the same shape.
    assert flat({"items": [{"sku": "a"}]}) == {"items.sku": ["a"]}
    assert flat({"items": [{"price": {"amount": 5}}]}) == {"items.price.amount": [5]}
    assert flat({"o": [{"a": 1, "b": {"c": 2}}, {"a": 3}]}) == {"o.a": [1, 3], "o.b.c": [2]}


def test_nested_arrays_are_flattened_into_one_list() -> None:
    out = flat({"m": [[1, 2], [3, [4, 5]], []], "deep": [[{"k": "x"}], [{"k": "y"}]]})
    assert out == {"m": [1, 2, 3, 4, 5], "deep.k": ["x", "y"]}


def test_a_path_spelled_twice_keeps_both_values() -> None:
    assert flat({"a.b": 1, "a": {"b": 2}}) == {"a.b": [1, 2]}
    assert flat({"a": {"b": 2}, "a.b": 1}) == {"a.b": [2, 1]}
    assert flat({"a.b": [1, 2], "a": {"b": 3}}) == {"a.b": [1, 2, 3]}
    assert flat({"a.b": "x", "a": {"b": ["y", "z"]}, "a.b.c": 1}) == {"a.b": ["x", "y", "z"], "a.b.c": 1}


def test_standard_paths_are_skipped_but_their_siblings_are_kept() -> None:
    event = {
        "application": {"id": "app", "version": "1.2"},
        "event": {"name": "payment.processed", "category": "billing"},
        "type": "server",
        "usr": {"id": "user-1", "email": "u@example.com", "plan": {"tier": "pro"}},
        "account": {"id": "acct-1", "name": "Acme"},
        "session": {"id": "s-1", "duration": 12.5},
        "amount": 10,
    }
    out = flat(event)
    assert out == {
        "application.version": "1.2",
        "event.category": "billing",
        "usr.email": "u@example.com",
        "usr.plan.tier": "pro",
        "account.name": "Acme",
        "session.duration": 12.5,
        "amount": 10,
    }
    expected = {"application.id", "event.name", "type", "usr.id", "account.id", "session.id"}
    assert expected == STANDARD_PATHS


def test_skip_is_configurable() -> None:
    out = flatten_attributes({"usr": {"id": "u"}, "x": 1}, max_depth=4, skip=frozenset({"x"}))
    assert out == {"usr.id": "u"}


def _nested_objects(levels: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        doc = {"k": doc}
    return doc


def _nested_arrays(levels: int) -> dict[str, Any]:
    # The top object is one level, each array another.
    value: Any = 1
    for _ in range(levels - 1):
        value = [value]
    return {"a": value}


@pytest.mark.parametrize("max_depth", [1, 2, 5, 32])
def test_depth_limit_on_objects(max_depth: int) -> None:
    out = flat(_nested_objects(max_depth), max_depth=max_depth)
    assert out == {".".join(["k"] * (max_depth - 1) + ["leaf"]): 1}
    with pytest.raises(AttributeLimitError, match=f"deeper than {max_depth} levels"):
        flat(_nested_objects(max_depth + 1), max_depth=max_depth)


@pytest.mark.parametrize("max_depth", [2, 3, 32])
def test_depth_limit_counts_arrays(max_depth: int) -> None:
    assert flat(_nested_arrays(max_depth), max_depth=max_depth) == {"a": [1]}
    with pytest.raises(AttributeLimitError):
        flat(_nested_arrays(max_depth + 1), max_depth=max_depth)


def test_depth_limit_through_arrays_of_objects() -> None:
    doc = {"a": [{"b": [{"c": 1}]}]}  # object, array, object, array, object: 5 levels
    assert flat(doc, max_depth=5) == {"a.b.c": [1]}
    with pytest.raises(AttributeLimitError):
        flat(doc, max_depth=4)


def test_attribute_limit_error_is_a_value_error() -> None:
    assert issubclass(AttributeLimitError, ValueError)


# Property: every scalar leaf is found under its dotted path, in document order, with its type.

_keys = st.sampled_from(["a", "b", "a.b", "b.a", "c"]) | st.text(min_size=1, max_size=6)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=25,
)
_documents = st.dictionaries(_keys, _values, max_size=6)


def _leaves(
    value: Any,
    path: str,
    through_array: bool,
    leaves: dict[str, list[tuple[Any, bool]]],
    empty_arrays: set[str],
) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _leaves(child, f"{path}.{key}", through_array, leaves, empty_arrays)
    elif isinstance(value, list):
        if not value:
            empty_arrays.add(path)
        for child in value:
            _leaves(child, path, True, leaves, empty_arrays)
    else:
        leaves.setdefault(path, []).append((value, through_array))


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_every_scalar_leaf_appears_under_its_dotted_path(document: dict[str, Any]) -> None:
    leaves: dict[str, list[tuple[Any, bool]]] = {}
    empty_arrays: set[str] = set()
    for key, value in document.items():
        _leaves(value, key, False, leaves, empty_arrays)

    out = flatten_attributes(document, max_depth=1000, skip=frozenset())

    assert set(out) == set(leaves) | empty_arrays
    for path, found in leaves.items():
        stored = out[path]
        values = stored if isinstance(stored, list) else [stored]
        assert typed(values) == typed([v for v, _ in found]), path
        if any(via_array for _, via_array in found) or len(found) > 1:
            assert isinstance(stored, list), path
        elif path not in empty_arrays:
            assert typed([stored]) == typed([found[0][0]]), path
    for path in empty_arrays - set(leaves):
        assert out[path] == []


# EventBatch


def _add(batch: EventBatch, n: int, **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "org_id": 1,
        "time_ms": 1_700_000_000_000 + n,
        "source": "product_analytics",
        "name": f"event-{n}",
        "type": "server",
        "application_id": "app",
        "usr_id": f"u{n}",
        "account_id": None,
        "session_id": None,
        "attributes": {"n": n, "tags": ["x"]},
    }
    fields.update(overrides)
    batch.add(**fields)


def test_event_batch_add_appends_one_row_to_every_column() -> None:
    batch = EventBatch()
    assert len(batch) == 0
    _add(batch, 0)
    _add(batch, 1, org_id=2, account_id="acct", session_id="s", usr_id=None, attributes={})
    assert len(batch) == 2
    assert batch.org_id == [1, 2]
    assert batch.time_ms == [1_700_000_000_000, 1_700_000_000_001]
    assert batch.source == ["product_analytics"] * 2
    assert batch.name == ["event-0", "event-1"]
    assert batch.type == ["server", "server"]
    assert batch.application_id == ["app", "app"]
    assert batch.usr_id == ["u0", None]
    assert batch.account_id == [None, "acct"]
    assert batch.session_id == [None, "s"]
    # Attributes are stored as JSON text.
    assert [json.loads(a) for a in batch.attributes] == [{"n": 0, "tags": ["x"]}, {}]


def test_event_batch_extend_appends_every_column_in_order() -> None:
    first, second = EventBatch(), EventBatch()
    for n in range(3):
        _add(first, n)
    for n in range(3, 5):
        _add(second, n, org_id=9)
    first.extend(second)
    assert len(first) == 5
    assert len(second) == 2
    assert first.name == [f"event-{n}" for n in range(5)]
    assert first.org_id == [1, 1, 1, 9, 9]
    assert [json.loads(a)["n"] for a in first.attributes] == list(range(5))
    # Every per-event column (a list; other slots may hold batch-wide facts) has one value per event.
    columns = [getattr(first, c) for c in EventBatch.__slots__ if isinstance(getattr(first, c), list)]
    assert len(columns) >= 10
    assert all(len(column) == 5 for column in columns)


def test_event_batch_extend_with_empty_batch_changes_nothing() -> None:
    batch = EventBatch()
    _add(batch, 0)
    batch.extend(EventBatch())
    assert len(batch) == 1
    empty = EventBatch()
    empty.extend(batch)
    assert len(empty) == 1
    assert empty.usr_id == ["u0"]
