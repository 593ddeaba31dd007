"""The test oracle itself: each rule of the filters.py docstring on hand-built trees and events."""

from __future__ import annotations

from typing import Any

import pytest

from sextant.query.filters import (
    And,
    Compare,
    Exists,
    Field,
    Filter,
    MatchAll,
    MatchNone,
    Not,
    Or,
    Range,
    Term,
    Wildcard,
)
from tests.query.matcher import STANDARD_FIELDS, matches

A = Field("a")


def ev(**attributes: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(STANDARD_FIELDS)
    out.update(attributes)
    return out


CASES: list[tuple[Filter, dict[str, Any], bool]] = [
    (MatchAll(), ev(), True),
    (MatchNone(), ev(), False),
    # presence: a standard field set to None is absent, an attribute set to None is a stored null
    (Exists(Field("usr.id")), ev(), False),
    (Exists(Field("usr.id")), ev(**{"usr.id": "u"}), True),
    (Exists(A), ev(a=None), True),
    (Exists(A), ev(a=[]), True),
    (Exists(A), ev(), False),
    (Exists(Field("a", tag=True)), ev(a=1), True),
    # Term: exact, case-sensitive; numbers numerically; booleans by true/false
    (Term(A, "x"), ev(a="x"), True),
    (Term(A, "x"), ev(a="X"), False),
    (Term(A, "1.0"), ev(a=1), True),
    (Term(A, "1e2"), ev(a=100.0), True),
    (Term(A, "1.0"), ev(a="1"), False),
    (Term(A, "true"), ev(a=True), True),
    (Term(A, "true"), ev(a="true"), True),
    (Term(A, "1"), ev(a=True), False),
    (Term(A, "null"), ev(a=None), False),
    (Term(A, "b"), ev(a=["a", None, "b"]), True),
    (Term(Field("event.name"), "buy"), ev(**{"event.name": "buy"}), True),
    # Wildcard: whole value, over text forms
    (Wildcard(A, "a*"), ev(a="abc"), True),
    (Wildcard(A, "b*"), ev(a="abc"), False),
    (Wildcard(A, "?bc"), ev(a="abc"), True),
    (Wildcard(A, "a\\*"), ev(a="a*"), True),
    (Wildcard(A, "a\\*"), ev(a="ab"), False),
    (Wildcard(A, "a\\\\*"), ev(a="a\\bc"), True),
    (Wildcard(A, "1*"), ev(a=12), True),
    (Wildcard(A, "0.7*"), ev(a=0.75), True),
    (Wildcard(A, "tr*"), ev(a=True), True),
    (Wildcard(A, "*"), ev(a=None), False),
    (Wildcard(A, "a*c"), ev(a="a\nc"), True),
    # Compare / Range: numeric when both are numbers, else text
    (Compare(A, ">", 5.0), ev(a=6), True),
    (Compare(A, ">", 5.0), ev(a="6"), True),
    (Compare(A, ">", 5.0), ev(a="10"), False),
    (Compare(A, ">=", "b"), ev(a="b"), True),
    (Compare(A, "<", "b"), ev(a=5), True),
    (Compare(A, "<", 5.0), ev(a=None), False),
    (Compare(A, "<", 5.0), ev(a=[9, 1]), True),
    (Range(A, 1.0, 100.0, True, True), ev(a="10"), True),
    (Range(A, 1.0, 100.0, True, True), ev(a="2"), False),
    (Range(A, 1.5, None, False, True), ev(a=1.5), False),
    (Range(A, None, None, True, True), ev(a="x"), True),
    (Range(A, None, None, True, True), ev(), False),
    # Not matches events lacking the field
    (Not(Term(A, "x")), ev(), True),
    (Not(Term(A, "x")), ev(a="x"), False),
    (And((Term(A, "x"), Exists(Field("b")))), ev(a="x", b=1), True),
    (And((Term(A, "x"), Exists(Field("b")))), ev(a="x"), False),
    (Or((Term(A, "y"), Exists(Field("b")))), ev(b=1), True),
    # free text: whole word, ignoring case, any string value
    (Term(None, "hello"), ev(m="Say HELLO!"), True),
    (Term(None, "hello"), ev(m="othello"), False),
    (Term(None, "hello"), ev(m="hello_world"), False),
    (Term(None, "hello world"), ev(m="oh hello world"), True),
    (Term(None, "5"), ev(n=5), False),
    (Term(None, "5"), ev(n="5"), True),
    (Term(None, "u1"), ev(**{"usr.id": "u1"}), True),
    (Term(None, "b"), ev(l=["a b", 3]), True),
    (Wildcard(None, "hel*"), ev(m="well hello"), True),
    (Wildcard(None, "*llo"), ev(m="well hello"), True),
    (Wildcard(None, "h*d"), ev(m="hello world"), False),
    (Wildcard(None, "h?llo"), ev(m="HALLO"), True),
]


@pytest.mark.parametrize(
    ("f", "event", "expected"), CASES, ids=[f"{i}-{c[0]!r}" for i, c in enumerate(CASES)]
)
def test_rule(f: Filter, event: dict[str, Any], expected: bool) -> None:
    assert matches(f, event) is expected
