"""The vendor-neutral filter tree: what the search languages parse to and what storage compiles.

Matching rules (every backend implements these, and tests check them against an in-Python matcher):
- A field names a stored value: a standard event field or a flattened attribute path. A path that holds a
  list (it was reached through an array) matches when any element matches.
- `Term` matches a value equal to the text, case-sensitively; when the text is a number it also matches a
  numeric value equal to it, and `true`/`false` also match booleans.
- `Wildcard` patterns use `*` (any run of characters) and `?` (one character) over string values
  (and the text form of numbers and booleans).
- `Compare` and `Range` compare numerically when both the stored value and the bound are numbers, and as
  strings otherwise (`@b:[1 TO 100]` matches the string "10" but not "2"); a numeric bound's text is its
  digits when it is integral (`1.0` is "1"). Booleans and nulls match no comparison; a range
  with no bounds matches any number or string.
- `Exists` matches when the field is present (a stored `null` counts as present).
- `Not` matches whatever its operand does not, including events that lack the field.
- A `Term` or `Wildcard` without a field is free text: it matches when any string value of the event
  (standard fields and attributes) contains it as a whole word, case-insensitively; a word character is
  an ASCII letter, digit or `_`, and in free text `*` and `?` stand for word characters only.
- `Text` is free text within one field: the same rule, over that field's string values only (for a list,
  any string element).
- The text form of a stored number is its JSON text as the store returns it; tests keep to numbers whose
  text is the same everywhere (integers, and floats with a short decimal form).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class Field:
    """A stored value: `path` is a dotted attribute path (`customer.tier`) or a standard field path
    (`event.name`, `usr.id`, ...). `tag` is true for Datadog tag syntax (`env:prod`, no `@`): it reads
    the attribute of that name. Where events carry a list of tags (logs), the search syntax resolves such
    fields to that list before they get here (see `search_syntax.Vocabulary`)."""

    path: str
    tag: bool = False


@dataclass(frozen=True, slots=True)
class MatchAll:
    pass


@dataclass(frozen=True, slots=True)
class MatchNone:
    pass


@dataclass(frozen=True, slots=True)
class Term:
    field: Field | None
    text: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    field: Field | None
    # `*` and `?` are wildcards; a backslash makes the next character literal (`\*`, `\?`, `\\`).
    pattern: str


@dataclass(frozen=True, slots=True)
class Text:
    """Free text within one field (a log's message): `pattern` as whole words, case-insensitively."""

    field: Field
    # As in Wildcard: `*` and `?` are wildcards (of word characters); a backslash makes the next literal.
    pattern: str


@dataclass(frozen=True, slots=True)
class Exists:
    field: Field


Bound: TypeAlias = float | str


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: Literal["<", "<=", ">", ">="]
    value: Bound


@dataclass(frozen=True, slots=True)
class Range:
    field: Field
    low: Bound | None  # None: unbounded (`*`)
    high: Bound | None
    low_inclusive: bool
    high_inclusive: bool


@dataclass(frozen=True, slots=True)
class Not:
    operand: Filter


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Filter, ...]


Filter: TypeAlias = MatchAll | MatchNone | Term | Wildcard | Text | Exists | Compare | Range | Not | And | Or
