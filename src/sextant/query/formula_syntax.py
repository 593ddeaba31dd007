"""Datadog formulas (`query1 * 100 / query2`, `anomalies(query1, 'basic', 2, direction='above')`), legacy
`q` query strings with metric queries inline (`top(avg:x{*} by {host} / avg:y{*} by {host}, 5, 'max',
'desc')`, `a{*}, b{*}`) and monitor queries (`avg(last_5m):avg:x{*} > 90`) parsed to typed trees.

- `parse_formula(text, query_names=None)`: one v2 / dashboard formula. Operands are query names, numbers
  and function calls; with `query_names` every name must be one of them.
- `parse_legacy_query(text)`: a v1 `/api/v1/query` or widget `q` string: metric queries stand where query
  names would, and top-level commas separate expressions (commas inside `{...}`, `(...)` and `IN (...)` do
  not), giving one tree per expression.
- `parse_monitor_query(text)`: `time_aggr(window):expression comparator threshold`, with the change form
  `change(avg(last_5m),last_1h):...`; time aggregators avg, sum, min, max; windows `last_<N><m|h|d|w|mo>`.

Errors are `FormulaSyntaxError` (a `QuerySyntaxError`, subject "formula"), or `LegacyQuerySyntaxError` (the
same with subject "query") for legacy and monitor strings; an error inside an embedded metric query is the
metric parser's `MetricQuerySyntaxError`, positioned in the whole string. Catch `QuerySyntaxError` for all.
Length and nesting are bounded (`MAX_FORMULA_LENGTH`, `MAX_NESTING_DEPTH`): no input raises anything else.

Grammar: `expr := term (('+'|'-') term)*`, `term := unary (('*'|'/') unary)*`, `unary := '-' unary | primary`,
`primary := NUMBER | NAME | call | metric_query | '(' expr ')'`, `call := NAME '(' [arg (',' arg)*] ')'`,
`arg := STRING | expr | NAME '=' (STRING | expr)`. Usual precedence, left associative. Strings take single
or double quotes, a backslash making the next character literal, and stand only as arguments. A minus
before a number literal is folded into it (`-5` is `Number(-5)`). Every call is checked against the one
function catalog (`sextant.series.functions.registry`, seen through `sextant.query.metric_functions`):
name, number and kind of arguments, and the catalog's own rules for literal values (whole numbers, ranges,
choices such as 'asc'/'desc', which are rewritten to the catalog's spelling, time zones, shifts), so that
what parses also binds; unknown names get a suggestion.

Decisions: a formula is one expression (a top-level comma is an error there, as formulas "are not
lettered"); whitespace is free between tokens; modifiers (`.rollup()`...) belong to metric queries only,
not to calls or parenthesized expressions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from sextant.query.metric_functions import FUNCTIONS, ArgKind, FunctionSpec, Param, arg_kind, unknown_hint
from sextant.query.metric_syntax import (
    MetricQueryAst,
    QuerySyntaxError,
    describe_at,
    number_text,
    parse_metric_query_prefix,
    render_metric_query,
    scan_quoted,
    starts_value_filter,
    unclosed_string,
)
from sextant.series.functions.errors import FunctionArgumentError

MAX_FORMULA_LENGTH = 16 * 1024
"""Longest accepted formula or legacy query, in characters."""

MAX_NESTING_DEPTH = 100
"""Most levels of nested parentheses, calls and unary minuses."""

BinaryOp = Literal["+", "-", "*", "/"]
Comparator = Literal[">", ">=", "<", "<=", "==", "!="]
TimeAggregator = Literal["avg", "sum", "min", "max"]
ChangeKind = Literal["change", "pct_change"]


class FormulaSyntaxError(QuerySyntaxError):
    subject = "formula"


class LegacyQuerySyntaxError(FormulaSyntaxError):
    subject = "query"


# --- the tree ----------------------------------------------------------------------------------------------
# `pos` is where the node starts in the text, for the evaluator's own messages; it is not part of equality.


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class QueryRef:
    """A query of the request, by name (v2 formulas)."""

    name: str
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MetricOperand:
    """A metric query written inline (legacy query strings)."""

    query: MetricQueryAst
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class StringLit:
    """A quoted argument of a call."""

    value: str
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Neg:
    operand: FormulaAst
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BinOp:
    op: BinaryOp
    left: FormulaAst
    right: FormulaAst
    pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Argument, ...]
    kwargs: tuple[tuple[str, Argument], ...] = ()
    pos: int = field(default=0, compare=False, repr=False)

    @property
    def spec(self) -> FunctionSpec:
        """The catalog entry (the parser only builds calls of known functions)."""
        return FUNCTIONS[self.name]

    def arguments(self) -> dict[str, object]:
        """Arguments by parameter name, with the defaults and the values the name fixes (`top5_mean`):
        series parameters hold their tree, number and string parameters their plain value."""
        spec = self.spec
        given: dict[str, Argument] = {p.name: a for p, a in zip(spec.positional, self.args, strict=False)}
        given.update(self.kwargs)
        out: dict[str, object] = {}
        for param in (*spec.positional, *spec.named):
            value = given.get(param.name)
            if value is None:
                if not param.required and param.default is not None:
                    out[param.name] = param.default
            elif isinstance(value, StringLit) or (
                isinstance(value, Number) and arg_kind(param) is not ArgKind.SERIES
            ):
                out[param.name] = value.value
            else:
                out[param.name] = value
        out.update(spec.preset)
        return out


FormulaAst: TypeAlias = Number | QueryRef | MetricOperand | Neg | BinOp | Call
Argument: TypeAlias = FormulaAst | StringLit


@dataclass(frozen=True, slots=True)
class MonitorQueryAst:
    """`avg(last_5m):expression > 90`, or with `change='change'`: `change(avg(last_5m),last_1h):...`."""

    time_aggregator: TimeAggregator
    window: str
    expression: FormulaAst
    comparator: Comparator
    threshold: float
    change: ChangeKind | None = None
    change_shift: str | None = None

    @property
    def window_seconds(self) -> int:
        return window_seconds(self.window)

    @property
    def change_shift_seconds(self) -> int | None:
        return None if self.change_shift is None else window_seconds(self.change_shift)


_WINDOW_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000}
_WINDOW = re.compile(r"last_([0-9]{1,6})(mo|m|h|d|w)")


def window_seconds(window: str) -> int:
    """`last_15m` in seconds (a month is 30 days)."""
    m = _WINDOW.fullmatch(window)
    if m is None:
        raise ValueError(f"not a monitor window: {window!r}")
    return int(m.group(1)) * _WINDOW_UNITS[m.group(2)]


# --- parser ------------------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_COMPARATORS: tuple[Comparator, ...] = (">=", "<=", "==", "!=", ">", "<")
_TIME_AGGREGATORS: dict[str, TimeAggregator] = {a: a for a in ("avg", "sum", "min", "max")}
_CHANGES: dict[str, ChangeKind] = {"change": "change", "pct_change": "pct_change"}
_DIGITS = "0123456789"
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")


class _Parser:
    def __init__(self, text: str, *, legacy: bool, names: frozenset[str] | None = None) -> None:
        self.text = text
        self.i = 0
        self.legacy = legacy
        self.names = names
        self.end_text = "the end of the query" if legacy else "the end of the formula"
        self.error_type = LegacyQuerySyntaxError if legacy else FormulaSyntaxError

    def error(self, pos: int, expected: str, found: str | None = None) -> FormulaSyntaxError:
        return self.error_type(
            pos, expected, describe_at(self.text, pos, self.end_text) if found is None else found
        )

    def skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def at(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def at_end(self) -> bool:
        return self.i >= len(self.text)

    # -- expressions

    def expr(self, depth: int) -> FormulaAst:
        left = self.term(depth)
        while True:
            self.skip_ws()
            if self.at("+") or self.at("-"):
                op: BinaryOp = "+" if self.at("+") else "-"
                self.i += 1
                left = BinOp(op, left, self.term(depth), left.pos)
            else:
                return left

    def term(self, depth: int) -> FormulaAst:
        left = self.unary(depth)
        while True:
            self.skip_ws()
            if self.at("*") or self.at("/"):
                op: BinaryOp = "*" if self.at("*") else "/"
                self.i += 1
                left = BinOp(op, left, self.unary(depth), left.pos)
            else:
                return left

    def unary(self, depth: int) -> FormulaAst:
        self.skip_ws()
        if depth >= MAX_NESTING_DEPTH:
            raise self.error(
                self.i, f"at most {MAX_NESTING_DEPTH} levels of nested parentheses, calls and minuses"
            )
        if self.at("-"):
            pos = self.i
            self.i += 1
            operand = self.unary(depth + 1)
            if isinstance(operand, Number):
                return Number(-operand.value, pos)
            return Neg(operand, pos)
        return self.primary(depth)

    def primary(self, depth: int) -> FormulaAst:
        self.skip_ws()
        pos = self.i
        if self.at_end():
            raise self.error(pos, self.operand_words())
        c = self.text[pos]
        after = self.text[pos + 1 : pos + 2]
        if c in _DIGITS or (c == "." and after != "" and after in _DIGITS):
            return self.number()
        if c == "(":
            self.i += 1
            inner = self.expr(depth + 1)
            self.skip_ws()
            if not self.at(")"):
                raise self.error(self.i, f"an operator or ')' to close the '(' at position {pos}")
            self.i += 1
            return inner
        if c in "'\"":
            raise self.error(pos, f"{self.operand_words()} (quoted strings are only function arguments)")
        m = _NAME.match(self.text, pos)
        if m is None:
            raise self.error(pos, self.operand_words())
        if self.legacy and starts_value_filter(self.text, pos):
            return self.metric_operand(pos)
        self.i = m.end()
        self.skip_ws()
        if self.at("("):
            return self.call(m.group(), pos, depth)
        if self.legacy:
            return self.metric_operand(pos)
        self.i = m.end()
        if self.text[self.i : self.i + 1] in (".", ":", "{"):
            raise self.error(
                self.i,
                "an operator or the end of the formula (a formula names its queries, like query1; "
                "metric query strings go in the request's queries)",
            )
        name = m.group()
        if self.names is not None and name not in self.names:
            known = ", ".join(sorted(self.names)) or "none"
            raise self.error(pos, f"the name of a query of this request ({known})", f"'{name}'")
        return QueryRef(name, pos)

    def operand_words(self) -> str:
        if self.legacy:
            return "a metric query, a number, a function call or '('"
        return "a query name, a number, a function call or '('"

    def number(self) -> Number:
        pos = self.i
        m = _NUMBER.match(self.text, pos)
        assert m is not None  # the caller saw a digit
        value = float(m.group())
        if not math.isfinite(value):
            raise self.error(pos, "a number of a representable size", f"'{m.group()[:40]}'")
        self.i = m.end()
        if self.i < len(self.text) and (self.text[self.i].isalnum() or self.text[self.i] in "_."):
            raise self.error(self.i, "an operator after the number")
        return Number(value, pos)

    def metric_operand(self, pos: int) -> MetricOperand:
        query, end = parse_metric_query_prefix(self.text, pos)
        self.i = end
        return MetricOperand(query, pos)

    def string(self) -> StringLit:
        pos = self.i
        scanned = scan_quoted(self.text, pos)
        if scanned is None:
            raise self.error(len(self.text), unclosed_string(self.text, pos))
        value, self.i = scanned
        return StringLit(value, pos)

    # -- calls

    def call(self, name: str, pos: int, depth: int) -> Call:
        spec = FUNCTIONS.get(name)
        if spec is None:
            hint = unknown_hint(name) or "see Datadog's list of graphing functions"
            raise self.error(pos, f"a known function ({hint})", f"'{name}'")
        open_pos = self.i
        self.i += 1
        args: list[Argument] = []
        kwargs: list[tuple[str, Argument, int]] = []
        self.skip_ws()
        if self.at(")"):
            close_pos = self.i
            self.i += 1
        else:
            while True:
                self.skip_ws()
                arg_pos = self.i
                keyword = self.keyword()
                if keyword is not None:
                    kwargs.append((keyword, self.argument(depth, f"a value for {keyword}="), arg_pos))
                elif kwargs:
                    raise self.error(
                        arg_pos, "a named argument (name=value): positional arguments come first"
                    )
                else:
                    args.append(self.argument(depth, self.operand_words() + " or a quoted string"))
                self.skip_ws()
                if self.at(","):
                    self.i += 1
                    continue
                if not self.at(")"):
                    raise self.error(
                        self.i,
                        f"an operator, ',' or ')' to close the call of {name}() at position {open_pos}",
                    )
                close_pos = self.i
                self.i += 1
                break
        keywords = self.check_keywords(spec, kwargs)
        return Call(name, tuple(self.check_call(spec, args, close_pos)), tuple(keywords), pos)

    def keyword(self) -> str | None:
        """`name=` (not `==`) at the cursor: consumes it and returns the name."""
        m = _NAME.match(self.text, self.i)
        if m is None:
            return None
        j = m.end()
        while j < len(self.text) and self.text[j].isspace():
            j += 1
        if self.text.startswith("=", j) and not self.text.startswith("==", j):
            self.i = j + 1
            return m.group()
        return None

    def argument(self, depth: int, expected: str) -> Argument:
        self.skip_ws()
        if self.at_end() or self.at(",") or self.at(")"):
            raise self.error(self.i, expected)
        if self.text[self.i] in "'\"":
            return self.string()
        return self.expr(depth + 1)

    def check_call(self, spec: FunctionSpec, args: list[Argument], close_pos: int) -> list[Argument]:
        n = len(args)
        if n < spec.min_args:
            need = spec.min_args if spec.min_args == spec.max_args else f"at least {spec.min_args}"
            raise self.error(
                close_pos,
                f"{need} argument{'s' if spec.min_args > 1 else ''} for {spec.signature()}",
                _count(n),
            )
        if n > spec.max_args:
            most = spec.max_args if spec.min_args == spec.max_args else f"at most {spec.max_args}"
            raise self.error(
                args[spec.max_args].pos,
                f"{most} argument{'s' if spec.max_args != 1 else ''} for {spec.signature()}",
                _count(n),
            )
        return [
            self.check_arg(spec, param, arg, _ordinal(i))
            for i, (param, arg) in enumerate(zip(spec.positional, args, strict=False))
        ]

    def check_keywords(
        self, spec: FunctionSpec, kwargs: list[tuple[str, Argument, int]]
    ) -> list[tuple[str, Argument]]:
        seen: set[str] = set()
        out: list[tuple[str, Argument]] = []
        for name, arg, name_pos in kwargs:
            param = spec.named_param(name)
            if param is None:
                if spec.named:
                    allowed = ", ".join(p.name for p in spec.named)
                    expected = f"a named argument of {spec.name}() ({allowed})"
                else:
                    expected = f"positional arguments only, as in {spec.signature()}"
                raise self.error(name_pos, expected, f"'{name}='")
            if name in seen:
                raise self.error(name_pos, "each named argument once", f"'{name}=' again")
            seen.add(name)
            out.append((name, self.check_arg(spec, param, arg, "named")))
        return out

    def check_arg(self, spec: FunctionSpec, param: Param, arg: Argument, ordinal: str) -> Argument:
        if ordinal == "named":
            where = f"{param.name}= of {spec.name}()"
        else:
            where = f"{param.name} ({ordinal} argument) of {spec.name}()"
        kind = arg_kind(param)
        if kind is ArgKind.SERIES:
            if isinstance(arg, StringLit):
                raise self.error(arg.pos, f"a query or an expression for {where}", "a quoted string")
            if param.type == "series" and not _has_query(arg):
                found = "a number" if isinstance(arg, Number) else "an expression without a query"
                raise self.error(arg.pos, f"a query or an expression over queries for {where}", found)
            return arg
        if kind is ArgKind.NUMBER:
            if not isinstance(arg, Number):
                raise self.error(arg.pos, f"a number for {where}", _kind_of(arg))
            self.check_value(spec, param, arg.value, arg.pos, where, f"'{number_text(arg.value)}'")
            return arg
        if not isinstance(arg, StringLit):
            raise self.error(arg.pos, f"a quoted string for {where}", _kind_of(arg))
        checked = self.check_value(spec, param, arg.value, arg.pos, where, f"'{arg.value}'")
        if param.choices and isinstance(checked, str):
            return StringLit(checked, arg.pos)
        return arg

    def check_value(
        self, spec: FunctionSpec, param: Param, value: float | str, pos: int, where: str, found: str
    ) -> object:
        """The catalog's verdict on a literal argument, positioned in the text when it refuses it."""
        try:
            return param.check(spec.name, where, value)
        except FunctionArgumentError as exc:
            raise self.error(pos, f"{exc.allowed or param.allowed()} for {where}", found) from None


