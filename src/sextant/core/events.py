"""The event model: standard fields kept as columns, every other attribute flattened to dotted paths.

An event's attributes are stored as one JSON object whose keys are dotted paths and whose values keep
their JSON types. A path reached through an array holds a list of every value found there, so that
`{"items": [{"sku": "a"}, {"sku": "b"}]}` becomes `{"items.sku": ["a", "b"]}` and a search on
`@items.sku:b` can match any element.
"""

from __future__ import annotations

from typing import Any

import msgspec

# Paths the store keeps as typed columns rather than inside the attribute object.
STANDARD_PATHS: frozenset[str] = frozenset(
    {"application.id", "event.name", "type", "usr.id", "account.id", "session.id"}
)

_encode = msgspec.json.Encoder().encode


class AttributeLimitError(ValueError):
    """An attribute object the store cannot keep (too deep)."""


class EventBatch:
    """Events in columns, as the writer commits them: one list per stored column."""

    __slots__ = (
        "account_id",
        "application_id",
        "array_paths",
        "attributes",
        "name",
        "org_id",
        "session_id",
        "source",
        "time_ms",
        "type",
        "usr_id",
    )

    def __init__(self) -> None:
        self.org_id: list[int] = []
        self.time_ms: list[int] = []
        self.source: list[str] = []
        self.name: list[str] = []
        self.type: list[str] = []
        self.application_id: list[str | None] = []
        self.usr_id: list[str | None] = []
        self.account_id: list[str | None] = []
        self.session_id: list[str | None] = []
        self.attributes: list[str] = []
        # Attribute paths holding a list in some event of the batch. The store remembers them, so that
        # queries on the (many) paths that never held one can skip the array handling.
        self.array_paths: set[str] = set()

    def __len__(self) -> int:
        return len(self.time_ms)

    def add(
        self,
        *,
        org_id: int,
        time_ms: int,
        source: str,
        name: str,
        type: str,
        application_id: str | None,
        usr_id: str | None,
        account_id: str | None,
        session_id: str | None,
        attributes: dict[str, Any],
    ) -> None:
        self.org_id.append(org_id)
        self.time_ms.append(time_ms)
        self.source.append(source)
        self.name.append(name)
        self.type.append(type)
        self.application_id.append(application_id)
        self.usr_id.append(usr_id)
        self.account_id.append(account_id)
        self.session_id.append(session_id)
        self.attributes.append(_encode(attributes).decode())
        for path, value in attributes.items():
            if value.__class__ is list:
                self.array_paths.add(path)

    def extend(self, other: EventBatch) -> None:
        for column in self.__slots__:
            if column == "array_paths":
                self.array_paths |= other.array_paths
            else:
                getattr(self, column).extend(getattr(other, column))


def flatten_attributes(
    document: dict[str, Any], *, max_depth: int, skip: frozenset[str] = STANDARD_PATHS
) -> dict[str, Any]:
    """Flatten a JSON object to {dotted path: value}; arrays become lists of every value under the path."""
    out: dict[str, Any] = {}
    _flatten_object(document, "", out, 1, max_depth, skip)
    return out


def _flatten_object(
    obj: dict[str, Any],
    prefix: str,
    out: dict[str, Any],
    depth: int,
    max_depth: int,
    skip: frozenset[str],
    in_array: bool = False,
) -> None:
    if depth > max_depth:
        raise AttributeLimitError(f"attributes are nested deeper than {max_depth} levels")
    for key, value in obj.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten_object(value, path, out, depth + 1, max_depth, skip, in_array)
        elif isinstance(value, list):
            _flatten_array(value, path, out, depth + 1, max_depth, skip)
        elif path not in skip:
            _put(out, path, value, from_array=in_array)


def _flatten_array(
    items: list[Any], path: str, out: dict[str, Any], depth: int, max_depth: int, skip: frozenset[str]
) -> None:
    if depth > max_depth:
        raise AttributeLimitError(f"attributes are nested deeper than {max_depth} levels")
    if not items and path not in out:
        out[path] = []
    for item in items:
        if isinstance(item, dict):
            # Every path below an array element is reached through the array: it holds a list.
            _flatten_object(item, path, out, depth + 1, max_depth, skip, in_array=True)
        elif isinstance(item, list):
            _flatten_array(item, path, out, depth + 1, max_depth, skip)
        else:
            _put(out, path, item, from_array=True)


def _put(out: dict[str, Any], path: str, value: Any, *, from_array: bool) -> None:
    # A path seen twice (through an array, or spelled both as "a.b" and {"a": {"b": ...}}) keeps every value.
    if path in out:
        existing = out[path]
        if isinstance(existing, list):
            existing.append(value)
        else:
            out[path] = [existing, value]
    else:
        out[path] = [value] if from_array else value
