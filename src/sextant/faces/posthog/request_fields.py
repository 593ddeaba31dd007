"""Request fields validated as PostHog's Django REST framework serializers validate them, with their
messages and codes, so that a refusal reads the same as PostHog's.

A schema is a `Nested` of named fields, checked in the order they are declared; the first field at fault
is the refusal (drf-exceptions-hog reports the first error only), with the path to it. A field that is
absent takes its default, or is left out of the result when it has none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from sextant.faces.posthog.errors import validation_error

Path = tuple[str | int, ...]
_ABSENT = object()
_MAX_STRING = 1000
_DECIMAL_ZEROS = re.compile(r"\.0*\s*$")
DATETIME_FORMATS = "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]"


def fail(path: Path, code: str, detail: str) -> NoReturn:
    raise validation_error(path, code, detail)


class Field:
    def __init__(self, *, required: bool = True, default: Any = _ABSENT, allow_null: bool = False) -> None:
        self.required = required and default is _ABSENT
        self.default = default
        self.allow_null = allow_null

    def run(self, data: Any, path: Path) -> Any:
        """The validated value of `data` (the raw value, or _ABSENT)."""
        if data is _ABSENT:
            if self.required:
                fail(path, "required", "This field is required.")
            return self.default() if callable(self.default) else self.default
        if data is None:
            if not self.allow_null:
                fail(path, "null", "This field may not be null.")
            return None
        return self.convert(data, path)

    def convert(self, data: Any, path: Path) -> Any:
        raise NotImplementedError


class Char(Field):
    def __init__(self, *, max_length: int | None = None, allow_blank: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.max_length = max_length
        self.allow_blank = allow_blank

    def run(self, data: Any, path: Path) -> Any:
        if data is not _ABSENT and data is not None and (data == "" or str(data).strip() == ""):
            if not self.allow_blank:
                fail(path, "blank", "This field may not be blank.")
            return ""
        return super().run(data, path)

    def convert(self, data: Any, path: Path) -> str:
        if isinstance(data, bool) or not isinstance(data, str | int | float):
            fail(path, "invalid", "Not a valid string.")
        text = str(data).strip()
        if self.max_length is not None and len(text) > self.max_length:
            fail(path, "max_length", f"Ensure this field has no more than {self.max_length} characters.")
        if "\0" in text:
            fail(path, "null_characters_not_allowed", "Null characters are not allowed.")
        return text


class Choice(Field):
    def __init__(self, choices: Sequence[str], **options: Any) -> None:
        super().__init__(**options)
        self.choices = tuple(choices)

    def convert(self, data: Any, path: Path) -> str:
        text = _python_str(data)
        if text not in self.choices:
            fail(path, "invalid_choice", f'"{text}" is not a valid choice.')
        return text


def _python_str(data: Any) -> str:
    """`str()` of the value as Python (DRF) has it after JSON decoding."""
    if data is True or data is False:
        return "True" if data else "False"
    return str(data)


class _Number(Field):
    def __init__(
        self, *, min_value: float | None = None, max_value: float | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.min_value = min_value
        self.max_value = max_value

    def _bounded(self, value: Any, path: Path) -> Any:
        if self.min_value is not None and value < self.min_value:
            fail(path, "min_value", f"Ensure this value is greater than or equal to {self.min_value}.")
        if self.max_value is not None and value > self.max_value:
            fail(path, "max_value", f"Ensure this value is less than or equal to {self.max_value}.")
        return value


class Float(_Number):
    def convert(self, data: Any, path: Path) -> float:
        if isinstance(data, str) and len(data) > _MAX_STRING:
            fail(path, "max_string_length", "String value too large.")
        try:
            value = float(data)
        except (TypeError, ValueError):
            fail(path, "invalid", "A valid number is required.")
        return float(self._bounded(value, path))


class Integer(_Number):
    def convert(self, data: Any, path: Path) -> int:
        if isinstance(data, str) and len(data) > _MAX_STRING:
            fail(path, "max_string_length", "String value too large.")
        try:
            value = int(_DECIMAL_ZEROS.sub("", _python_str(data)))
        except (TypeError, ValueError):
            fail(path, "invalid", "A valid integer is required.")
        return int(self._bounded(value, path))


class DateTime(Field):
    """An ISO 8601 time; one without an offset is UTC. The result is an aware datetime in UTC."""

    def convert(self, data: Any, path: Path) -> dt.datetime:
        parsed = None
        if isinstance(data, str):
            try:
                parsed = dt.datetime.fromisoformat(data)
            except ValueError:
                parsed = None
        if parsed is None:
            fail(
                path,
                "invalid",
                f"Datetime has wrong format. Use one of these formats instead: {DATETIME_FORMATS}.",
            )
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            fail(path, "overflow", "Datetime value out of range.")


def _not_a_list(data: Any) -> bool:
    return isinstance(data, str | Mapping) or not isinstance(data, list)


class ListOf(Field):
    """A list whose items are each `child` (DRF's ListField)."""

    def __init__(self, child: Field, **options: Any) -> None:
        super().__init__(**options)
        self.child = child

    def convert(self, data: Any, path: Path) -> list[Any]:
        if _not_a_list(data):
            fail(path, "not_a_list", f'Expected a list of items but got type "{type(data).__name__}".')
        return [self.child.run(item, (*path, i)) for i, item in enumerate(data)]


class Nested(Field):
    """An object of named fields (a DRF serializer); `check` sees the validated fields and may refuse them
    as a whole (its message becomes the object's `non_field_errors`)."""

    def __init__(
        self,
        fields: Mapping[str, Field],
        check: Callable[[dict[str, Any]], str | None] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.fields = fields
        self.check = check

    def convert(self, data: Any, path: Path) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            fail(
                (*path, "non_field_errors"),
                "invalid",
                f"Invalid data. Expected a dictionary, but got {type(data).__name__}.",
            )
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            value = field.run(data.get(name, _ABSENT), (*path, name))
            if value is not _ABSENT:
                out[name] = value
        if self.check is not None:
            problem = self.check(out)
            if problem is not None:
                fail((*path, "non_field_errors"), "invalid", problem)
        return out

    def validate(self, data: Any) -> dict[str, Any]:
        """A whole request body (or query string) against this schema."""
        result: dict[str, Any] = self.convert(data, ())
        return result


class ManyNested(Field):
    """A list of objects (a DRF serializer with many=True), at most `max_length` of them."""

    def __init__(self, item: Nested, *, max_length: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.item = item
        self.max_length = max_length

    def convert(self, data: Any, path: Path) -> list[dict[str, Any]]:
        if _not_a_list(data):
            fail(
                (*path, "non_field_errors"),
                "not_a_list",
                f'Expected a list of items but got type "{type(data).__name__}".',
            )
        if self.max_length is not None and len(data) > self.max_length:
            fail(
                (*path, "non_field_errors"),
                "max_length",
                f"Ensure this field has no more than {self.max_length} elements.",
            )
        return [self.item.run(item, (*path, i)) for i, item in enumerate(data)]
