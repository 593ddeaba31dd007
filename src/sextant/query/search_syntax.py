"""The Datadog search syntax (logs, RUM, Product Analytics explorers) parsed to the filter IR.

`parse_search(query)` returns a `Filter` from `sextant.query.filters`, or raises `SearchSyntaxError`
(a `ValueError`) naming the 0-based character position and what was expected there. No other exception
escapes for any input string: the query length and the nesting of parentheses are bounded
(`MAX_QUERY_LENGTH`, `MAX_NESTING_DEPTH`) so that no input can exhaust memory or the stack.

What each piece of syntax becomes:

- `hello` (free text, no field) -> `Term(None, "hello")`; `hello world` -> `And(hello, world)`, as the
  Datadog docs say (each word on its own, in any order), not Vector's merging into one phrase.
  `"hello world"` (a phrase) -> `Term(None, "hello world")`. Backslash escapes any character; inside
  quotes `*` and `?` are literal. Curly quotes (U+201C, U+201D) act as plain double quotes.
- `@path:value` -> an attribute: `Field("path")`; the path is dotted (`@http.url_details.path`) and may
  hold escaped characters (`@user.first\\ name`). `key:value` without `@` -> `Field("key", tag=True)`.
- A `Vocabulary` says what bare words and bare keys mean in one explorer. The default one (Product
  Analytics, RUM) keeps the above. The Log Explorer's (`parse_search(query, logs_vocabulary)`): free
  text searches one field (`hello` -> `Text(message, "hello")`, `web*` -> `Text(message, "web*")`) while
  `*:hello` stays free text over every value; a bare key names a tag of the tag list (`env:prod` ->
  `Term(tags, "env:prod")`, `env:pr*` -> `Wildcard(tags, "env:pr*")`, `env:*` and `_exists_:env` ->
  `Wildcard(tags, "env:*")`), except reserved attribute names (`service:web` -> `Term(service, "web")`).
  Tags have no order: a comparison or range on a tag is a `SearchSyntaxError` (use `@key`).
- `*` and `?` outside quotes are wildcards -> `Wildcard(field, pattern)`; in the pattern a literal star,
  question mark or backslash is escaped as `\\*`, `\\?`, `\\\\`. A value without an unescaped wildcard is
  a `Term` (so `@a:va\\*lue` is `Term(a, "va*lue")`).
- `@a:*` -> `Exists(a)`; `_exists_:@a` / `_exists_:a` -> `Exists`; `_missing_:@a` -> `Not(Exists(a))`.
  `*`, `*:*`, `_default_:*` and the empty query -> `MatchAll`; `NOT *` and `-*` -> `MatchNone`.
  `_default_:x` and `*:x` are free text.
- `@a:>100`, `>=`, `<`, `<=` -> `Compare`; `[a TO b]` inclusive, `{a TO b}` exclusive (mixing allowed)
  -> `Range`, a bare `*` bound being unbounded (`None`). A bound or comparison value that is a number
  (sign, decimals, exponent) becomes a float, anything else (including a quoted bound) a str; a `*` that
  is not a whole bound is literal. A number may carry a duration unit `ns`, `us`, `ms`, `s`, `m`, `h`,
  `d` or `w`: the value is then converted to **nanoseconds**, the unit RUM stores durations in
  (`@view.loading_time:>3s` -> `Compare(view.loading_time, ">", 3e9)`). A comparison or range needs a
  field.
- `@a:(x OR y)`, `env:(prod test)`: the field applies to every value of the group; a field written
  inside the group (`@a:(x @b:y)`) takes precedence for its own clause.
- `-x` and `NOT x` negate a clause or a group (`- x` with a space too); `+x` marks it required.
  `AND`, `OR` and `NOT` are operators only in uppercase; `and`/`or`/`not` are ordinary words.

Boolean operators follow Lucene's classic QueryParser with default operator AND (Vector's parser for the
same syntax does too; the Datadog docs are silent). In one list of clauses, a clause introduced by `AND`
makes the previous clause required unless it is negated; a clause introduced by `OR` makes the previous
one optional unless it is negated; a clause is prohibited if negated, else required unless introduced by
`OR`. The list matches: every required clause, no prohibited clause, and, only when nothing is
required, at least one optional clause. So `a OR b` is `Or(a, b)`, `a b` is `And(a, b)`,
`a OR b AND c` is `And(b, c)` and `a OR b c` is just `c`; parentheses group as usual.

Decisions where the references are silent:
- The value must follow the colon immediately: `@a: x` is an error, not `@a:x`.
- Only the first unescaped colon separates field and value: `@url:http://x` is `Term(url, "http://x")`.
- Unescaped `* ? < > = ~` are not allowed in field names; neither are empty path segments (`@a..b`).
  An escaped dot is an ordinary dot: the event model does not tell `{"a.b": 1}` from `{"a": {"b": 1}}`.
- A word starting with `@` must be followed by `:` and a value; a phrase with no field must not be empty.
- Brackets and braces start a range only at the start of a value; elsewhere they are ordinary characters.
- At most one modifier per clause (`NOT -x` is an error); `NOT NOT` has no agreed meaning.
- Trivial simplification only: a single-operand And/Or is unwrapped, `MatchAll` is dropped from And
  (`MatchNone` absorbs it), `MatchNone` is dropped from Or (`MatchAll` absorbs it), `Not(MatchAll)` is
  `MatchNone` and vice versa. Groups stay nested: `a (b c)` is `And(a, And(b, c))`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from sextant.query.filters import (
    And,
    Bound,
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
    Text,
    Wildcard,
)

MAX_QUERY_LENGTH = 16 * 1024
"""Longest accepted query, in characters."""

MAX_NESTING_DEPTH = 100
"""Most levels of nested parentheses (groups and field groups alike); keeps recursion far from Python's
stack limit, for the parser and for every consumer that walks the resulting tree."""

# Durations are stored in nanoseconds (RUM's unit), so a unit suffix scales the number to ns.
DURATION_UNITS_NS: dict[str, float] = {
    "ns": 1.0,
    "us": 1e3,
    "ms": 1e6,
    "s": 1e9,
    "m": 60e9,
    "h": 3600e9,
    "d": 86400e9,
    "w": 604800e9,
}

_NUMBER = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(ns|us|ms|s|m|h|d|w)?")
_QUOTES = frozenset('"\u201c\u201d')
_FIELD_FORBIDDEN = frozenset("*?<>=~")
_COMPARISON_OPS: tuple[Literal[">=", "<=", ">", "<"], ...] = (">=", "<=", ">", "<")


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What bare words and bare `key:value` terms mean in one explorer."""

    # The field plain free text searches (`hello`); None: every value, like `*:hello`.
    free_text: Field | None = None
    # The list of `key:value` tags that bare keys search; None: a bare key names the attribute `key`.
    tags: Field | None = None
    # Bare keys that name attributes even where bare keys search tags (the logs' reserved attributes).
    reserved: frozenset[str] = frozenset()


