"""Audience formulas: set names combined with AND, OR, NOT and parentheses (`power_users AND NOT trial`)."""

from __future__ import annotations

import re

from sextant.query.events import AudienceExpr, SetAnd, SetNot, SetOr, SetRef

_TOKEN = re.compile(r"\s*(?:(\()|(\))|(AND|OR|NOT)(?![\w.-])|([\w.-]+))")
MAX_FORMULA_LENGTH = 4096


class FormulaError(ValueError):
    pass


def parse_audience_formula(formula: str, names: list[str]) -> AudienceExpr:
    """Parse `formula` over the defined `names`; an empty formula is the AND of all of them."""
    if not formula.strip():
        if not names:
            raise FormulaError("audience_filters has no users, accounts or segments to combine")
        refs: tuple[AudienceExpr, ...] = tuple(SetRef(n) for n in names)
        return refs[0] if len(refs) == 1 else SetAnd(refs)
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"audience formula is longer than {MAX_FORMULA_LENGTH} characters")
    tokens = _tokenize(formula)
    parser = _Parser(tokens, set(names))
    expr = parser.or_expr()
    if parser.pos != len(tokens):
        raise FormulaError(f"audience formula: unexpected {tokens[parser.pos]!r}")
    return expr


def _tokenize(formula: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    stripped_end = len(formula.rstrip())
    while pos < stripped_end:
        match = _TOKEN.match(formula, pos)
        if match is None or match.end() == pos:
            raise FormulaError(
                f"audience formula: unexpected character {formula[pos:].lstrip()[:1]!r} at {pos}"
            )
        tokens.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str], names: set[str]) -> None:
        self.tokens = tokens
        self.names = names
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def or_expr(self) -> AudienceExpr:
        operands = [self.and_expr()]
        while self.peek() == "OR":
            self.pos += 1
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else SetOr(tuple(operands))

    def and_expr(self) -> AudienceExpr:
        operands = [self.not_expr()]
        while self.peek() == "AND":
            self.pos += 1
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else SetAnd(tuple(operands))

    def not_expr(self) -> AudienceExpr:
        negations = 0
        while self.peek() == "NOT":
            self.pos += 1
            negations += 1
        expr = self.atom()
        return SetNot(expr) if negations % 2 else expr

    def atom(self) -> AudienceExpr:
        token = self.peek()
        if token is None:
            raise FormulaError("audience formula ends where a name or '(' was expected")
        self.pos += 1
        if token == "(":
            self.depth += 1
            if self.depth > 50:
                raise FormulaError("audience formula nests parentheses deeper than 50 levels")
            inner = self.or_expr()
            if self.peek() != ")":
                raise FormulaError("audience formula: missing ')'")
            self.pos += 1
            self.depth -= 1
            return inner
        if token in (")", "AND", "OR"):
            raise FormulaError(f"audience formula: unexpected {token!r} where a name was expected")
        if token not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise FormulaError(f"audience formula names {token!r}, which is not defined (defined: {known})")
        return SetRef(token)
