"""The native flatten_attributes (sextant/core/_flatten.c) against the pure-Python one it replaced."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.core import _flatten
from sextant.core.events import STANDARD_PATHS, AttributeLimitError, flatten_attributes
from tests.core import flatten_reference

Flatten = Callable[..., dict[str, Any]]


def outcome(flatten: Flatten, document: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", flatten(document, **kwargs)
    except Exception as e:  # Any error: the native one must raise the same, with the same message.
        return "error", (type(e), str(e))


def assert_same(document: Any, **kwargs: Any) -> None:
    """Native and reference give the same keys in the same order, and the very same value objects."""
    expected = outcome(flatten_reference.flatten_attributes, document, **kwargs)
    got = outcome(flatten_attributes, document, **kwargs)
    if expected[0] == "error" or got[0] == "error":
        assert got == expected
        return
    native, reference = got[1], expected[1]
    assert type(native) is dict
    assert native == reference
    assert list(native) == list(reference)
    for (path, value), (_, ref) in zip(native.items(), reference.items(), strict=True):
        assert type(value) is type(ref), path
        if isinstance(ref, list):
            assert len(value) == len(ref), path
            assert all(v is r for v, r in zip(value, ref, strict=True)), path
        else:
            assert value is ref, path


# Keys that collide once joined ("a.b" and {"a": {"b": ...}}), empty ones (an empty prefix joins as none),
# the standard paths' parts, and any text.
_str_keys = st.sampled_from(
    ["a", "b", "a.b", "b.a", "c", "", ".", "a.", ".b", "id", "name", "usr", "event", "type"]
) | st.text(max_size=6)
_any_keys = _str_keys | st.integers(-2, 2) | st.none() | st.booleans() | st.tuples(st.integers(0, 1))
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # Beyond 64 bits too.
    | st.floats()  # NaN too: the values must be the same objects, not merely equal.
    | st.text(max_size=8)
)


def _values(keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        _scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
        max_leaves=30,
    )


_documents = st.dictionaries(_str_keys, _values(_str_keys), max_size=7)
_odd_documents = st.dictionaries(_any_keys, _values(_any_keys), max_size=5)
_skips = st.just(STANDARD_PATHS) | st.frozensets(
    st.sampled_from(["a", "a.b", "b", "b.a", "c", "a.b.c", "", ".", "usr.id", "event.name", "type"])
    | st.text()
)


@settings(max_examples=1000, deadline=None)
@given(document=_documents, max_depth=st.integers(-1, 8), skip=_skips)
def test_native_matches_reference(document: dict[str, Any], max_depth: int, skip: frozenset[str]) -> None:
    assert_same(document, max_depth=max_depth, skip=skip)


@settings(max_examples=300, deadline=None)
@given(document=_documents)
def test_native_matches_reference_with_default_skip(document: dict[str, Any]) -> None:
    assert_same(document, max_depth=32)


@settings(max_examples=300, deadline=None)
@given(document=_odd_documents, max_depth=st.integers(0, 8))
def test_native_matches_reference_with_non_str_keys(document: dict[Any, Any], max_depth: int) -> None:
    assert_same(document, max_depth=max_depth, skip=frozenset({"0", "1.a", None, 1, "a"}))


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"a.b": 1, "a": {"b": 2}},
        {"a": {"b": 2}, "a.b": 1},
        {"a.b": [1, 2], "a": {"b": 3}},
        {"a.b": "x", "a": {"b": ["y", "z"]}, "a.b.c": 1},
        {"e": [], "f": [[], []], "g": [[[]]], "h": [{}], "i": [{"j": []}, {"j": 1}]},
        {"x": 1, "x.y": [], "": {"x": []}},
        {"m": [[1, 2], [3, [4, 5]], []], "deep": [[{"k": "x"}], [{"k": "y"}]]},
        {"items": [{"sku": "a", "qty": 1}, {"sku": "b"}, {"sku": "c", "qty": 3}]},
        {"": {"": {"b": 1}}, "b": 2},
        {"usr": {"id": "u", "name": "n"}, "type": "server", "session": [{"id": "s"}], "event": {"name": [1]}},
        {"s": "text", "i": 42, "f": 1.5, "t": True, "no": False, "n": None, "big": 2**80},
        {"nan": float("nan"), "inf": [float("-inf")]},
        {"é": {"ü": 1}, "ascii": {"日本": {"🙂": 2}}, "🙂": {"a": 3}},
    ],
)
@pytest.mark.parametrize("max_depth", [0, 1, 2, 3, 4, 32])
def test_examples(document: dict[str, Any], max_depth: int) -> None:
    assert_same(document, max_depth=max_depth)
    assert_same(document, max_depth=max_depth, skip=frozenset())


def test_a_typical_event() -> None:
    event = {
        "application": {"id": "6a6b0e52-8b9f-4a53-9c4c-0b0c9d6f1d2e"},
        "event": {"name": "payment.processed"},
        "type": "server",
        "usr": {"id": "user-1"},
        "account": {"id": "acct-1"},
        "customer": {"tier": "premium"},
        "amount": 12.5,
    }
    assert flatten_attributes(event, max_depth=32) == {"customer.tier": "premium", "amount": 12.5}
    assert_same(event, max_depth=32)


def test_depth_error_has_the_message_and_no_native_context() -> None:
    with pytest.raises(AttributeLimitError, match=r"^attributes are nested deeper than 2 levels$") as info:
        flatten_attributes({"a": {"b": {"c": 1}}}, max_depth=2)
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
    with pytest.raises(AttributeLimitError, match="deeper than 0 levels"):
        flatten_attributes({}, max_depth=0)
    with pytest.raises(AttributeLimitError, match="deeper than 1 levels"):
        flatten_attributes({"a": []}, max_depth=1)


@pytest.mark.parametrize("max_depth", [2**64, -(2**64), True, False])
def test_max_depth_beyond_a_c_long_or_a_bool(max_depth: int) -> None:
    assert_same({"a": {"b": [1]}}, max_depth=max_depth)
    assert_same({}, max_depth=max_depth)


def test_non_str_keys_are_joined_as_an_f_string_would() -> None:
    # A falsy prefix (0, None, "") joins as none at all; a top-level key is kept as it is, not made a str.
    for document in (
        {1: "x", "a": {2: "y", None: "z"}},
        {0: {"b": 1}, None: {"c": 2}},
        {False: {"d": 3}, True: {"e": 4}},
        {(1, 2): {"z": 1}, 2.5: [{"w": 1}]},
        {"a": {1: 1}, "a.1": 2},
    ):
        assert_same(document, max_depth=8)
    assert flatten_attributes({1: "x", "a": {2: "y"}}, max_depth=8) == {1: "x", "a.2": "y"}
    assert flatten_attributes({0: {"b": 1}}, max_depth=8) == {"b": 1}


class Formatted:
    """A key whose f-string form is not its str()."""

    def __format__(self, spec: str) -> str:
        return "formatted"

    def __str__(self) -> str:
        return "str"


class NotFormattable:
    def __format__(self, spec: str) -> str:
        raise LookupError("no format")


class StrSubclass(str):
    def __format__(self, spec: str) -> str:
        return "sub"


def test_keys_are_formatted_with_format_like_an_f_string() -> None:
    assert_same({"a": {Formatted(): 1}}, max_depth=8)
    assert flatten_attributes({"a": {Formatted(): 1}}, max_depth=8) == {"a.formatted": 1}
    assert_same({"a": {NotFormattable(): 1}}, max_depth=8)
    assert_same({"a": {StrSubclass("s"): 1}, StrSubclass("t"): {"u": 1}}, max_depth=8)


class ReversedItems(dict[Any, Any]):
    def items(self) -> Any:
        return list(super().items())[::-1]


class BadItems(dict[Any, Any]):
    """A dict whose items() are not pairs (made anew for each call, as the reference runs first)."""

    def __init__(self, items: Callable[[], Any]) -> None:
        super().__init__({"k": "v"})
        self._items = items

    def items(self) -> Any:
        return self._items()


class Mapping:
    """Not a dict, but with items(): the Python version flattened it at the top level."""

    def items(self) -> Iterator[tuple[str, Any]]:
        yield "a", {"b": 1}
        yield "c", [2]


class ReversedList(list[Any]):
    def __iter__(self) -> Iterator[Any]:
        return iter(list(super().__iter__())[::-1])


class FalsyList(list[Any]):
    def __len__(self) -> int:
        return 0


def test_subclasses_go_through_their_own_items_and_iteration() -> None:
    documents: list[Any] = [
        OrderedDict([("b", 1), ("a", OrderedDict([("c", 2)]))]),
        {"x": ReversedItems({"a": 1, "b": {"c": 2}})},
        ReversedItems({"a": 1, "b": [ReversedItems({"c": 2, "d": 3})]}),
        {"x": ReversedList([1, 2, {"y": 3}, [4, 5]])},
        {"x": FalsyList([1])},
        {"x": FalsyList()},
        Mapping(),
        {"x": BadItems(lambda: [("a", 1, 2)])},
        {"x": BadItems(lambda: [("a",)])},
        {"x": BadItems(lambda: [["a", 1], iter(["b", 2])])},
        {"x": BadItems(lambda: [7])},
        {"x": BadItems(lambda: 7)},
        [1, 2],
        None,
    ]
    for document in documents:
        assert_same(document, max_depth=8)


class Spy(frozenset[str]):
    """A skip that records what it is asked."""

    def __contains__(self, path: object) -> bool:
        self.asked.append(path)
        return path == "a.b"

    asked: list[object]


def test_skip_is_asked_like_the_python_version_asks_it() -> None:
    document = {"a": {"b": 1, "c": [{"b": 2}, 3]}, "a.b": [4], "d": 5}
    for skip_type in (set, list, tuple, dict.fromkeys):
        assert_same(document, max_depth=8, skip=skip_type(["a.b", "d"]))
    asked = []
    for flatten in (flatten_attributes, flatten_reference.flatten_attributes):
        spy = Spy()
        spy.asked = []
        out = flatten(document, max_depth=8, skip=spy)
        asked.append((spy.asked, out))
    assert asked[0] == asked[1]


def test_a_dict_changed_during_flattening_fails_like_python() -> None:
    document: dict[str, Any] = {"a": 1, "b": 2}

    class Mutating(frozenset[str]):
        def __contains__(self, path: object) -> bool:
            document[f"new-{len(document)}"] = 0
            return False

    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        flatten_attributes(document, max_depth=8, skip=Mutating())


def test_bad_arguments() -> None:
    with pytest.raises(TypeError):
        flatten_attributes({}, max_depth="3")
    with pytest.raises(TypeError):
        _flatten.flatten({}, 3)
    with pytest.raises(TypeError):
        flatten_attributes({"a": 1}, max_depth=3, skip=None)


def _deep(levels: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"leaf": 1}
    for i in range(levels - 1):
        doc = {"k": [doc]} if i % 2 else {"k": doc}
    return doc


def test_deep_documents_within_the_recursion_limit() -> None:
    assert_same(_deep(300), max_depth=10_000)
    assert_same(_deep(300), max_depth=299)


def test_deep_documents_stop_with_a_recursion_error_not_a_crash() -> None:
    # Past the interpreter's recursion limit, like the Python version.
    with pytest.raises(RecursionError):
        flatten_attributes(_deep(sys.getrecursionlimit() + 10), max_depth=10**9)
    # And past a fixed cap even when the limit was raised (Python frames need no C stack; C ones do).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        with pytest.raises(RecursionError):
            flatten_attributes(_deep(100_000), max_depth=10**9)
        # Still the depth error first when max_depth is below the cap.
        with pytest.raises(AttributeLimitError):
            flatten_attributes(_deep(100_000), max_depth=32)
    finally:
        sys.setrecursionlimit(limit)


def test_no_reference_is_leaked() -> None:
    # Every value of the document must end with the references it had, on success and on every error path.
    leaves = [object() for _ in range(6)]
    documents: list[Any] = [
        {"a": leaves[0], "b": {"c": leaves[1], "a": [leaves[2], [leaves[3]], {"d": leaves[4]}]}, "a.b": []},
        {"a": {"b": leaves[0]}, "a.b": leaves[1], "z": [[[[[[leaves[5]]]]]]]},
        {"x": BadItems(lambda: [(leaves[0], leaves[1], leaves[2])])},
        {"x": {NotFormattable(): leaves[3]}, "y": leaves[4]},
    ]
    before = [sys.getrefcount(leaf) for leaf in leaves]
    gc.collect()
    blocks = sys.getallocatedblocks()
    for _ in range(2000):
        for document in documents:
            for max_depth in (2, 4, 32):
                for flatten in (flatten_attributes, _flatten.flatten):
                    kwargs = {"max_depth": max_depth} if flatten is flatten_attributes else {}
                    args = () if kwargs else (max_depth, STANDARD_PATHS)
                    with contextlib.suppress(
                        AttributeLimitError, _flatten.DepthError, ValueError, LookupError
                    ):
                        flatten(document, *args, **kwargs)
    gc.collect()
    assert [sys.getrefcount(leaf) for leaf in leaves] == before
    # A leak of anything allocated per call (a path, a list, the output) would show by the thousand.
    assert sys.getallocatedblocks() - blocks < 500
