"""PostHog's API error body (drf-exceptions-hog): `{"type", "code", "detail", "attr"}`.

`type` is `authentication_error` (401, 403), `invalid_request` (404, parse errors, unsupported media),
`validation_error` (a field of the request) or `server_error`; `code` is Django REST framework's
(`invalid` written `invalid_input`); `attr` is the path of the field at fault, its parts joined by `__`
(`query__metricName`, `query__clauses__0__name`), null for errors of no one field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
from starlette.responses import Response

from sextant.edge.endpoints import json_response


class ErrorBody(msgspec.Struct):
    """Error response of the PostHog APIs."""

    type: str
    code: str
    detail: str
    attr: str | None


class PostHogError(Exception):
    """A refusal, answered with its status and PostHog's error body."""

    def __init__(
        self,
        status: int,
        type: str,
        code: str,
        detail: str,
        attr: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.body = ErrorBody(type, code, detail, attr)
        self.headers = headers

    def response(self) -> Response:
        return json_response(self.body, self.status, self.headers)


def attr_path(path: Sequence[str | int]) -> str | None:
    """A field path as drf-exceptions-hog writes it; a bare `non_field_errors` is no attribute."""
    joined = "__".join(str(part) for part in path)
    return None if joined in ("", "non_field_errors") else joined


def validation_error(path: Sequence[str | int], code: str, detail: str) -> PostHogError:
    return PostHogError(
        400, "validation_error", "invalid_input" if code == "invalid" else code, detail, attr_path(path)
    )


def parse_error(detail: str) -> PostHogError:
    """What PostHog answers for a request it cannot run (its views' ParseError)."""
    return PostHogError(400, "invalid_request", "parse_error", detail)


def not_found(detail: str = "Project not found.") -> PostHogError:
    return PostHogError(404, "invalid_request", "not_found", detail)


def method_not_allowed(method: str, allow: str) -> Response:
    """A method the route does not take, as Django REST framework answers it."""
    refusal = PostHogError(
        405,
        "invalid_request",
        "method_not_allowed",
        f'Method "{method}" not allowed.',
        headers={"Allow": allow},
    )
    return refusal.response()


def server_error(status: int, detail: str) -> Response:
    """An unexpected failure (the signature of `guarded`'s `on_error`)."""
    return json_response(ErrorBody("server_error", "error", detail, None), status)
