"""Datadog's two error bodies.

Intake endpoints (`/api/v2/prodlytics`) answer `{"errors":[{"status","title","detail"}]}`; the query
endpoints answer `APIErrorResponse`, `{"errors":["..."]}`. Clients parse both, so the shapes are exact.
"""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from sextant.edge.endpoints import json_response


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
