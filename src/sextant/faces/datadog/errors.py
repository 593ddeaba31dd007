"""Datadog's two error bodies.

Intake endpoints (`/api/v2/prodlytics`) answer `{"errors":[{"status","title","detail"}]}`; the query
endpoints answer `APIErrorResponse`, `{"errors":["..."]}`. Clients parse both, so the shapes are exact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from sextant.edge.endpoints import Handler, json_response
from sextant.edge.requests import request_id

log = logging.getLogger("sextant.datadog")


class IntakeError(msgspec.Struct, omit_defaults=True):
    status: str
    title: str
    detail: str


class IntakeErrors(msgspec.Struct):
    """Error response of the intake endpoints."""

    errors: list[IntakeError]


class APIErrorResponse(msgspec.Struct):
    """Error response of the query endpoints."""

    errors: list[str]


# Titles as Datadog writes them; Python's phrases vary by version (413 became "Content Too Large").
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Payload Too Large",
    404: "Not Found",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def intake_error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = IntakeErrors([IntakeError(status=str(status), title=TITLES[status], detail=detail)])
    return json_response(body, status, headers)


def api_error(status: int, *messages: str, headers: dict[str, str] | None = None) -> Response:
    body = APIErrorResponse(list(messages) or [TITLES[status]])
    return json_response(body, status, headers)


def guarded(handler: Handler, on_error: Callable[[int, str], Response]) -> Handler:
    """Answer unexpected failures in the face's own 500 format, logged with the request id."""

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
