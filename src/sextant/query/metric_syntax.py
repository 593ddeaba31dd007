"""Datadog metric query strings (`avg:system.cpu.user{env:prod} by {host}.rollup(sum, 60)`) parsed to a
typed tree.

`parse_metric_query(text)` returns a `MetricQueryAst` or raises `MetricQuerySyntaxError` (a
`QuerySyntaxError`, itself a `ValueError`) naming the 0-based position, what was found there and what was
expected. No other exception escapes for any input: the length and the nesting of a scope are bounded
(`MAX_QUERY_LENGTH`, `MAX_NESTING_DEPTH`). `render_metric_query` and `render_scope` write a tree back as
text that parses to the same tree.

Grammar: `[space_agg:]metric{scope} [by {key,...}]` then modifiers in any order.
- Space aggregators: `avg`, `sum`, `min`, `max`, `count` (distributions offer count) and percentiles `p50`,
  `p99`, `p99.9`, `p99.99` (Datadog allows any percentile with up to two decimals, strictly between 0
  and 100); the value-filter form `count(v: v<=1):metric{...}` counts values passing the comparison
  (`<`, `<=`, `>`, `>=`). Without an aggregator `space_aggregator` is None (Datadog treats it as avg).
  Aggregator keywords are lowercased.
- Metric names start with a letter and hold letters, digits, `_`, `.`, `/` and `*` (the `system.disk/*`
  wildcard form), without empty dot segments, at most `MAX_METRIC_NAME_CHARS` characters.
- Scope: `*`, or a boolean filter over the series' `key:value` tags, written in ONE of two syntaxes:
  symbolic (`,` is AND, `!` is NOT: `{env:prod,!host:a}`) or functional (`AND`, `OR`, `NOT`, `key IN (a, b)`,
  `key NOT IN (a, b)`, parentheses; keywords case-insensitive). Mixing them is an error, as Datadog
  documents (`{env:prod AND !region:us-east}` is invalid). AND binds tighter than OR. Leaves: `key:value`
  and a bare `tag` (`TagMatch`, `*` in either is a wildcard: `web-*`, `*-trace`, `*east*`), `key:~"regex"`
  (`TagRegex`: the pattern must compile and may not use lookarounds or backreferences, so that every store
  can run it; inside the quotes `\\"` is a quote and other backslash pairs are kept as written), and
  `key:>=100` (`TagCompare`, on the numeric value of the tag). A bare `*` is only the whole scope `{*}`.
  Nested ANDs (ORs) are flattened into one `ScopeAnd` (`ScopeOr`); `NOT IN` is `ScopeNot(TagIn(...))`.
- Group keys: `by {host,device}`; `by {*}` is kept as the key `*` (one group per series).
- Modifiers, each at most once: `.rollup(agg[, seconds])` with agg in avg, sum, min, max, count, and the
  legacy `.rollup(seconds)`; `.fill(method[, limit_seconds])` with method null, zero, linear or last (the
  limit is recorded as written: Datadog's default is 300 s and its maximum 600 s, which the evaluator
  applies); `.as_count()` or `.as_rate()` (not both); `.weighted()`; `.timeshift(seconds)` (signed);
  `.label("text")`.

Decisions where Datadog is silent:
- The legacy `.fill(true)` is `Fill("linear")`, Datadog's default interpolation switched on explicitly, and
  `.fill(false)` is `Fill("null")` (interpolation off). They render as `fill(linear)` / `fill(null)`.
- Whitespace is allowed around `{`, `}`, `,`, `by`, modifier arguments and inside a scope, not inside a
  name or between an aggregator and its colon. Two tags side by side with no operator are an error.
- Rollup seconds and fill limits must be positive whole numbers; a timeshift is a whole number.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal, TypeAlias

from sextant.core.metrics import MAX_METRIC_NAME_CHARS
from sextant.query.metric_functions import ROLLUP_AGGREGATORS

MAX_QUERY_LENGTH = 16 * 1024
"""Longest accepted query, in characters."""

MAX_NESTING_DEPTH = 100
"""Most levels of nested parentheses and NOTs in a scope; keeps recursion far from Python's stack limit,
here and in every consumer that walks the tree."""

FILL_DEFAULT_LIMIT_SECONDS = 300
FILL_MAX_LIMIT_SECONDS = 600
SPACE_AGGREGATORS = ("avg", "sum", "min", "max", "count")
FILL_METHODS = ("null", "zero", "linear", "last")

CompareOp = Literal["<", "<=", ">", ">="]
RollupAggregator = Literal["avg", "sum", "min", "max", "count"]
FillMethod = Literal["null", "zero", "linear", "last"]
TypeModifier = Literal["as_count", "as_rate"]


class QuerySyntaxError(ValueError):
    """Text that is not valid query syntax: at `position` (0-based) `found` stood where `expected` was
    expected. The message says all three, for a user to act on."""

    subject = "query"

    def __init__(self, position: int, expected: str, found: str) -> None:
        # All in args so that the exception pickles and compares like a plain ValueError.
        super().__init__(position, expected, found)
        self.position = position
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        where = f"invalid {self.subject} at position {self.position}"
        return f"{where}: expected {self.expected}, found {self.found}"


class MetricQuerySyntaxError(QuerySyntaxError):
    subject = "metric query"


def starts_value_filter(text: str, pos: int) -> bool:
    """Whether the `count(v: ...)` value-filter form of a metric query starts at `pos`."""
    return _COUNT_FILTER.match(text, pos) is not None


def scan_quoted(text: str, start: int) -> tuple[str, int] | None:
    """The content of the string literal whose opening quote (single or double) is at `start`, a backslash
    making the next character literal, and the position after its closing quote; None if it never closes."""
    quote = text[start]
    i = start + 1
    out: list[str] = []
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\\" and i + 1 < len(text):
            i += 1
            c = text[i]
        out.append(c)
        i += 1
    return None


def unclosed_string(text: str, start: int) -> str:
    """What an error expects at the end of a string literal opened at `start` that never closes."""
    quote = text[start]
    shown = f"'{quote}'" if quote == '"' else f'"{quote}"'
    return f"{shown} to close the string opened at position {start}"


def describe_at(text: str, pos: int, end: str = "the end of the query") -> str:
    """What a user sees at `pos`: the word or character there, quoted, or `end`."""
    if pos >= len(text):
        return end
    m = _WORD.match(text, pos)
    token = m.group() if m else text[pos]
    if token.isspace():
        return "a space"
    if len(token) > 40:
        token = token[:40] + "..."
    return f"'{token}'"


_WORD = re.compile(r"[\w.]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PERCENTILE = re.compile(r"p([0-9]{1,2}(?:\.[0-9]{1,2})?)")
_METRIC_CHARS = re.compile(r"[A-Za-z0-9_./*]*")
_KEY_STOPS = frozenset(",(){}!:\"'~<>=")
_VALUE_STOPS = _KEY_STOPS - {":"}
_COMPARE_OPS: tuple[CompareOp, ...] = (">=", "<=", ">", "<")
_UNSUPPORTED_REGEX = re.compile(r"\(\?<?[=!]|\(\?P=|\\[1-9]")
_COUNT_FILTER = re.compile(r"count\s*\(\s*v\s*:")


# --- the tree ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScopeAll:
    """`{*}`: every series."""


@dataclass(frozen=True, slots=True)
class TagMatch:
    """`key:value` (value None: a bare tag `key`). `*` in either part matches any run of characters."""

    key: str
    value: str | None = None

    @property
    def glob(self) -> str:
        """The pattern a whole `key:value` tag of a series must match."""
        return self.key if self.value is None else f"{self.key}:{self.value}"


@dataclass(frozen=True, slots=True)
class TagIn:
    """`key IN (a, b)`: the series has `key:a` or `key:b` (values may hold `*` wildcards)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TagRegex:
    """`key:~"pattern"`: the value of `key` matches the regular expression."""

    key: str
    pattern: str


