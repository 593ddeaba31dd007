"""The event model: standard fields kept as columns, every other attribute flattened to dotted paths.

An event's attributes are stored as one JSON object whose keys are dotted paths and whose values keep
their JSON types. A path reached through an array holds a list of every value found there, so that
`{"items": [{"sku": "a"}, {"sku": "b"}]}` becomes `{"items.sku": ["a", "b"]}` and a search on
`@items.sku:b` can match any element.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sextant.core._flatten import DepthError as _DepthError
from sextant.core._flatten import flatten as _flatten

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

    @classmethod
    def of_rows(
        cls,
        *,
        org_id: int,
        source: str,
        type: str,
        time_ms: list[int],
        name: list[str],
        application_id: list[str | None],
        usr_id: list[str | None],
        account_id: list[str | None],
        session_id: list[str | None],
        attributes: list[str],
        array_paths: set[str],
    ) -> EventBatch:
        """A batch of events of one organization, source and type, their attributes already encoded (JSON
        objects of flattened paths, as `add` writes them). It takes the lists over, without a copy."""
        batch = cls.__new__(cls)
        count = len(time_ms)
        batch.org_id = [org_id] * count
        batch.time_ms = time_ms
        batch.source = [source] * count
        batch.name = name
        batch.type = [type] * count
        batch.application_id = application_id
        batch.usr_id = usr_id
        batch.account_id = account_id
        batch.session_id = session_id
        batch.attributes = attributes
        batch.array_paths = array_paths
        return batch

    def extend(self, other: EventBatch) -> None:
        # Spelled out rather than looped over __slots__: the writer extends a group's batch with every
        # request's, and the loop's lookups cost more than the copying of one event.
        self.org_id += other.org_id
        self.time_ms += other.time_ms
        self.source += other.source
        self.name += other.name
        self.type += other.type
        self.application_id += other.application_id
        self.usr_id += other.usr_id
        self.account_id += other.account_id
        self.session_id += other.session_id
        self.attributes += other.attributes
        if other.array_paths:
            self.array_paths |= other.array_paths


def flatten_attributes(
    document: dict[str, Any], *, max_depth: int, skip: frozenset[str] = STANDARD_PATHS
) -> dict[str, Any]:
    """Flatten a JSON object to {dotted path: value}; arrays become lists of every value under the path.

    Nested objects join their keys with "." (a path spelled twice, as "a.b" and {"a": {"b": ...}}, keeps
    both values in a list); a path reached through an array holds a list. A scalar at a path in `skip` is
    left out, unless it is an array element. The top object is one level, and each nested object or array
    another: past `max_depth`, AttributeLimitError. The work is done in C (sextant/core/_flatten.c), as it
    runs for every event.
    """
    try:
        return _flatten(document, max_depth, skip)
    except _DepthError:
        pass
    # Raised outside the except block, so that it does not chain the native error as its context.
    raise AttributeLimitError(f"attributes are nested deeper than {max_depth} levels")