DEFAULT_VOCABULARY = Vocabulary()


class SearchSyntaxError(ValueError):
    """A query that is not valid search syntax: `position` is the 0-based offset where `expected` was
    expected."""

    def __init__(self, position: int, expected: str) -> None:
        # Keep both in args so that the exception pickles and compares like a plain ValueError.
        super().__init__(position, expected)
        self.position = position
        self.expected = expected

    def __str__(self) -> str:
        return f"invalid search query at position {self.position}: expected {self.expected}"


# --- lexer -----------------------------------------------------------------------------------------------


class _Kind(Enum):
    LPAREN = "'('"
    RPAREN = "')'"
    MINUS = "'-'"
    PLUS = "'+'"
    NOT = "'NOT'"
    AND = "'AND'"
    OR = "'OR'"
    FIELD = "a field"  # text: the raw name before the colon (escapes kept)
    WORD = "a word"  # text: raw (escapes kept), so that escaped wildcards stay distinguishable
    PHRASE = "a phrase"  # text: decoded
    RANGE = "a range"
    END = "the end of the query"


@dataclass(frozen=True, slots=True)
class _RangeBound:
    text: str  # raw (escapes kept) unless quoted, then decoded
    quoted: bool
    pos: int


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _Kind
    pos: int
    text: str = ""
    low: _RangeBound | None = None
    high: _RangeBound | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True


