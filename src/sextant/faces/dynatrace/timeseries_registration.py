"""PUT /api/v1/timeseries/{timeseriesIdentifier}: a custom metric's registration, checked as Dynatrace
documents it.

The id starts with `custom:`; then letters and digits, sections joined by periods, hyphens or commas, no
section starting with a digit ("a number cannot follow a punctuation mark"); at most 200 characters,
the store's limit for a metric name (Dynatrace allows 256). Dimension keys are letters, digits, periods,
hyphens and underscores, at most 128 characters; `CUSTOM_DEVICE` is added to them. A unit Dynatrace
does not know is registered as Count, with a warning, as Dynatrace assigns Count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from sextant.control.custom_timeseries import MAX_DISPLAY_NAME_CHARS
from sextant.core.metrics import MAX_METRIC_NAME_CHARS
from sextant.faces.dynatrace.errors import ConstraintViolation
from sextant.faces.dynatrace.timeseries_messages import TimeseriesRegistrationMessage
from sextant.faces.dynatrace.timeseries_parameters import InvalidParameters
from sextant.faces.dynatrace.units import COUNT, known_unit

CUSTOM_PREFIX = "custom:"
_ID = re.compile(r"custom:[A-Za-z][A-Za-z0-9]*(?:[.,-]+[A-Za-z][A-Za-z0-9]*)*")
_DIMENSION = re.compile(r"[A-Za-z0-9._-]+")
MAX_DIMENSION_CHARS = 128
CUSTOM_DEVICE = "CUSTOM_DEVICE"


@dataclass(frozen=True)
class Registration:
    """What to store; None keeps a registered field as it is."""

    display_name: str | None
    unit: str | None
    dimensions: tuple[str, ...] | None
    types: tuple[str, ...] | None
    warnings: tuple[str, ...]


def check_id(timeseries_id: str) -> ConstraintViolation | None:
    if not timeseries_id.startswith(CUSTOM_PREFIX):
        return ConstraintViolation(
            f"a custom timeseries id starts with {CUSTOM_PREFIX!r}: register it as "
            f"'{CUSTOM_PREFIX}{timeseries_id}' for example",
            "timeseriesIdentifier",
            "PATH",
        )
    if len(timeseries_id) > MAX_METRIC_NAME_CHARS:
        return ConstraintViolation(
            f"is {len(timeseries_id)} characters long; at most {MAX_METRIC_NAME_CHARS} are allowed",
            "timeseriesIdentifier",
            "PATH",
        )
    if not _ID.fullmatch(timeseries_id):
        return ConstraintViolation(
            "after 'custom:' use letters and digits in sections joined by periods, hyphens or commas, "
            "each section starting with a letter",
            "timeseriesIdentifier",
            "PATH",
        )
    return None


def registration(timeseries_id: str, body: bytes) -> Registration:
    """The registration a PUT asks for; raises InvalidParameters."""
    violations: list[ConstraintViolation] = []
    bad_id = check_id(timeseries_id)
    if bad_id is not None:
        violations.append(bad_id)
    message = TimeseriesRegistrationMessage()
    if body.strip():
        try:
            message = msgspec.json.decode(body, type=TimeseriesRegistrationMessage)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            violations.append(
                ConstraintViolation(f"not a TimeseriesRegistrationMessage: {exc}", "body", "PAYLOAD_BODY")
            )
            raise InvalidParameters(violations) from None
    name = message.displayName
    if name is not None and not name.strip():
        violations.append(ConstraintViolation("must not be empty", "displayName", "PAYLOAD_BODY"))
    elif name is not None and len(name) > MAX_DISPLAY_NAME_CHARS:
        violations.append(
            ConstraintViolation(
                f"is {len(name)} characters long; at most {MAX_DISPLAY_NAME_CHARS} are allowed",
                "displayName",
                "PAYLOAD_BODY",
            )
        )
    dimensions = None
    if message.dimensions is not None:
        for key in message.dimensions:
            if len(key) > MAX_DIMENSION_CHARS or not _DIMENSION.fullmatch(key):
                violations.append(
                    ConstraintViolation(
                        f"{key[:40]!r} is not a dimension key: use letters, digits, periods, hyphens and "
                        f"underscores, at most {MAX_DIMENSION_CHARS} characters",
                        "dimensions",
                        "PAYLOAD_BODY",
                    )
                )
        dimensions = tuple(dict.fromkeys(k for k in message.dimensions if k != CUSTOM_DEVICE))
    types = None
    if message.types is not None:
        if any(not t.strip() for t in message.types):
            violations.append(
                ConstraintViolation("a technology type must not be empty", "types", "PAYLOAD_BODY")
            )
        types = tuple(dict.fromkeys(message.types))
    if violations:
        raise InvalidParameters(violations)
    unit: str | None = None
    warnings: tuple[str, ...] = ()
    if message.unit is not None:
        unit = known_unit(message.unit)
        if unit is None:
            unit = COUNT
            warnings = (
                f"unit {message.unit!r} is not a Dynatrace unit: the metric is registered as {COUNT}",
            )
    return Registration(name, unit, dimensions, types, warnings)
