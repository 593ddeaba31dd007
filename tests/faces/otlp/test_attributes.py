"""Attribute values as tag text, from protobuf messages and from their OTLP/JSON twins alike."""

from __future__ import annotations

import math

import msgspec
import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from sextant.faces.otlp import json_mapping
from sextant.faces.otlp.attributes import attribute_tags, number_text, value_text

# What JavaScript's String(x) gives (ECMAScript Number::toString).
ECMASCRIPT = [
    (0.0, "0"),
    (-0.0, "0"),
    (1.0, "1"),
    (2.0, "2"),
    (-1.5, "-1.5"),
    (0.1, "0.1"),
    (1 / 3, "0.3333333333333333"),
    (100.0, "100"),
    (123.456, "123.456"),
    (2.0**53, "9007199254740992"),
    (1e20, "100000000000000000000"),
    (1.2345678901234568e20, "123456789012345680000"),
    (1e21, "1e+21"),
    (1.5e300, "1.5e+300"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (0.000001, "0.000001"),
    (0.00001234, "0.00001234"),
    (1e-7, "1e-7"),
    (1.23e-18, "1.23e-18"),
    (5e-324, "5e-324"),
    (math.nan, "NaN"),
    (math.inf, "Infinity"),
    (-math.inf, "-Infinity"),
]


@pytest.mark.parametrize(("value", "text"), ECMASCRIPT)
def test_doubles_read_as_javascript_prints_them(value: float, text: str) -> None:
    assert number_text(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_double_text_is_the_shortest_that_reads_back(value: float) -> None:
    text = number_text(value)
    assert float(text) == value
    significant = text.lstrip("-").split("e")[0].replace(".", "").strip("0")
    shortest = repr(abs(value)).split("e")[0].replace(".", "").strip("0")
    assert len(significant) == len(shortest)


def _array(*values: AnyValue) -> AnyValue:
    return AnyValue(array_value=ArrayValue(values=list(values)))


PROTOBUF_VALUES = [
    (AnyValue(string_value="eu-west 1"), "eu-west 1"),
    (AnyValue(string_value=""), ""),
    (AnyValue(bool_value=True), "true"),
    (AnyValue(bool_value=False), "false"),
    (AnyValue(int_value=-42), "-42"),
    (AnyValue(int_value=2**63 - 1), "9223372036854775807"),
    (AnyValue(double_value=2.0), "2"),
    (AnyValue(double_value=0.25), "0.25"),
    (AnyValue(bytes_value=b"\x00\xff"), "AP8="),
    (AnyValue(), ""),
    (
        _array(AnyValue(int_value=1), AnyValue(string_value='a"b'), AnyValue(double_value=1.5)),
        '[1,"a\\"b",1.5]',
    ),
    (_array(AnyValue(double_value=math.nan), AnyValue(), AnyValue(bool_value=True)), '["NaN",null,true]'),
    (
        AnyValue(
            kvlist_value=KeyValueList(
                values=[
                    KeyValue(key="z", value=AnyValue(int_value=1)),
                    KeyValue(key="a", value=_array(AnyValue(string_value="x"))),
                ]
            )
        ),
        '{"z":1,"a":["x"]}',
    ),
]


@pytest.mark.parametrize(("value", "text"), PROTOBUF_VALUES)
def test_protobuf_values(value: AnyValue, text: str) -> None:
    assert value_text(value) == text


@pytest.mark.parametrize(("value", "text"), PROTOBUF_VALUES)
def test_json_twins_read_the_same(value: AnyValue, text: str) -> None:
    twin = msgspec.json.decode(
        json_format.MessageToJson(value).encode(), type=json_mapping.AnyValue, strict=False
    )
    assert value_text(twin) == text


def test_attribute_tags_keep_keys_and_order() -> None:
    attributes = [
        KeyValue(key="http.route", value=AnyValue(string_value="/cart")),
        KeyValue(key="retry", value=AnyValue(bool_value=False)),
    ]
    assert attribute_tags(attributes) == ["http.route:/cart", "retry:false"]