_KEYWORDS = {"AND": _Kind.AND, "OR": _Kind.OR, "NOT": _Kind.NOT}
_SINGLE = {"(": _Kind.LPAREN, ")": _Kind.RPAREN, "-": _Kind.MINUS, "+": _Kind.PLUS}


class _Lexer:
    """Splits a query into tokens. It is context-sensitive in one place only: right after a field's colon
    it reads a value, in which `-`, `+`, keywords and further colons are ordinary characters."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.i = 0
        self.tokens: list[_Token] = []

    def run(self) -> list[_Token]:
        while True:
            self._skip_space()
            if self.i >= len(self.query):
                self.tokens.append(_Token(_Kind.END, self.i))
                return self.tokens
            self._token()

    def _skip_space(self) -> None:
        while self.i < len(self.query) and self.query[self.i].isspace():
            self.i += 1

    def _token(self) -> None:
        c = self.query[self.i]
        if c in _SINGLE:
            self.tokens.append(_Token(_SINGLE[c], self.i))
            self.i += 1
        elif c in _QUOTES:
            self._phrase()
        elif c in "[{":
            self._range()
        else:
            self._word()

    def _word(self) -> None:
        start = self.i
        raw = self._read_word(stop_at_colon=True)
        if self.i < len(self.query) and self.query[self.i] == ":":
            if not raw:
                raise SearchSyntaxError(start, "a field name before ':'")
            self.tokens.append(_Token(_Kind.FIELD, start, raw))
            self.i += 1
            self._value()
        else:
            self.tokens.append(_Token(_KEYWORDS.get(raw, _Kind.WORD), start, raw))

    def _value(self) -> None:
        """The value right after a field's colon: a group, a phrase, a range or a word."""
        if self.i >= len(self.query) or self.query[self.i].isspace() or self.query[self.i] == ")":
            raise SearchSyntaxError(self.i, "a value after ':'")
        c = self.query[self.i]
        if c == "(":
            self.tokens.append(_Token(_Kind.LPAREN, self.i))
            self.i += 1
        elif c in _QUOTES:
            self._phrase()
        elif c in "[{":
            self._range()
        else:
            start = self.i
            self.tokens.append(_Token(_Kind.WORD, start, self._read_word(stop_at_colon=False)))

    def _read_word(self, *, stop_at_colon: bool, stops: str = "()") -> str:
        """Raw characters up to whitespace, a quote or one of `stops` (and a colon if asked); a backslash
        takes the next character with it, whatever it is."""
        start = self.i
        q = self.query
        while self.i < len(q):
            c = q[self.i]
            if c.isspace() or c in _QUOTES or c in stops or (stop_at_colon and c == ":"):
                break
            if c == "\\":
                if self.i + 1 >= len(q):
                    raise SearchSyntaxError(self.i + 1, "a character after '\\'")
                self.i += 1
            self.i += 1
        return q[start : self.i]

    def _phrase(self) -> None:
        start = self.i
        self.tokens.append(_Token(_Kind.PHRASE, start, self._read_phrase()))

    def _read_phrase(self) -> str:
        start = self.i
        q = self.query
        self.i += 1
        out: list[str] = []
        while self.i < len(q):
            c = q[self.i]
            if c in _QUOTES:
                self.i += 1
                return "".join(out)
            if c == "\\" and self.i + 1 < len(q):
                self.i += 1
                c = q[self.i]
            out.append(c)
            self.i += 1
        raise SearchSyntaxError(len(q), f"a closing '\"' for the quote at position {start}")

    def _range(self) -> None:
        start = self.i
        low_inclusive = self.query[start] == "["
        self.i += 1
        low = self._range_bound("a range bound after '" + self.query[start] + "'")
        self._skip_space()
        if not self._at_to():
            raise SearchSyntaxError(self.i, f"'TO' in the range at position {start}")
        self.i += 2
        high = self._range_bound("a range bound after 'TO'")
        self._skip_space()
        if self.i >= len(self.query) or self.query[self.i] not in "]}":
            raise SearchSyntaxError(self.i, f"']' or '}}' to close the range at position {start}")
        high_inclusive = self.query[self.i] == "]"
        self.i += 1
        self.tokens.append(_Token(_Kind.RANGE, start, "", low, high, low_inclusive, high_inclusive))

    def _at_to(self) -> bool:
        """`TO` as a whole word (so that `[a TOP TO z]` is an error, not a bound `P`)."""
        after = self.i + 2
        follows = self.query[after] if after < len(self.query) else " "
        return self.query.startswith("TO", self.i) and (
            follows.isspace() or follows in _QUOTES or follows in "]}"
        )

    def _range_bound(self, expected: str) -> _RangeBound:
        self._skip_space()
        pos = self.i
        if pos < len(self.query) and self.query[pos] in _QUOTES:
            return _RangeBound(self._read_phrase(), True, pos)
        # Unlike ordinary words, a bound ends at the closing bracket and may contain parentheses.
        raw = self._read_word(stop_at_colon=False, stops="]}")
        if not raw:
            raise SearchSyntaxError(pos, expected)
        return _RangeBound(raw, False, pos)


