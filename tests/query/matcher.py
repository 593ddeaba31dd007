"""A plain-Python matcher for the filter IR: the test oracle that storage backends are compared against.

It follows the rules in the docstring of `sextant.query.filters` one by one, over an event shaped like a
stored one:

- standard fields as keys (`event.name`, `type`, `application.id`, `usr.id`, `account.id`,
  `session.id`), a str or None, None meaning absent;
- flattened attributes as keys (dotted path -> JSON scalar, or list of scalars for a path reached through
  an array); an attribute key that is present with the value None is a stored JSON null, which exists.

Where the rules leave a detail open, this file picks the simplest reading and says so:

- Text form of a stored value (for wildcards and string comparisons): a string is itself, a boolean is
  `true`/`false`, an integer its decimal digits, a float Python's shortest `repr` (`0.75`, `1.0`); a
  JSON null has no text and matches no value test.
- Text form of a numeric bound compared with a string: the integer digits when the float is integral
  (`1.0` -> `"1"`, so `@b:[1 TO 100]` matches "10" and not "2"), else `repr`.
- Booleans and nulls match no comparison or range; a range with no bounds matches any number or string.
- A word character is an ASCII letter, a digit or `_`. Free text matches when the text
  occurs in a string value, ignoring case, with no word character right before or right after it; in a
  free-text wildcard, `*` is any run of word characters and `?` one word character.
- Strings compare by code point (the order of their UTF-8 bytes).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

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
    Wildcard,
)

STANDARD_FIELDS = frozenset({"event.name", "type", "application.id", "usr.id", "account.id", "session.id"})

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def matches(f: Filter, event: dict[str, Any]) -> bool:
    """Whether `event` matches the filter `f`."""
    match f:
        case MatchAll():
            return True
        case MatchNone():
            return False
        case Not(operand):
            return not matches(operand, event)
        case And(operands):
            return all(matches(o, event) for o in operands)
        case Or(operands):
            return any(matches(o, event) for o in operands)
        case Exists(field):
            return _values(field, event) is not None
        case Term(None, text):
            return _free_text(event, _word_regex(_literal_regex(text)))
        case Wildcard(None, pattern):
            return _free_text(event, _word_regex(_pattern_regex(pattern, f"{_WORD}*", _WORD)))
        case Term(field, text) if field is not None:
            return any(_equals(v, text) for v in _values(field, event) or [])
        case Wildcard(field, pattern) if field is not None:
            regex = re.compile(_pattern_regex(pattern, ".*", "."), re.DOTALL)
            return any(t is not None and regex.fullmatch(t) for t in map(_text, _values(field, event) or []))
        case Compare(field, op, bound):
            return any(_compare(v, op, bound) for v in _values(field, event) or [])
        case Range(field, low, high, low_inclusive, high_inclusive):
            return any(
                (_is_number(v) or isinstance(v, str))
                and (low is None or _compare(v, ">=" if low_inclusive else ">", low))
                and (high is None or _compare(v, "<=" if high_inclusive else "<", high))
                for v in _values(field, event) or []
            )
    raise TypeError(f"not a filter: {f!r}")


def _values(field: Field, event: dict[str, Any]) -> list[Any] | None:
    """The stored values of a field (several for a list), or None when it is absent. Events carry no
    tags, so a tag field reads the attribute or standard field of the same name."""
    if field.path in STANDARD_FIELDS:
        value = event.get(field.path)
        return None if value is None else [value]
    if field.path not in event:
        return None
    value = event[field.path]
    return list(value) if isinstance(value, list) else [value]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    return v if isinstance(v, str) else None


def _number_text(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


def _equals(v: Any, text: str) -> bool:
    if isinstance(v, str):
        return v == text
    if isinstance(v, bool):
        return text == ("true" if v else "false")
    if _is_number(v):
        return _NUMBER.fullmatch(text) is not None and v == float(text)
    return False


def _compare(v: Any, op: str, bound: Bound) -> bool:
    if v is None or isinstance(v, bool):
        return False
    if _is_number(v) and isinstance(bound, float):
        return _OPS[op](v, bound)
    lhs = _text(v)
    rhs = _number_text(bound) if isinstance(bound, float) else bound
    return _OPS[op](lhs, rhs)


def _literal_regex(text: str) -> str:
    return re.escape(text)


def _pattern_regex(pattern: str, star: str, question: str) -> str:
    """A wildcard pattern as a regex: `*` and `?` are wildcards, a backslash makes the next char literal."""
    out: list[str] = []
    chars = iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif c == "*":
            out.append(star)
        elif c == "?":
            out.append(question)
        else:
            out.append(re.escape(c))
    return "".join(out)


_WORD = "[A-Za-z0-9_]"


def _word_regex(core: str) -> re.Pattern[str]:
    return re.compile(f"(?<!{_WORD}){core}(?!{_WORD})", re.IGNORECASE | re.DOTALL)


def _strings(event: dict[str, Any]) -> Iterator[str]:
    """Every string value of the event: standard fields and attributes, list elements included."""
    for value in event.values():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                yield v


def _free_text(event: dict[str, Any], regex: re.Pattern[str]) -> bool:
    return any(regex.search(s) for s in _strings(event))
