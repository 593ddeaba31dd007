"""OTLP attributes as tags: `key:value`, the value as text the way the Collector's `AsString` writes it.

Strings as they are, booleans `true`/`false`, integers in decimal, doubles in their shortest
round-trip form as JavaScript prints numbers (`2`, `0.1`, `1e+21`), bytes in base64, arrays and
key-value lists as compact JSON. Datadog's OTLP translation and PostHog's capture render attribute
values the same way, so a tag reads the same whichever way the point came in.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable

import msgspec
from opentelemetry.proto.common.v1 import common_pb2

from sextant.faces.otlp import json_mapping

# The protobuf message or its OTLP/JSON twin.
AnyValue = common_pb2.AnyValue | json_mapping.AnyValue
KeyValue = common_pb2.KeyValue | json_mapping.KeyValue

_encode_json_string = msgspec.json.Encoder().encode


def number_text(x: float) -> str:
    """`x` as ECMAScript's Number::toString writes it: the shortest digits that read back as `x`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest round-trip digits; only their layout differs from ECMAScript's.
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    e = point - 1
    rest = f".{digits[1:]}" if k > 1 else ""
    return f"{sign}{digits[0]}{rest}e{'+' if e >= 0 else '-'}{abs(e)}"


def value_text(value: AnyValue) -> str:
    """The tag value of an attribute value (an empty AnyValue gives the empty string)."""
    which = value.WhichOneof("value")
    if which is None:
        return ""
    raw = getattr(value, which)
    if which == "string_value":
        return str(raw)
    if which == "bool_value":
        return "true" if raw else "false"
    if which == "int_value":
        return str(int(raw))
    if which == "double_value":
        return number_text(float(raw))
    if which == "bytes_value":
        return base64.b64encode(bytes(raw)).decode()
    return _json(value)


def _json(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which is None:
        return "null"
    raw = getattr(value, which)
    if which == "array_value":
        return "[" + ",".join(_json(item) for item in raw.values) + "]"
    if which == "kvlist_value":
        members = (f"{_json_string(kv.key)}:{_json(kv.value)}" for kv in raw.values)
        return "{" + ",".join(members) + "}"
    if which == "double_value" and not math.isfinite(raw):
        # JSON has no NaN or Infinity: written as the strings OTLP/JSON itself uses for them.
        return _json_string(number_text(raw))
    if which in ("string_value", "bytes_value"):
        return _json_string(value_text(value))
    return value_text(value)


def _json_string(text: str) -> str:
    return _encode_json_string(text).decode()


def attribute_tags(attributes: Iterable[KeyValue]) -> list[str]:
    return [f"{kv.key}:{value_text(kv.value)}" for kv in attributes]