def _decode(raw: str) -> list[tuple[str, bool]]:
    """Characters of a raw word, each with whether it was escaped. The lexer guarantees that a backslash
    is never the last character."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\":
            out.append((raw[i + 1], True))
            i += 2
        else:
            out.append((raw[i], False))
            i += 1
    return out


def _unescape(raw: str) -> str:
    return "".join(c for c, _ in _decode(raw))


# --- parser ----------------------------------------------------------------------------------------------


class _Occur(Enum):
    MUST = "must"
    SHOULD = "should"
    MUST_NOT = "must not"


@dataclass(slots=True)
class _Clause:
    occur: _Occur
    filter: Filter


class _Special(Enum):
    """Field names with a meaning of their own."""

    EXISTS = "_exists_"
    MISSING = "_missing_"
    DEFAULT = "_default_"


_SPECIAL_FIELDS = {"_exists_": _Special.EXISTS, "_missing_": _Special.MISSING, "_default_": _Special.DEFAULT}


class _Everywhere(Enum):
    """What `*:value` and `_default_:value` search: every value, whatever the vocabulary's free text."""

    EVERYWHERE = "everywhere"


# What a value applies to: a field, plain free text (None), or every value.
_Target = Field | None | _Everywhere
_CLAUSE_STARTS = frozenset({_Kind.LPAREN, _Kind.FIELD, _Kind.WORD, _Kind.PHRASE, _Kind.RANGE})