def _has_query(ast: Argument) -> bool:
    """Whether an argument reads any query (a constant expression does not)."""
    if isinstance(ast, QueryRef | MetricOperand):
        return True
    if isinstance(ast, Neg):
        return _has_query(ast.operand)
    if isinstance(ast, BinOp):
        return _has_query(ast.left) or _has_query(ast.right)
    if isinstance(ast, Call):
        return any(_has_query(a) for a in ast.args) or any(_has_query(v) for _, v in ast.kwargs)
    return False


def _count(n: int) -> str:
    return f"{n} argument{'' if n == 1 else 's'}"


def _kind_of(arg: Argument) -> str:
    if isinstance(arg, StringLit):
        return "a quoted string"
    if isinstance(arg, QueryRef | MetricOperand):
        return "a query"
    return "an expression"


def _ordinal(i: int) -> str:
    return _ORDINALS[i] if i < len(_ORDINALS) else f"#{i + 1}"


def _check_length(text: str, error_type: type[FormulaSyntaxError]) -> None:
    if len(text) > MAX_FORMULA_LENGTH:
        raise error_type(MAX_FORMULA_LENGTH, f"at most {MAX_FORMULA_LENGTH} characters", "more")


# --- entry points ------------------------------------------------------------------------------------------


def parse_formula(text: str, query_names: Collection[str] | None = None) -> FormulaAst:
    """Parse one formula of a v2 / dashboard request; raises `FormulaSyntaxError`."""
    _check_length(text, FormulaSyntaxError)
    p = _Parser(text, legacy=False, names=None if query_names is None else frozenset(query_names))
    p.skip_ws()
    if p.at_end():
        raise p.error(p.i, "a formula, like query1 or query1 * 100 / query2")
    ast = p.expr(0)
    p.skip_ws()
    if p.at(","):
        raise p.error(
            p.i,
            "an operator or the end of the formula (one expression per formula: give each its own)",
        )
    if not p.at_end():
        raise p.error(p.i, "an operator (+, -, *, /) or the end of the formula")
    return ast


