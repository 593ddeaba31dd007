"""PostHog's metric formulas: arithmetic over clause names, `(a - b) / a`, evaluated bucket by bucket.

Grammar (PostHog's): `expr := term (('+'|'-') term)*`, `term := factor (('*'|'/') factor)*`,
`factor := NUMBER | NAME | '(' expr ')' | '-' factor`; numbers are digits with an optional fraction,
names `[A-Za-z_][A-Za-z0-9_]*` and must be clause names. Division by zero gives 0 (charts and alert
thresholds want a number). Errors carry PostHog's messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d+(?:\.\d+)?)|(?P<op>[()+\-*/]))")


class FormulaError(ValueError):
    """A formula that cannot be parsed, or names an unknown clause."""


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node


Node = Number | Name | Negate | Binary
_Token = tuple[str, str]


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            rest = text[position:].strip()
            if not rest:
                break
            raise FormulaError(f"Unexpected character in formula: {rest[0]!r}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], names: frozenset[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.names = names

    def _peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise FormulaError("Unexpected end of formula")
        self.position += 1
        return token

    def whole(self) -> Node:
        node = self._expr()
        if self.position < len(self.tokens):
            raise FormulaError(f"Unexpected token in formula: {self.tokens[self.position][1]!r}")
        return node

    def _expr(self) -> Node:
        node = self._term()
        while (token := self._peek()) is not None and token[0] == "op" and token[1] in "+-":
            self._take()
            node = Binary(token[1], node, self._term())
        return node

    def _term(self) -> Node:
        node = self._factor()
        while (token := self._peek()) is not None and token[0] == "op" and token[1] in "*/":
            self._take()
            node = Binary(token[1], node, self._factor())
        return node

    def _factor(self) -> Node:
        kind, text = self._take()
        if (kind, text) == ("op", "-"):
            return Negate(self._factor())
        if (kind, text) == ("op", "("):
            node = self._expr()
            if self._take() != ("op", ")"):
                raise FormulaError("Unbalanced parentheses in formula")
            return node
        if kind == "number":
            return Number(float(text))
        if kind == "name":
            if text not in self.names:
                raise FormulaError(
                    f"Unknown clause {text!r} in formula; available clauses: {sorted(self.names)}"
                )
            return Name(text)
        raise FormulaError(f"Unexpected token in formula: {text!r}")


def parse_formula(text: str, clause_names: frozenset[str]) -> Node:
    """The formula's tree; FormulaError with PostHog's message when it is not a valid formula."""
    tokens = _tokens(text)
    if not tokens:
        raise FormulaError("Formula is empty")
    return _Parser(tokens, clause_names).whole()


def evaluate(node: Node, values: Mapping[str, FloatArray]) -> FloatArray:
    """The formula at every bucket, the clauses' values given by name (all of one length)."""
    if isinstance(node, Number):
        width = len(next(iter(values.values()))) if values else 1
        return np.full(width, node.value)
    if isinstance(node, Name):
        return values[node.name]
    if isinstance(node, Negate):
        return -evaluate(node.operand, values)
    left, right = evaluate(node.left, values), evaluate(node.right, values)
    with np.errstate(all="ignore"):
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        zero = right == 0.0
        result: FloatArray = np.where(zero, 0.0, left / np.where(zero, 1.0, right))
        return result