@dataclass(frozen=True, slots=True)
class TagCompare:
    """`key:>=100`: the value of `key`, read as a number, compares true."""

    key: str
    op: CompareOp
    value: float


@dataclass(frozen=True, slots=True)
class ScopeAnd:
    operands: tuple[Scope, ...]


@dataclass(frozen=True, slots=True)
class ScopeOr:
    operands: tuple[Scope, ...]


@dataclass(frozen=True, slots=True)
class ScopeNot:
    operand: Scope


Scope: TypeAlias = ScopeAll | TagMatch | TagIn | TagRegex | TagCompare | ScopeAnd | ScopeOr | ScopeNot


@dataclass(frozen=True, slots=True)
class ValueFilter:
    """`count(v: v<=1):`: only values passing `v op value` are counted."""

    op: CompareOp
    value: float


@dataclass(frozen=True, slots=True)
class Rollup:
    aggregator: RollupAggregator | None = None
    seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    method: FillMethod
    limit_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class MetricQueryAst:
    metric: str
    scope: Scope = ScopeAll()
    space_aggregator: str | None = None
    value_filter: ValueFilter | None = None
    group_by: tuple[str, ...] = ()
    rollup: Rollup | None = None
    fill: Fill | None = None
    type_modifier: TypeModifier | None = None
    weighted: bool = False
    timeshift_seconds: int | None = None
    label: str | None = None

    @property
    def percentile(self) -> float | None:
        """99.9 for `p99.9:`, None for the other aggregators."""
        m = _PERCENTILE.fullmatch(self.space_aggregator or "")
        return float(m.group(1)) if m else None


