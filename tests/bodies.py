"""Request bodies the end-to-end tests send."""

from __future__ import annotations

from typing import Any


def event(app_id: str, **extra: Any) -> dict[str, Any]:
    """A valid server-side event for `POST /api/v2/prodlytics`, with `extra` fields added or replaced."""
    body: dict[str, Any] = {
        "application": {"id": app_id},
        "event": {"name": "payment.processed"},
        "type": "server",
        "usr": {"id": "user-1"},
    }
    body.update(extra)
    return body