class _Parser:
    def __init__(self, tokens: list[_Token], vocabulary: Vocabulary) -> None:
        self.tokens = tokens
        self.k = 0
        self.vocabulary = vocabulary

    def peek(self) -> _Token:
        return self.tokens[self.k]

    def advance(self) -> _Token:
        tok = self.tokens[self.k]
        self.k += 1
        return tok

    def parse(self) -> Filter:
        if self.peek().kind is _Kind.END:
            return MatchAll()
        return self._query(None, 0)

    def _query(self, default: _Target, depth: int) -> Filter:
        """A list of clauses, up to a closing parenthesis or the end."""
        clauses: list[_Clause] = []
        conj: _Token | None = None
        while True:
            tok = self.peek()
            if tok.kind is _Kind.RPAREN and depth == 0:
                raise SearchSyntaxError(tok.pos, "the end of the query or a '(' before this ')'")
            if tok.kind in (_Kind.END, _Kind.RPAREN):
                if conj is not None:
                    raise SearchSyntaxError(tok.pos, f"a search term after {conj.kind.value}")
                if not clauses:
                    raise SearchSyntaxError(tok.pos, "a search term")
                return _combine(clauses)
            if tok.kind in (_Kind.AND, _Kind.OR):
                if conj is not None:
                    raise SearchSyntaxError(tok.pos, f"a search term after {conj.kind.value}")
                if not clauses:
                    raise SearchSyntaxError(tok.pos, f"a search term before {tok.kind.value}")
                conj = self.advance()
                continue
            negated = self._modifier()
            _add_clause(clauses, conj, negated, self._clause(default, depth))
            conj = None

    def _modifier(self) -> bool:
        """Consumes an optional `-`, `NOT` or `+`; true when the clause is negated."""
        tok = self.peek()
        if tok.kind not in (_Kind.MINUS, _Kind.NOT, _Kind.PLUS):
            return False
        self.advance()
        if self.peek().kind not in _CLAUSE_STARTS:
            raise SearchSyntaxError(self.peek().pos, f"a search term after {tok.kind.value}")
        return tok.kind is not _Kind.PLUS

    def _clause(self, default: _Target, depth: int) -> Filter:
        tok = self.advance()
        if tok.kind is _Kind.LPAREN:
            return self._group(tok, default, depth)
        if tok.kind is _Kind.FIELD:
            return self._field_clause(tok, depth)
        if tok.kind is _Kind.WORD and tok.text.startswith("@"):
            # Most likely a forgotten colon; a literal '@' can be escaped or quoted.
            raise SearchSyntaxError(tok.pos + len(tok.text), f"':' and a value after '{tok.text}'")
        return self._value(default, tok)

    def _group(self, open_tok: _Token, default: _Target, depth: int) -> Filter:
        if depth >= MAX_NESTING_DEPTH:
            raise SearchSyntaxError(open_tok.pos, f"at most {MAX_NESTING_DEPTH} levels of nested parentheses")
        inner = self._query(default, depth + 1)
        close = self.advance()
        if close.kind is not _Kind.RPAREN:
            raise SearchSyntaxError(close.pos, f"')' to close the '(' at position {open_tok.pos}")
        return inner

    def _field_clause(self, field_tok: _Token, depth: int) -> Filter:
        special = _SPECIAL_FIELDS.get(field_tok.text)
        value_tok = self.advance()  # the lexer guarantees a value right after the colon
        if special in (_Special.EXISTS, _Special.MISSING):
            exists = self._exists(_existence_field(field_tok, value_tok))
            return exists if special is _Special.EXISTS else Not(exists)
        target: _Target = (
            _Everywhere.EVERYWHERE
            if special is _Special.DEFAULT or field_tok.text == "*"
            else _field(field_tok)
        )
        if value_tok.kind is _Kind.LPAREN:
            return self._group(value_tok, target, depth)
        return self._value(target, value_tok)

    # --- the vocabulary: what bare words and bare keys resolve to ----------------------------------------

    def _value(self, target: _Target, tok: _Token) -> Filter:
        if target is None or target is _Everywhere.EVERYWHERE:
            found = _value(None, tok)
            text_field = self.vocabulary.free_text
            if target is _Everywhere.EVERYWHERE or text_field is None:
                return found
            if isinstance(found, Term):
                return Text(text_field, _literal_pattern(found.text))
            if isinstance(found, Wildcard):
                return Text(text_field, found.pattern)
            return found  # a bare `*`: every event
        tags = self._tag_list(target)
        if tags is None:
            return _value(self._attribute(target), tok)
        found = _value(target, tok)
        key = target.path
        if isinstance(found, Term):
            return Term(tags, f"{key}:{found.text}")
        if isinstance(found, Wildcard):
            return Wildcard(tags, f"{_literal_pattern(key)}:{found.pattern}")
        if isinstance(found, Exists):
            return Wildcard(tags, f"{_literal_pattern(key)}:*")
        raise SearchSyntaxError(
            tok.pos, f"an attribute (@{key}) for a comparison or range: tags have no order"
        )

    def _exists(self, field: Field) -> Filter:
        tags = self._tag_list(field)
        if tags is None:
            return Exists(self._attribute(field))
        return Wildcard(tags, f"{_literal_pattern(field.path)}:*")

    def _tag_list(self, field: Field) -> Field | None:
        """The list of tags a bare key searches, or None when it names an attribute."""
        tags = self.vocabulary.tags
        if tags is None or not field.tag or field.path in self.vocabulary.reserved:
            return None
        return tags

    def _attribute(self, field: Field) -> Field:
        # A reserved name written without `@` is the attribute itself.
        return Field(field.path) if field.tag and self.vocabulary.tags is not None else field