def parse_legacy_query(text: str) -> list[FormulaAst]:
    """Parse a legacy `q` / v1 query string into its comma-separated expressions; raises
    `LegacyQuerySyntaxError` or, inside a metric query, `MetricQuerySyntaxError`."""
    _check_length(text, LegacyQuerySyntaxError)
    p = _Parser(text, legacy=True)
    p.skip_ws()
    if p.at_end():
        raise p.error(p.i, "a query, like avg:system.cpu.user{*}")
    out: list[FormulaAst] = []
    while True:
        out.append(p.expr(0))
        p.skip_ws()
        if p.at(","):
            p.i += 1
            continue
        if not p.at_end():
            raise p.error(p.i, "an operator (+, -, *, /), ',' and another query, or the end of the query")
        return out


def parse_monitor_query(text: str) -> MonitorQueryAst:
    """Parse a metric monitor query `time_aggr(window):expression comparator threshold`."""
    _check_length(text, LegacyQuerySyntaxError)
    p = _Parser(text, legacy=True)
    p.skip_ws()
    change: ChangeKind | None = None
    shift: str | None = None
    head = _NAME.match(text, p.i)
    if head and head.group() in _CHANGES:
        change = _CHANGES[head.group()]
        p.i = head.end()
        _expect(p, "(", f"'(' after {head.group()}, as in {head.group()}(avg(last_5m),last_5m)")
        p.skip_ws()
    aggregator, window = _time_aggregation(p)
    if change is not None:
        p.skip_ws()
        _expect(p, ",", "',' and the shift window, as in change(avg(last_5m),last_1h)")
        p.skip_ws()
        shift = _window(p)
        p.skip_ws()
        _expect(p, ")", f"')' to close {change}(")
    _expect(
        p, ":", "':' and the query after the time aggregation, as in avg(last_5m):avg:system.cpu.user{*} > 90"
    )
    expression = p.expr(0)
    p.skip_ws()
    comparator = next((c for c in _COMPARATORS if p.at(c)), None)
    if comparator is None:
        raise p.error(p.i, "an operator or a comparison (>, >=, <, <=, ==, !=) and the threshold")
    p.i += len(comparator)
    p.skip_ws()
    sign = -1.0 if p.at("-") else 1.0
    if p.at("-") or p.at("+"):
        p.i += 1
    if _NUMBER.match(text, p.i) is None:
        raise p.error(p.i, f"a number after '{comparator}'")
    threshold = p.number().value * sign
    p.skip_ws()
    if not p.at_end():
        raise p.error(p.i, "the end of the monitor query after the threshold")
    return MonitorQueryAst(aggregator, window, expression, comparator, threshold, change, shift)


