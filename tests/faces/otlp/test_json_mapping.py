"""OTLP/JSON decodes to what the same export gives in protobuf, by the OTLP/JSON rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from sextant.core.timeutil import now_ms
from sextant.faces.otlp.decode import UndecodableBody, decode_capture_request, decode_request
from sextant.faces.otlp.json_mapping import InvalidJson, decode_json_request
from sextant.faces.otlp.responses import Encoding
from sextant.faces.otlp.translate import Translation, translate
from tests.faces.otlp.exports import every_kind


def columns(translation: Translation) -> dict[str, Any]:
    return {**translation.batch.columns(), "series": translation.batch.series}


def test_camel_case_json_gives_the_same_points_as_protobuf() -> None:
    now = now_ms()
    message = every_kind(now)
    body = json_format.MessageToJson(message, use_integers_for_enums=True).encode()
    # 64-bit integers are decimal strings in OTLP/JSON.
    assert f'"timeUnixNano": "{now * 1_000_000}"' in body.decode()
    assert columns(translate(decode_json_request(body), 1, now)) == columns(translate(message, 1, now))


def test_protobuf_field_names_are_accepted_too() -> None:
    now = now_ms()
    message = every_kind(now)
    body = json_format.MessageToJson(
        message, use_integers_for_enums=True, preserving_proto_field_name=True
    ).encode()
    assert b'"data_points"' in body and b'"dataPoints"' not in body
    assert columns(translate(decode_json_request(body), 1, now)) == columns(translate(message, 1, now))


def test_integers_as_numbers_unknown_fields_and_hex_exemplar_ids() -> None:
    now = now_ms()
    body = {
        "resourceMetrics": [
            {
                "resource": {"attributes": [], "droppedAttributesCount": 0, "futureField": {"x": 1}},
                "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
                "scopeMetrics": [
                    {
                        "scope": {"name": "s", "version": "1"},
                        "metrics": [
                            {
                                "name": "m",
                                "metadata": [{"key": "k", "value": {"stringValue": "v"}}],
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": now * 1_000_000,
                                            "asInt": 5,
                                            "exemplars": [
                                                {
                                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                                    "spanId": "EEE19B7EC3C1B174",
                                                    "asDouble": 5,
                                                    "timeUnixNano": "1",
                                                }
                                            ],
                                        }
                                    ]
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }
    translation = translate(decode_json_request(json.dumps(body).encode()), 1, now)
    assert (translation.batch.value, translation.batch.time_ms, translation.rejected) == ([5.0], [now], 0)


def _one_metric(metric: str) -> bytes:
    return ('{"resourceMetrics":[{"scopeMetrics":[{"metrics":[' + metric + "]}]}]}").encode()


def test_non_finite_doubles_are_strings() -> None:
    points = '[{"asDouble":"NaN"},{"asDouble":"-Infinity"}]'
    body = _one_metric('{"name":"m","gauge":{"dataPoints":' + points + "}}")
    points = decode_json_request(body).resource_metrics[0].scope_metrics[0].metrics[0].gauge
    assert points is not None
    assert [str(p.as_double) for p in points.data_points] == ["nan", "-inf"]


INVALID = [
    (b'{"resourceMetrics": [', "body is not valid JSON"),
    (b"[]", "Expected `object`, got `array`"),
    (b'{"resourceMetrics": {}}', "Expected `array`, got `object` - at `$.resourceMetrics`"),
    (
        _one_metric('{"sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}}'),
        "Expected `int`, got `str` - at "
        "`$.resourceMetrics[0].scopeMetrics[0].metrics[0].sum.aggregationTemporality`",
    ),
    (
        b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"timeUnixNano":"-5"}]}}]}]}]}',
        "Expected `int` >= 0",
    ),
    (
        b'{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"asDouble":"fast"}]}}]}]}]}',
        "Expected `float | null`, got `str`",
    ),
    (b'{"resourceMetrics":' + b"[" * 2000 + b"]" * 2000 + b"}", "Expected `object`, got `array`"),
]


@pytest.mark.parametrize(("body", "fragment"), INVALID)
def test_invalid_json_says_where(body: bytes, fragment: str) -> None:
    with pytest.raises(InvalidJson) as raised:
        decode_json_request(body)
    assert fragment in str(raised.value)


def test_deep_nesting_is_refused() -> None:
    value = '{"stringValue": "x"}'
    for _ in range(5000):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    body = '{"resourceMetrics":[{"resource":{"attributes":[{"key":"k","value":' + value + "}]}}]}"
    with pytest.raises(InvalidJson, match="nested too deeply"):
        decode_json_request(body.encode())


def test_protobuf_decoding_errors_are_undecodable() -> None:
    with pytest.raises(UndecodableBody, match="body is not a protobuf ExportMetricsServiceRequest"):
        decode_request(b"\xff\xff\xff", Encoding.PROTOBUF)
    with pytest.raises(UndecodableBody, match="not valid JSON"):
        decode_request(b"\x0a\x00", Encoding.JSON)


def test_capture_tries_protobuf_then_json_and_takes_json_lines() -> None:
    now = now_ms()
    message = every_kind(now)
    expected = columns(translate(message, 1, now))
    assert columns(translate(decode_capture_request(message.SerializeToString(), None), 1, now)) == expected
    line = json_format.MessageToJson(message, use_integers_for_enums=True, indent=None).encode()
    assert columns(translate(decode_capture_request(line, None), 1, now)) == expected
    lines = columns(translate(decode_capture_request(line + b"\n\n" + line + b"\n", Encoding.JSON), 1, now))
    assert len(lines["time_ms"]) == 10
    with pytest.raises(UndecodableBody) as raised:
        decode_capture_request(b"{not json", None)
    message_text = str(raised.value)
    assert message_text.startswith("Failed to decode JSON: body is not valid JSON")
    assert " or Protobuf: body is not a protobuf ExportMetricsServiceRequest" in message_text
    with pytest.raises(UndecodableBody, match=r"^Failed to decode JSON: line 2: "):
        decode_capture_request(line + b"\n{oops\n", Encoding.JSON)
