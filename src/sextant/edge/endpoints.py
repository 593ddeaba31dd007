"""The route registry: each face lists its endpoints once, with the types that document them.

The server builds its routes and its OpenAPI document from the same list, so every route is documented.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """`body` encoded as JSON, with `Content-Type: application/json` exactly (no charset: clients compare)."""
    return Response(msgspec.json.encode(body), status, headers=headers, media_type="application/json")


@dataclass(frozen=True)
class Reply:
    description: str
    schema: type | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Endpoint:
    """A route: `handler` works on framework requests; a hot path may give a bare ASGI `asgi` instead."""

    method: str
    path: str
    handler: Handler | None = None
    summary: str = ""
    tag: str = ""
    asgi: ASGIApp | None = None
    request: type | None = None
    responses: Mapping[int, Reply] = field(default_factory=dict)
    # Header names that authenticate this endpoint, for the OpenAPI security section.
    auth_headers: tuple[str, ...] = ()