def _expect(p: _Parser, s: str, expected: str) -> None:
    if not p.at(s):
        raise p.error(p.i, expected)
    p.i += len(s)


def _time_aggregation(p: _Parser) -> tuple[TimeAggregator, str]:
    pos = p.i
    m = _NAME.match(p.text, pos)
    aggregator = _TIME_AGGREGATORS.get(m.group()) if m else None
    if m is None or aggregator is None:
        raise p.error(pos, "a time aggregation: avg, sum, min or max with a window, as in avg(last_5m)")
    p.i = m.end()
    _expect(p, "(", f"'(' and a window after {m.group()}, as in {m.group()}(last_5m)")
    p.skip_ws()
    window = _window(p)
    p.skip_ws()
    _expect(p, ")", f"')' after the window {window}")
    return aggregator, window


def _window(p: _Parser) -> str:
    m = _WINDOW.match(p.text, p.i)
    if m is None or (m.end() < len(p.text) and (p.text[m.end()].isalnum() or p.text[m.end()] == "_")):
        raise p.error(p.i, "a window like last_5m, last_4h, last_1d, last_1w or last_1mo")
    p.i = m.end()
    return m.group()


# --- rendering ---------------------------------------------------------------------------------------------


def render_formula(ast: FormulaAst) -> str:
    """The formula as text that parses back to `ast` (with the fewest parentheses)."""
    return _render(ast, 0)


