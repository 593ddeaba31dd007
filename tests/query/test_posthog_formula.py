"""PostHog's formula grammar, its error messages, and evaluation bucket by bucket."""

from __future__ import annotations

import numpy as np
import pytest

from sextant.query.posthog_formula import FormulaError, evaluate, parse_formula

NAMES = frozenset({"a", "b", "c_2"})


def value(text: str, **values: list[float]) -> list[float]:
    arrays = {k: np.array(v) for k, v in values.items()}
    result: list[float] = evaluate(parse_formula(text, NAMES), arrays).tolist()
    return result


def test_precedence_unary_minus_and_numbers() -> None:
    assert value("a + b * 2", a=[1.0], b=[3.0]) == [7.0]
    assert value("(a + b) * 2", a=[1.0], b=[3.0]) == [8.0]
    assert value("-a - -b", a=[1.0], b=[3.0]) == [2.0]
    assert value("a - b - c_2", a=[10.0], b=[3.0], c_2=[2.0]) == [5.0]
    assert value("a / b / 2", a=[12.0], b=[3.0]) == [2.0]
    assert value("1.5 * a", a=[2.0, 4.0]) == [3.0, 6.0]
    assert value("  ( a )  ", a=[2.0]) == [2.0]


def test_division_by_zero_is_zero() -> None:
    assert value("a / b", a=[1.0, 6.0, 0.0], b=[0.0, 3.0, 0.0]) == [0.0, 2.0, 0.0]
    assert value("a / (b - b)", a=[5.0], b=[1.0]) == [0.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Formula is empty"),
        ("   ", "Formula is empty"),
        ("a + d", "Unknown clause 'd' in formula; available clauses: ['a', 'b', 'c_2']"),
        ("a ^ b", "Unexpected character in formula: '^'"),
        ("a b", "Unexpected token in formula: 'b'"),
        (")", "Unexpected token in formula: ')'"),
        ("(a", "Unexpected end of formula"),
        ("(a b)", "Unbalanced parentheses in formula"),
        ("a *", "Unexpected end of formula"),
        ("1.", "Unexpected character in formula: '.'"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(FormulaError) as caught:
        parse_formula(text, NAMES)
    assert str(caught.value) == message
