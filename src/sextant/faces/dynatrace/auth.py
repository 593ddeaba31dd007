"""Dynatrace API tokens: `Authorization: Api-Token <token>`, or the `api-token` query parameter.

Dynatrace answers 401 when no valid token is presented (missing, malformed, unknown, revoked) and 403
when a valid token lacks the scope the endpoint needs; both in its ErrorEnvelope.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.datastructures import Headers

from sextant.control.directory import Directory, Principal
from sextant.control.keys import KeyKind

SCHEME = "api-token"
# Dynatrace documents `api-token`; older clients send `Api-Token`.
QUERY_PARAMETERS = ("api-token", "Api-Token")
HOW_TO = "send Authorization: Api-Token <token>, or the api-token query parameter"


class TokenRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def presented_token(headers: Headers, query_string: bytes) -> str | None:
    """The token the request presents, header first; raises TokenRefused for an Authorization header of
    another scheme (Bearer, Basic: a Dynatrace token sent the wrong way is a 401, not a token)."""
    header = headers.get("authorization", "").strip()
    if header:
        scheme, _, token = header.partition(" ")
        if not token:
            # A bare token without a scheme, as Dynatrace's own Timeseries v1 curl example sends it; the
            # scheme alone is a token left out.
            return None if scheme.lower() == SCHEME else scheme
        if scheme.lower() != SCHEME:
            raise TokenRefused(
                401, f"Token Authentication failed: the Authorization scheme is {scheme!r}; {HOW_TO}"
            )
        return token.strip() or None
    if query_string:
        params = parse_qs(query_string.decode("latin-1"))
        for name in QUERY_PARAMETERS:
            values = params.get(name)
            if values and values[0]:
                return values[0]
    return None


def require_token(headers: Headers, query_string: bytes, directory: Directory, scope: str) -> Principal:
    """The organization of a valid Dynatrace API token holding `scope`."""
    raw = presented_token(headers, query_string)
    if raw is None:
        raise TokenRefused(401, f"Missing authorization parameter: {HOW_TO}")
    principal = directory.principal(raw)
    if principal is None:
        raise TokenRefused(401, "Token Authentication failed: the token is unknown or has been revoked")
    if principal.kind is not KeyKind.DYNATRACE_TOKEN:
        raise TokenRefused(
            401,
            f"Token Authentication failed: a {principal.kind.value} is not a Dynatrace API token",
        )
    if scope not in principal.scopes:
        raise TokenRefused(403, f"Token is missing required scope. Use one of: {scope}")
    return principal
