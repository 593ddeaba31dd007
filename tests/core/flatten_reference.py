"""The pure-Python flattening that sextant/core/_flatten.c replaced, kept as the oracle of its tests.

This is the code as it was in sextant.core.events: change it only together with the C version.
"""

from __future__ import annotations

from typing import Any

from sextant.core.events import STANDARD_PATHS, AttributeLimitError


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
