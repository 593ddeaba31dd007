"""Errors a user can act on when a function of a formula is called the wrong way."""

from __future__ import annotations

from sextant.series.frame import SeriesFrame


class FunctionArgumentError(ValueError):
    """A function called with an argument it cannot take: which function, which argument, what was given
    and what is allowed. The message is meant for the user as is (the faces answer it with a 400)."""

    def __init__(
        self,
        function: str,
        message: str,
        *,
        argument: str | None = None,
        given: object = None,
        allowed: str | None = None,
    ) -> None:
        super().__init__(self._text(function, message))
        self.function = function
        self.argument = argument
        self.given = given
        self.allowed = allowed

    @staticmethod
    def _text(function: str, message: str) -> str:
        return f"{function}(): {message}"


class UnknownFunctionError(FunctionArgumentError):
    """A name that is not in the function catalog."""

    @staticmethod
    def _text(function: str, message: str) -> str:
        return f"unknown function '{function}'{message}"


class InsufficientHistoryError(FunctionArgumentError):
    """A model that needs more data than the query covers (a seasonal model over less than two seasons)."""


def describe(value: object) -> str:
    """How a given argument is shown back to the user, in the formula's own spelling."""
    if isinstance(value, SeriesFrame):
        return "a query"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