def render_legacy_query(expressions: list[FormulaAst]) -> str:
    return ", ".join(_render(e, 0) for e in expressions)


def render_monitor_query(ast: MonitorQueryAst) -> str:
    head = f"{ast.time_aggregator}({ast.window})"
    if ast.change is not None:
        head = f"{ast.change}({head},{ast.change_shift})"
    return f"{head}:{_render(ast.expression, 0)} {ast.comparator} {number_text(ast.threshold)}"


def render_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _render(ast: Argument, level: int) -> str:
    """`level`: 0 anywhere, 1 right of '+'/'-' or left of '*'/'/', 2 right of '*'/'/' or after '-'."""
    if isinstance(ast, Number):
        return number_text(ast.value)
    if isinstance(ast, QueryRef):
        return ast.name
    if isinstance(ast, MetricOperand):
        return render_metric_query(ast.query)
    if isinstance(ast, StringLit):
        return render_string(ast.value)
    if isinstance(ast, Neg):
        return "-" + _render(ast.operand, 2)
    if isinstance(ast, Call):
        parts = [_render(a, 0) for a in ast.args] + [f"{k}={_render(v, 0)}" for k, v in ast.kwargs]
        return f"{ast.name}({', '.join(parts)})"
    if ast.op in "+-":
        text = f"{_render(ast.left, 0)} {ast.op} {_render(ast.right, 1)}"
        return f"({text})" if level >= 1 else text
    text = f"{_render(ast.left, 1)} {ast.op} {_render(ast.right, 2)}"
    return f"({text})" if level >= 2 else text
