"""Dynatrace's error body, `ErrorEnvelope`: `{"error": {"code", "message", "constraintViolations"}}`.

Every Dynatrace API answers its refusals this way (the metrics ingest too, for everything but invalid
lines, which get its `ValidationResponse`). `code` repeats the HTTP status; `constraintViolations` names
the parameters at fault and is left out when there are none, as Dynatrace leaves it out of its 401s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
from starlette.responses import Response

from sextant.edge.endpoints import json_response

ParameterLocation = Literal["HEADER", "PATH", "PAYLOAD_BODY", "QUERY"]


class ConstraintViolation(msgspec.Struct, omit_defaults=True):
    """One parameter that is not acceptable, and why."""

    message: str
    path: str | None = None
    parameterLocation: ParameterLocation | None = None
    location: str | None = None


class Error(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    constraintViolations: list[ConstraintViolation] = msgspec.field(default_factory=list)


class ErrorEnvelope(msgspec.Struct):
    """Error response of the Dynatrace APIs."""

    error: Error


def error_response(
    status: int,
    message: str,
    violations: Sequence[ConstraintViolation] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The ErrorEnvelope for `status` (its signature also fits `guarded`'s `on_error`)."""
    return json_response(ErrorEnvelope(Error(status, message, list(violations))), status, headers)
