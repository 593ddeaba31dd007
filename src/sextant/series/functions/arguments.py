"""Argument specs of the catalog's functions, and checking what a formula passes against them.

A formula passes numbers, quoted strings (`'mean'`), bare words (`.fill(linear)`), query results and named
arguments (`direction='above'`). Each parameter says which of these it takes and which values are allowed;
a value that does not fit raises `FunctionArgumentError` naming the function, the argument (by position
and name), what was given and what is allowed. String choices match case-insensitively and come back in
the catalog's spelling (`'dbscan'` is `'DBSCAN'`), so that implementations compare exact strings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sextant.series.frame import SeriesFrame
from sextant.series.functions.errors import FunctionArgumentError, describe

ParamType = Literal["series", "series_or_number", "number", "integer", "string", "boolean"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class DeferredSeries:
    """Stands for a query argument whose result is not known yet, so that an evaluator can bind a call
    while planning (to learn how much history it needs, or which window a timeshift reads) before any
    query has run."""

    def __repr__(self) -> str:
        return "DEFERRED"


DEFERRED = DeferredSeries()

_TYPE_TEXT: dict[ParamType, str] = {
    "series": "a query",
    "series_or_number": "a query or a number",
    "number": "a number",
    "integer": "a whole number",
    "string": "a string",
    "boolean": "true or false",
}


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    default: Any = REQUIRED
    # Strings: the allowed values. Numbers: a fixed set of allowed values, when only those make sense.
    choices: tuple[str | int | float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    # A further parse of the value (a shift like '-1mo', a time zone); raises ValueError with what is
    # allowed, or returns the parsed value.
    parse: Callable[[Any], Any] | None = None
    # What is allowed, in words, when `parse` decides it.
    allowed_text: str = ""
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def allowed(self) -> str:
        if self.allowed_text:
            return self.allowed_text
        if self.choices:
            return "one of " + ", ".join(describe(c) for c in self.choices)
        text = _TYPE_TEXT[self.type]
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'above' if self.exclusive_minimum else 'at least'} {describe(self.minimum)}")
        if self.maximum is not None:
            bounds.append(f"at most {describe(self.maximum)}")
        return text + (" " + " and ".join(bounds) if bounds else "")

    def check(self, function: str, where: str, value: Any) -> Any:
        """The value as the implementation takes it, or `FunctionArgumentError`."""

        def refuse() -> FunctionArgumentError:
            return FunctionArgumentError(
                function,
                f"{where} must be {self.allowed()}; got {describe(value)}",
                argument=self.name,
                given=value,
                allowed=self.allowed(),
            )

        checked = self._typed(value, refuse)
        if self.parse is not None:
            try:
                return self.parse(checked)
            except ValueError:
                raise refuse() from None
        return checked

    def _typed(self, value: Any, refuse: Callable[[], FunctionArgumentError]) -> Any:
        if self.type == "series":
            if isinstance(value, SeriesFrame | DeferredSeries):
                return value
            raise refuse()
        if self.type == "series_or_number":
            if isinstance(value, SeriesFrame | DeferredSeries):
                return value
            return self._number(value, refuse)
        if self.type in ("number", "integer"):
            return self._number(value, refuse)
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise refuse()
        if not isinstance(value, str):
            raise refuse()
        if self.choices:
            for choice in self.choices:
                if isinstance(choice, str) and choice.lower() == value.lower():
                    return choice
            raise refuse()
        return value

    def _number(self, value: Any, refuse: Callable[[], FunctionArgumentError]) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise refuse()
        number: float | int = value
        if self.type == "integer":
            if not float(value).is_integer():
                raise refuse()
            number = int(value)
        if self.choices and number not in self.choices:
            raise refuse()
        if self.minimum is not None and (
            number < self.minimum or (self.exclusive_minimum and number == self.minimum)
        ):
            raise refuse()
        if self.maximum is not None and number > self.maximum:
            raise refuse()
        return number


def ordinal(position: int) -> str:
    """1 → '1st', 2 → '2nd' … for messages about positional arguments."""
    suffix = "th" if 10 <= position % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(position % 10, "th")
    return f"{position}{suffix}"