# --- scope tokens ------------------------------------------------------------------------------------------


class _Kind(Enum):
    TERM = "a tag"
    COMMA = "','"
    BANG = "'!'"
    LPAREN = "'('"
    RPAREN = "')'"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    IN = "IN"
    STAR = "'*'"
    END = "'}'"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    pos: int
    raw: str
    leaf: TagMatch | TagRegex | TagCompare | None = None


_KEYWORDS = {"AND": _Kind.AND, "OR": _Kind.OR, "NOT": _Kind.NOT, "IN": _Kind.IN}
_PUNCT = {",": _Kind.COMMA, "!": _Kind.BANG, "(": _Kind.LPAREN, ")": _Kind.RPAREN}
_SYMBOLIC = frozenset({_Kind.COMMA, _Kind.BANG})


class _Parser:
    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.i = pos

    # -- characters

    def error(self, pos: int, expected: str, found: str | None = None) -> MetricQuerySyntaxError:
        return MetricQuerySyntaxError(pos, expected, describe_at(self.text, pos) if found is None else found)

    def skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def at(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def expect(self, s: str, expected: str) -> None:
        if not self.at(s):
            raise self.error(self.i, expected)
        self.i += len(s)

    def run(self, stops: frozenset[str]) -> str:
        start = self.i
        while self.i < len(self.text) and not self.text[self.i].isspace() and self.text[self.i] not in stops:
            self.i += 1
        return self.text[start : self.i]

    def number(self, expected: str) -> float:
        m = _NUMBER.match(self.text, self.i)
        if m is None:
            raise self.error(self.i, expected)
        value = float(m.group())
        if not math.isfinite(value):
            raise self.error(self.i, "a number of a representable size")
        self.i = m.end()
        return value

    def quoted(self) -> str:
        scanned = scan_quoted(self.text, self.i)
        if scanned is None:
            raise self.error(len(self.text), unclosed_string(self.text, self.i))
        value, self.i = scanned
        return value

    # -- the query

    def query(self) -> MetricQueryAst:
        start = self.i
        space: str | None = None
        value_filter: ValueFilter | None = None
        if starts_value_filter(self.text, self.i):
            value_filter = self.value_filter()
            space = "count"
        else:
            word = _METRIC_CHARS.match(self.text, self.i)
            assert word is not None  # the pattern matches the empty string
            if self.text.startswith(":", word.end()):
                space = self.space_aggregator(word.group(), start)
                self.i = word.end() + 1
        metric = self.metric_name()
        self.skip_ws()
        scope = self.scope()
        group_by = self.group_by()
        return self.modifiers(
            MetricQueryAst(metric, scope, space, value_filter, group_by),
        )

    def value_filter(self) -> ValueFilter:
        open_pos = self.text.index("(", self.i)
        self.i = self.text.index(":", open_pos) + 1
        self.skip_ws()
        self.expect("v", "'v' in the value filter, as in count(v: v<=1)")
        self.skip_ws()
        op = next((op for op in _COMPARE_OPS if self.at(op)), None)
        if op is None:
            raise self.error(self.i, "a comparison ('<', '<=', '>' or '>=') after 'v', as in count(v: v<=1)")
        self.i += len(op)
        self.skip_ws()
        value = self.number(f"a number after '{op}'")
        self.skip_ws()
        self.expect(")", f"')' to close the value filter opened at position {open_pos}")
        self.expect(":", "':' and the metric name after the value filter, as in count(v: v<=1):my.metric{*}")
        return ValueFilter(op, value)

    def space_aggregator(self, word: str, pos: int) -> str:
        lowered = word.lower()
        if lowered in SPACE_AGGREGATORS:
            return lowered
        m = _PERCENTILE.fullmatch(lowered)
        if m and 0 < float(m.group(1)) < 100:
            return lowered
        raise self.error(
            pos,
            "a space aggregator before ':' (avg, sum, min, max, count, or a percentile like p95 or p99.9)",
            f"'{word}'",
        )

    def metric_name(self) -> str:
        start = self.i
        m = _METRIC_CHARS.match(self.text, self.i)
        assert m is not None
        name = m.group()
        if not name or not name[0].isalpha():
            raise self.error(start, "a metric name starting with a letter, like system.cpu.user")
        if ".." in name or name.endswith("."):
            where = start + (name.index("..") + 1 if ".." in name else len(name))
            raise self.error(where, "a metric name without empty segments between dots", f"'{name}'")
        if len(name) > MAX_METRIC_NAME_CHARS:
            raise self.error(
                start, f"a metric name of at most {MAX_METRIC_NAME_CHARS} characters", f"'{name[:40]}...'"
            )
        self.i = m.end()
        return name

    def scope(self) -> Scope:
        open_pos = self.i
        self.expect("{", "'{' and a scope after the metric name, like {*} or {env:prod}")
        tokens = self.scope_tokens(open_pos)
        return _ScopeParser(self, tokens, open_pos).parse()

    def group_by(self) -> tuple[str, ...]:
        save = self.i
        self.skip_ws()
        m = _WORD.match(self.text, self.i)
        if m is None or m.group().lower() != "by":
            self.i = save
            return ()
        by_pos = self.i
        self.i = m.end()
        self.skip_ws()
        open_pos = self.i
        self.expect("{", "'{' and tag keys after 'by', as in by {host}")
        keys: list[str] = []
        while True:
            self.skip_ws()
            key_pos = self.i
            key = self.run(_KEY_STOPS)
            if not key:
                raise self.error(key_pos, "a tag key to group by (like host), or '*'")
            if key in keys:
                raise self.error(key_pos, "each group key once", f"'{key}' a second time")
            keys.append(key)
            self.skip_ws()
            if self.at(","):
                self.i += 1
                continue
            if self.at("}"):
                self.i += 1
                break
            raise self.error(self.i, f"',' or '}}' to close the group keys opened at position {open_pos}")
        if "*" in keys and len(keys) > 1:
            raise self.error(by_pos, "either by {*} or a list of tag keys, not both")
        return tuple(keys)

    def modifiers(self, ast: MetricQueryAst) -> MetricQueryAst:
        seen: set[str] = set()
        while True:
            save = self.i
            self.skip_ws()
            if not (self.at(".") and self.i + 1 < len(self.text) and self.text[self.i + 1].isalpha()):
                self.i = save
                return ast
            self.i += 1
            name_pos = self.i
            m = _WORD.match(self.text, self.i)
            assert m is not None
            name = m.group().split(".")[0]
            self.i = name_pos + len(name)
            if name not in _MODIFIERS:
                raise self.error(
                    name_pos, "a modifier: rollup, fill, as_count, as_rate, weighted, timeshift or label"
                )
            group = "as_count/as_rate" if name in ("as_count", "as_rate") else name
            if group in seen:
                what = ".as_count() or .as_rate()" if group != name else f".{name}()"
                raise self.error(name_pos, f"at most one {what} in a query", f"'{name}' a second time")
            seen.add(group)
            self.skip_ws()
            open_pos = self.i
            self.expect("(", f"'(' after .{name}")
            args = self.modifier_args(open_pos)
            ast = _MODIFIERS[name](self, ast, args, open_pos)

    def modifier_args(self, open_pos: int) -> list[_Arg]:
        args: list[_Arg] = []
        self.skip_ws()
        if self.at(")"):
            self.i += 1
            return args
        while True:
            self.skip_ws()
            args.append(self.modifier_arg())
            self.skip_ws()
            if self.at(","):
                self.i += 1
                continue
            self.expect(")", f"',' or ')' to close the arguments opened at position {open_pos}")
            return args

    def modifier_arg(self) -> _Arg:
        pos = self.i
        if self.at('"') or self.at("'"):
            return _Arg(pos, "string", self.quoted())
        m = _NUMBER.match(self.text, self.i)
        if m:
            self.i = m.end()
            return _Arg(pos, "number", m.group())
        word = _WORD.match(self.text, self.i)
        if word and (word.group()[0].isalpha() or word.group()[0] == "_"):
            self.i = word.end()
            return _Arg(pos, "word", word.group())
        raise self.error(pos, "an argument: a word, a number or a quoted string")

    # -- scope tokens

    def scope_tokens(self, open_pos: int) -> list[_Token]:
        tokens: list[_Token] = []
        in_list = False
        while True:
            self.skip_ws()
            if self.i >= len(self.text):
                raise self.error(self.i, f"'}}' to close the scope opened at position {open_pos}")
            c = self.text[self.i]
            pos = self.i
            if c == "}":
                self.i += 1
                tokens.append(_Token(_Kind.END, pos, "}"))
                return tokens
            if c in _PUNCT:
                self.i += 1
                tokens.append(_Token(_PUNCT[c], pos, c))
                if c == "(":
                    in_list = len(tokens) >= 2 and tokens[-2].kind is _Kind.IN
                elif c == ")":
                    in_list = False
                continue
            if in_list:
                # Inside `IN (...)` a word is a whole value, colons and all.
                value = self.run(_VALUE_STOPS)
                if not value:
                    raise self.error(pos, "a tag value in the IN list")
                tokens.append(_Token(_Kind.TERM, pos, value, TagMatch(value)))
                continue
            tokens.append(self.term())

    def term(self) -> _Token:
        pos = self.i
        key = self.run(_KEY_STOPS)
        if not key:
            raise self.error(pos, "a tag filter, like env:prod, !env:prod or env IN (a, b)")
        if not self.at(":"):
            kind = _KEYWORDS.get(key.upper())
            if kind is not None:
                return _Token(kind, pos, key)
            if key == "*":
                return _Token(_Kind.STAR, pos, key)
            return _Token(_Kind.TERM, pos, key, TagMatch(key))
        self.i += 1
        leaf: TagMatch | TagRegex | TagCompare
        if self.at("~"):
            self.i += 1
            if not self.at('"'):
                raise self.error(
                    self.i, f"a double-quoted regular expression after '{key}:~', as in host:~\"web-.*\""
                )
            leaf = TagRegex(key, self.regex())
        elif op := next((op for op in _COMPARE_OPS if self.at(op)), None):
            self.i += len(op)
            leaf = TagCompare(key, op, self.number(f"a number after '{key}:{op}'"))
            if (
                self.i < len(self.text)
                and self.text[self.i] not in _KEY_STOPS
                and not self.text[self.i].isspace()
            ):
                raise self.error(self.i, f"a number after '{key}:{op}'")
        else:
            value_pos = self.i
            value = self.run(_VALUE_STOPS)
            if not value:
                raise self.error(
                    value_pos, f"a value after '{key}:' (or a bare tag '{key}' without the colon)"
                )
            leaf = TagMatch(key, value)
        return _Token(_Kind.TERM, pos, self.text[pos : self.i], leaf)

    def regex(self) -> str:
        """A quoted pattern: `\\"` is a quote, any other backslash pair is kept for the regex engine."""
        start = self.i
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == '"':
                self.i += 1
                pattern = "".join(out)
                self.check_regex(pattern, start)
                return pattern
            if c == "\\" and self.i + 1 < len(self.text):
                nxt = self.text[self.i + 1]
                out.append('"' if nxt == '"' else c + nxt)
                self.i += 2
                continue
            out.append(c)
            self.i += 1
        raise self.error(len(self.text), f"'\"' to close the regular expression opened at position {start}")

    def check_regex(self, pattern: str, pos: int) -> None:
        if not pattern:
            raise self.error(pos, "a non-empty regular expression", "'\"\"'")
        unsupported = _UNSUPPORTED_REGEX.search(pattern)
        if unsupported:
            raise self.error(
                pos + 1,
                "a regular expression without lookarounds or backreferences",
                f"'{unsupported.group()}'",
            )
        try:
            with warnings.catch_warnings():
                # Only errors decide; style warnings about a user's pattern are not ours to print.
                warnings.simplefilter("ignore")
                re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise self.error(pos + 1, "a valid regular expression", f"{pattern!r} ({exc})") from None


@dataclass(frozen=True, slots=True)
class _Arg:
    pos: int
    kind: Literal["word", "number", "string"]
    text: str


_ROLLUP_AGGREGATORS: dict[str, RollupAggregator] = {a: a for a in ("avg", "sum", "min", "max", "count")}
assert tuple(_ROLLUP_AGGREGATORS) == ROLLUP_AGGREGATORS
_FILL_METHODS: dict[str, FillMethod] = {
    "null": "null",
    "zero": "zero",
    "linear": "linear",
    "last": "last",
    # The legacy boolean form: interpolation on (Datadog's default method) or off.
    "true": "linear",
    "false": "null",
}


def _whole(p: _Parser, arg: _Arg, what: str, *, positive: bool) -> int:
    if arg.kind != "number" or not re.fullmatch(r"[+-]?[0-9]+", arg.text):
        raise p.error(arg.pos, f"a whole number of seconds in {what}", f"'{arg.text}'")
    value = int(arg.text)
    if positive and value <= 0:
        raise p.error(arg.pos, f"a positive number of seconds in {what}", f"'{arg.text}'")
    return value


def _arity(p: _Parser, args: list[_Arg], lo: int, hi: int, open_pos: int, usage: str) -> None:
    if lo <= len(args) <= hi:
        return
    pos = args[hi].pos if len(args) > hi else open_pos
    raise p.error(pos, usage, f"{len(args)} argument{'' if len(args) == 1 else 's'}")


def _rollup(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    usage = ".rollup(aggregator[, seconds]) with aggregator avg, sum, min, max or count, or .rollup(seconds)"
    _arity(p, args, 1, 2, open_pos, usage)
    first = args[0]
    if first.kind == "number" and len(args) == 1:
        return replace(ast, rollup=Rollup(None, _whole(p, first, ".rollup()", positive=True)))
    aggregator = _ROLLUP_AGGREGATORS.get(first.text.lower()) if first.kind == "word" else None
    if aggregator is None:
        raise p.error(first.pos, "a rollup aggregator: avg, sum, min, max or count", f"'{first.text}'")
    seconds = _whole(p, args[1], ".rollup()", positive=True) if len(args) == 2 else None
    return replace(ast, rollup=Rollup(aggregator, seconds))


def _fill(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    _arity(p, args, 1, 2, open_pos, ".fill(method[, limit_seconds]) with method null, zero, linear or last")
    first = args[0]
    method = _FILL_METHODS.get(first.text.lower()) if first.kind == "word" else None
    if method is None:
        raise p.error(first.pos, "a fill method: null, zero, linear or last", f"'{first.text}'")
    limit = _whole(p, args[1], ".fill()", positive=True) if len(args) == 2 else None
    return replace(ast, fill=Fill(method, limit))


def _as_count(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    _arity(p, args, 0, 0, open_pos, ".as_count() without arguments")
    return replace(ast, type_modifier="as_count")


def _as_rate(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    _arity(p, args, 0, 0, open_pos, ".as_rate() without arguments")
    return replace(ast, type_modifier="as_rate")


def _weighted(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    _arity(p, args, 0, 0, open_pos, ".weighted() without arguments")
    return replace(ast, weighted=True)


def _timeshift(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    _arity(p, args, 1, 1, open_pos, ".timeshift(seconds), as in .timeshift(-3600)")
    return replace(ast, timeshift_seconds=_whole(p, args[0], ".timeshift()", positive=False))


def _label(p: _Parser, ast: MetricQueryAst, args: list[_Arg], open_pos: int) -> MetricQueryAst:
    _arity(p, args, 1, 1, open_pos, '.label("text")')
    if args[0].kind != "string":
        raise p.error(args[0].pos, 'a quoted label, as in .label("CPU user")', f"'{args[0].text}'")
    return replace(ast, label=args[0].text)


_MODIFIERS: dict[str, Callable[[_Parser, MetricQueryAst, list[_Arg], int], MetricQueryAst]] = {
    "rollup": _rollup,
    "fill": _fill,
    "as_count": _as_count,
    "as_rate": _as_rate,
    "weighted": _weighted,
    "timeshift": _timeshift,
    "label": _label,
}


# --- scope parser ------------------------------------------------------------------------------------------


class _ScopeParser:
    """Recursive descent over the tokens of one scope. Either syntax is accepted until the first token that
    belongs to one of them; from then on a token of the other is an error."""

    def __init__(self, p: _Parser, tokens: list[_Token], open_pos: int) -> None:
        self.p = p
        self.tokens = tokens
        self.k = 0
        self.open_pos = open_pos
        self.mode: Literal["symbolic", "functional"] | None = None
        self.mode_pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.k]

    def advance(self) -> _Token:
        tok = self.tokens[self.k]
        self.k += 1
        return tok

    def error(self, tok: _Token, expected: str) -> MetricQuerySyntaxError:
        return self.p.error(tok.pos, expected, _found(tok))

    def use(self, tok: _Token) -> None:
        mode: Literal["symbolic", "functional"] = "symbolic" if tok.kind in _SYMBOLIC else "functional"
        if self.mode is None:
            self.mode, self.mode_pos = mode, tok.pos
            return
        if self.mode == mode:
            return
        if self.mode == "symbolic":
            expected = (
                f"',' or '!' like the rest of this scope (symbolic syntax from position {self.mode_pos}; "
                "',' and '!' cannot be mixed with AND, OR, NOT, IN and parentheses)"
            )
        else:
            expected = (
                "AND, OR or NOT like the rest of this scope "
                f"(functional syntax from position {self.mode_pos}; "
                "AND, OR, NOT, IN and parentheses cannot be mixed with ',' and '!')"
            )
        raise self.error(tok, expected)

    def parse(self) -> Scope:
        first = self.peek()
        if first.kind is _Kind.STAR and self.tokens[1].kind is _Kind.END:
            self.k = 2
            return ScopeAll()
        if first.kind is _Kind.END:
            raise self.error(first, "'*' or a tag filter (like env:prod) inside the braces")
        scope = self.or_expr(0)
        end = self.peek()
        if end.kind is _Kind.RPAREN:
            raise self.error(end, f"{self.continuation()} or '}}' (this ')' closes no '(')")
        if end.kind is not _Kind.END:
            raise self.error(
                end, f"{self.continuation()} or '}}' to close the scope opened at position {self.open_pos}"
            )
        return scope

    def continuation(self) -> str:
        return {"symbolic": "','", "functional": "AND, OR"}.get(self.mode or "", "',', AND, OR")

    def or_expr(self, depth: int) -> Scope:
        operands = [self.and_expr(depth)]
        while self.peek().kind is _Kind.OR:
            self.use(self.advance())
            operands.append(self.and_expr(depth))
        return _flatten(ScopeOr, operands)

    def and_expr(self, depth: int) -> Scope:
        operands = [self.unary(depth)]
        while self.peek().kind in (_Kind.AND, _Kind.COMMA):
            self.use(self.advance())
            operands.append(self.unary(depth))
        return _flatten(ScopeAnd, operands)

    def unary(self, depth: int) -> Scope:
        tok = self.peek()
        if depth >= MAX_NESTING_DEPTH:
            raise self.error(tok, f"at most {MAX_NESTING_DEPTH} levels of nested parentheses and negations")
        if tok.kind in (_Kind.NOT, _Kind.BANG):
            self.use(self.advance())
            return ScopeNot(self.unary(depth + 1))
        return self.primary(depth)

    def primary(self, depth: int) -> Scope:
        tok = self.advance()
        if tok.kind is _Kind.LPAREN:
            self.use(tok)
            inner = self.or_expr(depth + 1)
            close = self.advance()
            if close.kind is not _Kind.RPAREN:
                raise self.error(close, f"AND, OR or ')' to close the '(' at position {tok.pos}")
            return inner
        if tok.kind is _Kind.TERM:
            assert tok.leaf is not None
            nxt = self.peek()
            negated = nxt.kind is _Kind.NOT and self.tokens[self.k + 1].kind is _Kind.IN
            if nxt.kind is _Kind.IN or negated:
                return self.in_list(tok, negated)
            return tok.leaf
        if tok.kind is _Kind.STAR:
            raise self.error(tok, "a tag filter ('*' stands only alone, as the whole scope {*})")
        if tok.kind is _Kind.IN:
            raise self.error(tok, "a tag key before IN, as in env IN (prod, staging)")
        raise self.error(tok, "a tag filter, like env:prod, !env:prod or env IN (a, b)")

    def in_list(self, key_tok: _Token, negated: bool) -> Scope:
        if not isinstance(key_tok.leaf, TagMatch) or key_tok.leaf.value is not None:
            raise self.error(key_tok, "a tag key without a value before IN, as in env IN (prod, staging)")
        if negated:
            self.use(self.advance())
        in_tok = self.advance()
        self.use(in_tok)
        open_tok = self.advance()
        if open_tok.kind is not _Kind.LPAREN:
            raise self.error(open_tok, "'(' and a list of values after IN, as in env IN (prod, staging)")
        values: list[str] = []
        while True:
            tok = self.advance()
            if tok.kind is _Kind.STAR or (tok.kind is _Kind.TERM and isinstance(tok.leaf, TagMatch)):
                values.append(tok.raw)
            else:
                raise self.error(tok, "a tag value in the IN list")
            sep = self.advance()
            if sep.kind is _Kind.RPAREN:
                break
            if sep.kind is not _Kind.COMMA:
                raise self.error(sep, f"',' or ')' to close the IN list opened at position {open_tok.pos}")
        tag_in = TagIn(key_tok.leaf.key, tuple(values))
        return ScopeNot(tag_in) if negated else tag_in


def _found(tok: _Token) -> str:
    if tok.kind in (_Kind.AND, _Kind.OR, _Kind.NOT, _Kind.IN, _Kind.TERM, _Kind.STAR):
        return f"'{tok.raw}'"
    return str(tok.kind.value)


def _flatten(kind: type[ScopeAnd] | type[ScopeOr], operands: list[Scope]) -> Scope:
    if len(operands) == 1:
        return operands[0]
    flat: list[Scope] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, kind) else (operand,))
    return kind(tuple(flat))


# --- entry points ------------------------------------------------------------------------------------------


def parse_metric_query_prefix(text: str, start: int) -> tuple[MetricQueryAst, int]:
    """The metric query that starts at `start` in `text`, and the position right after it; for parsers of
    larger languages (legacy query strings) that embed metric queries. Raises `MetricQuerySyntaxError`."""
    if len(text) > MAX_QUERY_LENGTH:
        raise MetricQuerySyntaxError(
            MAX_QUERY_LENGTH, f"a query of at most {MAX_QUERY_LENGTH} characters", "more"
        )
    p = _Parser(text, start)
    ast = p.query()
    return ast, p.i


def parse_metric_query(text: str) -> MetricQueryAst:
    """Parse one Datadog metric query string; raises `MetricQuerySyntaxError` on invalid syntax."""
    p = _Parser(text, 0)
    p.skip_ws()
    ast, end = parse_metric_query_prefix(text, p.i)
    p.i = end
    p.skip_ws()
    if p.i < len(text):
        raise p.error(p.i, "a modifier like .rollup(sum, 60) or the end of the query")
    return ast


# --- rendering ---------------------------------------------------------------------------------------------


def render_metric_query(ast: MetricQueryAst) -> str:
    """The query as text that parses back to `ast`, modifiers in a fixed order."""
    if ast.value_filter is not None:
        prefix = f"count(v: v{ast.value_filter.op}{number_text(ast.value_filter.value)}):"
    elif ast.space_aggregator is not None:
        prefix = f"{ast.space_aggregator}:"
    else:
        prefix = ""
    out = [f"{prefix}{ast.metric}{{{render_scope(ast.scope)}}}"]
    if ast.group_by:
        out.append(f" by {{{','.join(ast.group_by)}}}")
    if ast.rollup is not None:
        args = [a for a in (ast.rollup.aggregator, ast.rollup.seconds) if a is not None]
        out.append(f".rollup({', '.join(str(a) for a in args)})")
    if ast.fill is not None:
        limit = "" if ast.fill.limit_seconds is None else f", {ast.fill.limit_seconds}"
        out.append(f".fill({ast.fill.method}{limit})")
    if ast.type_modifier is not None:
        out.append(f".{ast.type_modifier}()")
    if ast.weighted:
        out.append(".weighted()")
    if ast.timeshift_seconds is not None:
        out.append(f".timeshift({ast.timeshift_seconds})")
    if ast.label is not None:
        out.append(f".label({quote(ast.label)})")
    return "".join(out)


def render_scope(scope: Scope) -> str:
    """The scope without braces: symbolic (`env:prod,!host:a`) when the tree allows, else functional."""
    if isinstance(scope, ScopeAll):
        return "*"
    if _symbolic_operand(scope):
        return _render_symbolic(scope)
    if isinstance(scope, ScopeAnd) and all(_symbolic_operand(o) for o in scope.operands):
        return ",".join(_render_symbolic(o) for o in scope.operands)
    return _render_functional(scope, 0)


def quote(text: str) -> str:
    """A double-quoted string literal whose content reads back as `text`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def number_text(value: float) -> str:
    """A float as the shortest text that reads back as it: `100`, not `100.0`."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _leaf(scope: TagMatch | TagRegex | TagCompare | TagIn) -> str:
    if isinstance(scope, TagMatch):
        return scope.glob
    if isinstance(scope, TagRegex):
        return f"{scope.key}:~" + '"' + scope.pattern.replace('"', '\\"') + '"'
    if isinstance(scope, TagCompare):
        return f"{scope.key}:{scope.op}{number_text(scope.value)}"
    return f"{scope.key} IN ({', '.join(scope.values)})"


def _symbolic_operand(scope: Scope) -> bool:
    if isinstance(scope, ScopeNot):
        scope = scope.operand
    return isinstance(scope, TagMatch | TagRegex | TagCompare)


def _render_symbolic(scope: Scope) -> str:
    if isinstance(scope, ScopeNot):
        return "!" + _render_symbolic(scope.operand)
    assert isinstance(scope, TagMatch | TagRegex | TagCompare)
    return _leaf(scope)


def _render_functional(scope: Scope, level: int) -> str:
    """`level` 0: any expression may stand here; 1: inside AND (an OR needs parentheses); 2: after NOT."""
    if isinstance(scope, ScopeOr):
        text = " OR ".join(_render_functional(o, 1) for o in scope.operands)
        return f"({text})" if level >= 1 else text
    if isinstance(scope, ScopeAnd):
        text = " AND ".join(_render_functional(o, 1) for o in scope.operands)
        return f"({text})" if level >= 2 else text
    if isinstance(scope, ScopeNot):
        if isinstance(scope.operand, TagIn):
            return f"{scope.operand.key} NOT IN ({', '.join(scope.operand.values)})"
        return "NOT " + _render_functional(scope.operand, 2)
    assert not isinstance(scope, ScopeAll), "'*' is only a whole scope"
    return _leaf(scope)
