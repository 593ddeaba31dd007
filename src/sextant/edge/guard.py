"""Unexpected failures of a handler, answered in its face's own 500 format and logged with the request id."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from sextant.edge.endpoints import Handler
from sextant.edge.requests import request_id

log = logging.getLogger("sextant.http")


def guarded(handler: Handler, on_error: Callable[[int, str], Response]) -> Handler:
    """`handler`, whose unexpected exceptions become `on_error(500, detail)`, logged with the request id."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception:
            rid = request_id(request.scope)
            log.exception(
                "unexpected failure serving %s %s (request id %s)", request.method, request.url.path, rid
            )
            return on_error(500, f"Internal Server Error (request id {rid})")

    return run
