"""Datadog credentials: `DD-API-KEY` on every call; query calls add `DD-APPLICATION-KEY` or a Bearer token."""

from __future__ import annotations

from starlette.requests import Request

from sextant.control.directory import Directory, Principal
from sextant.control.keys import KeyKind

API_KEY_HEADER = "dd-api-key"


class AuthFailure(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def require_api_key(request: Request, directory: Directory, scope: str) -> Principal:
    """The organization of a valid Datadog API key holding `scope`; 401 when absent, 403 when not valid."""
    raw = request.headers.get(API_KEY_HEADER)
    if not raw:
        raise AuthFailure(401, "API key is missing: send your Datadog API key in the DD-API-KEY header")
    principal = directory.principal(raw)
    if principal is None:
        raise AuthFailure(403, "API key is not valid: it is unknown or has been revoked")
    if principal.kind is not KeyKind.DD_API_KEY:
        raise AuthFailure(
            403, f"API key is not valid: a {principal.kind.value} cannot be used as a Datadog API key"
        )
    if scope not in principal.scopes:
        raise AuthFailure(403, f"API key is not valid: it lacks the {scope} scope")
    return principal
