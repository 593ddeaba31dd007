"""PostHog personal API keys (`phx_...`), as PostHog's private API takes them, and their scopes.

The key is looked for, in this order, in `Authorization: Bearer <key>`, the body's `personal_api_key`
and the `personal_api_key` query parameter; the first one found is the one tried. No key is a 401
`not_authenticated`, a key that is not an active personal key of some organization a 401
`authentication_failed` naming where it was found, and a key without the scope an endpoint needs a 403.
A key holds a read scope when it holds the scope itself, its `:write` scope or `*` (a key without any
scope is a legacy key of PostHog's, which passes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers

from sextant.control.directory import Directory, Principal
from sextant.control.keys import KeyKind
from sextant.faces.posthog.errors import PostHogError

FIELD = "personal_api_key"
_BEARER = re.compile(r"^Bearer\s+(\S.+)$", re.DOTALL)
# DRF answers 401 (not 403) because the authenticator names a scheme for this header.
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def presented_key(
    headers: Headers, body: Mapping[str, Any] | None, query: Mapping[str, str]
) -> tuple[str, str] | None:
    """The key the request carries and where it was found, or None."""
    header = headers.get("authorization")
    if header is not None:
        match = _BEARER.match(header)
        if match:
            return match.group(1).strip(), "Authorization header"
    if body and FIELD in body:
        return str(body[FIELD]), "body"
    if FIELD in query:
        return query[FIELD], "query string"
    return None


def require_personal_key(
    headers: Headers,
    body: Mapping[str, Any] | None,
    query: Mapping[str, str],
    directory: Directory,
    scope: str,
) -> Principal:
    """The organization of the active personal key the request carries, if it holds `scope`."""
    found = presented_key(headers, body, query)
    if found is None:
        raise PostHogError(
            401,
            "authentication_error",
            "not_authenticated",
            "Authentication credentials were not provided.",
            headers=_CHALLENGE,
        )
    key, source = found
    principal = directory.principal(key)
    if principal is None or principal.kind is not KeyKind.POSTHOG_PERSONAL_KEY:
        raise PostHogError(
            401,
            "authentication_error",
            "authentication_failed",
            f"Personal API key found in request {source} is invalid.",
            headers=_CHALLENGE,
        )
    if not holds_scope(principal.scopes, scope):
        raise PostHogError(
            403, "authentication_error", "permission_denied", f"API key missing required scope '{scope}'"
        )
    return principal


def holds_scope(scopes: frozenset[str], scope: str) -> bool:
    if not scopes or "*" in scopes or scope in scopes:
        return True
    resource, _, action = scope.partition(":")
    return action == "read" and f"{resource}:write" in scopes
