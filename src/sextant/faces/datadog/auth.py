"""Datadog credentials: `DD-API-KEY` on every call; query calls add `DD-APPLICATION-KEY` or a Bearer token."""

from __future__ import annotations

from starlette.datastructures import Headers

from sextant.control.directory import Directory, Principal
from sextant.control.keys import KeyKind

API_KEY_HEADER = "dd-api-key"
APP_KEY_HEADER = "dd-application-key"


class AuthFailure(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def require_api_key(headers: Headers, directory: Directory, scope: str) -> Principal:
    """The organization of a valid Datadog API key holding `scope`; 401 when absent, 403 when not valid."""
    return check_api_key(headers.get(API_KEY_HEADER), directory, scope)


def check_api_key(raw: str | None, directory: Directory, scope: str) -> Principal:
    """`require_api_key` for the value of a DD-API-KEY header read by the caller (None when absent)."""
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


def _bearer(headers: Headers) -> str | None:
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def require_app_key(headers: Headers, directory: Directory, scope: str) -> Principal:
    """Query calls: `DD-API-KEY` + `DD-APPLICATION-KEY` of one organization, or `Authorization: Bearer` with
    an application key. 401 when credentials are absent, 403 when they are not valid."""
    bearer = _bearer(headers)
    raw_app = bearer or headers.get(APP_KEY_HEADER)
    raw_api = headers.get(API_KEY_HEADER)
    if bearer is None and (not raw_api or not raw_app):
        missing = "DD-API-KEY" if not raw_api else "DD-APPLICATION-KEY"
        raise AuthFailure(
            401,
            f"{missing} header is missing: send DD-API-KEY and DD-APPLICATION-KEY, or Authorization: Bearer",
        )
    assert raw_app is not None
    app = directory.principal(raw_app)
    if app is None or app.kind is not KeyKind.DD_APP_KEY:
        raise AuthFailure(403, "Forbidden: the application key is not valid")
    if scope not in app.scopes:
        raise AuthFailure(403, f"Forbidden: the application key lacks the {scope} scope")
    if raw_api:
        api = directory.principal(raw_api)
        if api is None or api.kind is not KeyKind.DD_API_KEY:
            raise AuthFailure(403, "Forbidden: the API key is not valid")
        if api.org_id != app.org_id:
            raise AuthFailure(
                403, "Forbidden: the API key and the application key belong to different organizations"
            )
    return app
