"""Unexpected failures of a handler, answered in its face's own 500 format and logged with the request id."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from sextant.edge.endpoints import Endpoint, Handler, Reply
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


@dataclass(frozen=True)
class GuardedRoutes:
    """The endpoints of one face: one tag, one way to authenticate, one error format (also for 500s), and
    the error replies every one of them documents."""

    tag: str
    auth_headers: tuple[str, ...]
    on_error: Callable[[int, str], Response]
    errors: Mapping[int, Reply] = field(default_factory=dict)

    def endpoint(
        self,
        method: str,
        path: str,
        handler: Handler,
        summary: str,
        responses: Mapping[int, Reply],
        request: type | None = None,
    ) -> Endpoint:
        return Endpoint(
            method,
            path,
            guarded(handler, self.on_error),
            summary,
            self.tag,
            request=request,
            responses={**responses, **self.errors},
            auth_headers=self.auth_headers,
        )