def _add_clause(clauses: list[_Clause], conj: _Token | None, negated: bool, f: Filter) -> None:
    """Lucene's classic rules (default operator AND) for the occur of each clause."""
    if clauses and conj is not None and clauses[-1].occur is not _Occur.MUST_NOT:
        # `AND` makes the previous clause required, `OR` makes it optional; a negation stays one.
        clauses[-1].occur = _Occur.MUST if conj.kind is _Kind.AND else _Occur.SHOULD
    if negated:
        occur = _Occur.MUST_NOT
    elif conj is not None and conj.kind is _Kind.OR:
        occur = _Occur.SHOULD
    else:
        occur = _Occur.MUST
    clauses.append(_Clause(occur, f))


def _combine(clauses: list[_Clause]) -> Filter:
    """Required clauses, the negation of prohibited ones and, when nothing is required, any optional one;
    kept in the order written, the optional ones gathered where the first of them stands."""
    has_must = any(c.occur is _Occur.MUST for c in clauses)
    shoulds = [c.filter for c in clauses if c.occur is _Occur.SHOULD]
    first_should = next((i for i, c in enumerate(clauses) if c.occur is _Occur.SHOULD), None)
    parts: list[Filter] = []
    for i, c in enumerate(clauses):
        if c.occur is _Occur.MUST:
            parts.append(c.filter)
        elif c.occur is _Occur.MUST_NOT:
            parts.append(_negate(c.filter))
        elif not has_must and i == first_should:
            parts.append(_or(shoulds))
    return _and(parts)


def _negate(f: Filter) -> Filter:
    if isinstance(f, MatchAll):
        return MatchNone()
    if isinstance(f, MatchNone):
        return MatchAll()
    return Not(f)


def _and(parts: list[Filter]) -> Filter:
    if any(isinstance(p, MatchNone) for p in parts):
        return MatchNone()
    kept = [p for p in parts if not isinstance(p, MatchAll)]
    if not kept:
        return MatchAll()
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def _or(parts: list[Filter]) -> Filter:
    if any(isinstance(p, MatchAll) for p in parts):
        return MatchAll()
    kept = [p for p in parts if not isinstance(p, MatchNone)]
    if not kept:
        return MatchNone()
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


# --- fields and values -----------------------------------------------------------------------------------


def _field(tok: _Token) -> Field:
    """`@a.b` is an attribute, anything else a tag key."""
    return _parse_field_name(tok.text, tok.pos)


