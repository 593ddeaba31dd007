"""The request fields validate as Django REST framework does: values, defaults, messages, codes, paths."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sextant.faces.posthog.errors import PostHogError
from sextant.faces.posthog.metrics_request import (
    CHARACTERIZE_REQUEST,
    QUERY_REQUEST,
    VALUES_PARAMETERS,
    characterize_request,
    epoch_ms,
    metrics_query,
)
from sextant.faces.posthog.request_fields import Char, DateTime, Float, Integer, ListOf, ManyNested, Nested

NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


def refused(schema: Nested, data: Any) -> tuple[str, str, str | None]:
    with pytest.raises(PostHogError) as caught:
        schema.validate(data)
    body = caught.value.body
    assert (caught.value.status, body.type) == (400, "validation_error")
    return body.code, body.detail, body.attr


def test_chars_are_stripped_numbers_taken_as_text() -> None:
    schema = Nested(
        {"a": Char(max_length=3), "b": Char(required=False), "c": Char(allow_blank=True, default="")}
    )
    assert schema.validate({"a": "  ab "}) == {"a": "ab", "c": ""}
    assert schema.validate({"a": 12, "b": 1.5}) == {"a": "12", "b": "1.5", "c": ""}
    assert refused(schema, {"a": "abcd"}) == (
        "max_length",
        "Ensure this field has no more than 3 characters.",
        "a",
    )
    assert refused(schema, {"a": [1]}) == ("invalid_input", "Not a valid string.", "a")
    assert refused(schema, {"a": "a\0"}) == (
        "null_characters_not_allowed",
        "Null characters are not allowed.",
        "a",
    )
    assert refused(schema, {"a": None}) == ("null", "This field may not be null.", "a")


def test_numbers() -> None:
    schema = Nested(
        {"f": Float(min_value=0.0, max_value=1.0, required=False), "i": Integer(min_value=1, default=5)}
    )
    assert schema.validate({"f": "0.25", "i": "7"}) == {"f": 0.25, "i": 7}
    assert schema.validate({"i": "3.0"}) == {"i": 3}
    assert refused(schema, {"f": -1}) == (
        "min_value",
        "Ensure this value is greater than or equal to 0.0.",
        "f",
    )
    assert refused(schema, {"i": "1.5"}) == ("invalid_input", "A valid integer is required.", "i")
    assert refused(schema, {"i": True}) == ("invalid_input", "A valid integer is required.", "i")
    assert refused(schema, {"f": "x" * 1001}) == ("max_string_length", "String value too large.", "f")


def test_datetimes_are_utc() -> None:
    schema = Nested({"t": DateTime()})
    assert schema.validate({"t": "2026-07-01T10:00:00+02:00"})["t"] == dt.datetime(
        2026, 7, 1, 8, tzinfo=dt.UTC
    )
    assert schema.validate({"t": "2026-07-01T10:00:00"})["t"] == dt.datetime(2026, 7, 1, 10, tzinfo=dt.UTC)
    assert schema.validate({"t": "2026-07-01"})["t"] == dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    code, detail, attr = refused(schema, {"t": 1_700_000_000})
    assert (code, attr) == ("invalid_input", "t")
    assert detail.startswith("Datetime has wrong format.")


def test_lists_and_nested_paths() -> None:
    item = Nested({"k": Char()})
    schema = Nested(
        {
            "keys": ListOf(Char(max_length=2), required=False),
            "items": ManyNested(item, max_length=2, default=list),
        }
    )
    assert schema.validate({"keys": ["a"], "items": [{"k": "x"}]}) == {"keys": ["a"], "items": [{"k": "x"}]}
    assert refused(schema, {"keys": ["ok", "long"]}) == (
        "max_length",
        "Ensure this field has no more than 2 characters.",
        "keys__1",
    )
    assert refused(schema, {"items": [{"k": "x"}, None]}) == (
        "null",
        "This field may not be null.",
        "items__1",
    )
    assert refused(schema, {"items": [{}] * 3}) == (
        "max_length",
        "Ensure this field has no more than 2 elements.",
        "items__non_field_errors",
    )


def test_query_request_meaning() -> None:
    body = {
        "query": {
            "metricName": "cpu",
            "aggregation": "histogram_quantile",
            "quantile": 0.9,
            "filters": [{"key": "env", "value": "prod"}],
            "groupBy": [{"key": "host"}],
            "dateFrom": "2026-07-01T11:00:00Z",
        }
    }
    query = metrics_query(QUERY_REQUEST.validate(body), NOW)
    (clause,) = query.clauses
    assert (clause.name, clause.metric, clause.aggregation, clause.quantile) == (
        "a",
        "cpu",
        "histogram_quantile",
        0.9,
    )
    assert [(f.key, f.op, f.value, f.scope) for f in clause.filters] == [("env", "eq", "prod", "auto")]
    assert clause.group_by == ("host",)
    assert (query.start_ms, query.end_ms) == (epoch_ms(NOW) - 3_600_000, epoch_ms(NOW))
    # The quantile applies to histogram_quantile only.
    other = metrics_query(QUERY_REQUEST.validate({"query": {**body["query"], "aggregation": "p95"}}), NOW)
    assert other.clauses[0].quantile is None


def test_characterize_and_values_requests() -> None:
    validated = CHARACTERIZE_REQUEST.validate(
        {"query": {"metricName": "q", "anomalyFrom": "2026-07-01T11:50:00Z", "candidateKeys": ["a", "b"]}}
    )
    asked = characterize_request(validated, NOW)
    assert (asked.anomaly_from, asked.anomaly_to) == (epoch_ms(NOW) - 600_000, epoch_ms(NOW))
    assert (asked.baseline_from, asked.baseline_to, asked.aggregation) == (None, None, None)
    assert asked.candidate_keys == ("a", "b")
    assert VALUES_PARAMETERS.validate({}) == {"value": "", "limit": 100}
    assert VALUES_PARAMETERS.validate({"value": "", "limit": "1000", "personal_api_key": "x"}) == {
        "value": "",
        "limit": 1000,
    }
