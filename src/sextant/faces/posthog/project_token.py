"""PostHog project tokens (`phc_...`), as PostHog's capture endpoints take them.

The token comes from `Authorization: Bearer <token>`, or, without that header, from the `token` query
parameter (a present but empty header does not fall back to the query). PostHog answers 401 both when
no token is given (`No token provided`) and when the token cannot be a project token; here a token
that is unknown, revoked, of another kind or without the `ingest` scope is refused the same way, rather
than accepted and dropped later as PostHog does with well-formed unknown tokens.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers

from sextant.control.directory import Directory, Principal
from sextant.control.keys import KeyKind

NO_TOKEN = "No token provided"
INGEST_SCOPE = "ingest"
_HINT = "Use your project API key, which you can find in your PostHog project settings."


class TokenRefused(Exception):
    """No valid project token; `detail` is PostHog's message, `status` always 401."""

    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def presented_token(headers: Headers, query: Mapping[str, str]) -> str:
    """The token the request carries, or ''."""
    header = headers.get("authorization")
    if header is None:
        return query.get("token", "").strip()
    scheme, _, token = header.strip().partition(" ")
    # PostHog takes whatever follows "Bearer "; a header without a scheme is the token itself.
    return token.strip() if scheme.lower() == "bearer" else header.strip()


def require_project_token(headers: Headers, query: Mapping[str, str], directory: Directory) -> Principal:
    """The project (organization) whose active project token the request carries; TokenRefused if none."""
    token = presented_token(headers, query)
    if not token:
        raise TokenRefused(NO_TOKEN)
    principal = directory.principal(token)
    if principal is None:
        raise TokenRefused(f"Invalid project API key (unknown or revoked). {_HINT}")
    if principal.kind is not KeyKind.POSTHOG_PROJECT_TOKEN:
        kind = principal.kind.value
        raise TokenRefused(f"Invalid project API key (a {kind} is not a project token). {_HINT}")
    if INGEST_SCOPE not in principal.scopes:
        raise TokenRefused(f"Invalid project API key (it lacks the {INGEST_SCOPE} scope). {_HINT}")
    return principal