def _parse_field_name(raw: str, pos: int) -> Field:
    attribute = raw.startswith("@")
    body = raw[1:] if attribute else raw
    body_pos = pos + 1 if attribute else pos
    if not body:
        raise SearchSyntaxError(body_pos, "an attribute name after '@'")
    offset = body_pos
    for c, escaped in _decode(body):
        if not escaped and c in _FIELD_FORBIDDEN:
            raise SearchSyntaxError(offset, f"a field name without '{c}' (escape it with '\\')")
        offset += 2 if escaped else 1
    path = _unescape(body)
    if "" in path.split("."):
        raise SearchSyntaxError(body_pos, "a field name without empty segments (like 'a..b' or 'a.')")
    return Field(path, tag=not attribute)


def _existence_field(field_tok: _Token, value_tok: _Token) -> Field:
    if value_tok.kind is not _Kind.WORD:
        raise SearchSyntaxError(value_tok.pos, f"a field name after '{field_tok.text}:'")
    return _parse_field_name(value_tok.text, value_tok.pos)


def _value(field: Field | None, tok: _Token) -> Filter:
    if tok.kind is _Kind.PHRASE:
        if field is None and not tok.text:
            raise SearchSyntaxError(tok.pos, "text between the quotes")
        return Term(field, tok.text)
    if tok.kind is _Kind.RANGE:
        return _range(field, tok)
    return _word(field, tok)


def _word(field: Field | None, tok: _Token) -> Filter:
    raw = tok.text
    op = next((op for op in _COMPARISON_OPS if raw.startswith(op)), None)
    if op is not None:
        return _comparison(field, tok, op)
    chars = _decode(raw)
    if chars == [("*", False)]:
        return MatchAll() if field is None else Exists(field)
    if any(c in "*?" and not escaped for c, escaped in chars):
        return Wildcard(field, _wildcard_pattern(chars))
    return Term(field, "".join(c for c, _ in chars))


def _literal_pattern(text: str) -> str:
    """`text` as a wildcard pattern matching exactly it."""
    return "".join("\\" + c if c in "*?\\" else c for c in text)


def _wildcard_pattern(chars: list[tuple[str, bool]]) -> str:
    # In a pattern an escaped star, question mark or backslash keeps its backslash; other escapes are plain.
    return "".join("\\" + c if escaped and c in "*?\\" else c for c, escaped in chars)


def _comparison(field: Field | None, tok: _Token, op: Literal[">=", "<=", ">", "<"]) -> Filter:
    operand = tok.text[len(op) :]
    if not operand:
        raise SearchSyntaxError(tok.pos + len(op), f"a number or text after '{op}'")
    if field is None:
        raise SearchSyntaxError(tok.pos, f"a field before '{op}', as in @duration:{op}100")
    return Compare(field, op, _bound(_unescape(operand), tok.pos + len(op)))


def _range(field: Field | None, tok: _Token) -> Filter:
    if field is None:
        raise SearchSyntaxError(tok.pos, "a field before the range, as in @duration:[1 TO 10]")
    assert tok.low is not None and tok.high is not None  # set for every RANGE token
    return Range(field, _range_bound(tok.low), _range_bound(tok.high), tok.low_inclusive, tok.high_inclusive)


def _range_bound(b: _RangeBound) -> Bound | None:
    if b.quoted:
        return b.text
    if b.text == "*":
        return None
    return _bound(_unescape(b.text), b.pos)


def _bound(text: str, pos: int) -> Bound:
    """A number (with an optional duration unit, converted to nanoseconds) as a float, else the text."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        return text
    number, unit = m.groups()
    value = float(number) * (DURATION_UNITS_NS[unit] if unit else 1.0)
    if not math.isfinite(value):
        raise SearchSyntaxError(pos, "a number of a representable size")
    return value


def parse_search(query: str, vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> Filter:
    """Parse a Datadog search query to a filter tree; raises `SearchSyntaxError` on invalid syntax."""
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchSyntaxError(MAX_QUERY_LENGTH, f"a query of at most {MAX_QUERY_LENGTH} characters")
    return _Parser(_Lexer(query).run(), vocabulary).parse()
