"""The Metrics API's request bodies and query strings, as PostHog's serializers declare them (camelCase
keys, their limits and defaults), and what they mean as queries.

`POST query` takes `{"query": {...}}` with either `metricName` (one clause, named `a`) or `clauses`
(at most 10), an optional `formula` over clause names, and `dateFrom` (required) / `dateTo` (now);
`POST characterize` takes `{"query": {...}}` with `metricName` and `anomalyFrom`; `GET values` takes
`value` and `limit`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sextant.faces.posthog.request_fields import (
    Char,
    Choice,
    DateTime,
    Float,
    Integer,
    ListOf,
    ManyNested,
    Nested,
)
from sextant.query.posthog_metrics import (
    AGGREGATIONS,
    INTERVALS,
    MAX_CLAUSES,
    METRIC_TYPES,
    CharacterizeRequest,
    Clause,
    Filter,
    MetricsQuery,
)

SCOPES = ("resource", "attribute", "auto")
OPS = ("eq", "neq", "regex", "not_regex")
SINGLE_CLAUSE_NAME = "a"

FILTER = Nested(
    {
        "key": Char(max_length=255),
        "op": Choice(OPS, default="eq"),
        "value": Char(allow_blank=True, max_length=1024),
        "scope": Choice(SCOPES, default="auto"),
    }
)
GROUP_BY = Nested({"key": Char(max_length=255), "scope": Choice(SCOPES, default="auto")})


def _selection() -> dict[str, Any]:
    """The fields a clause and the single-clause shorthand share, in PostHog's order."""
    return {
        "metricType": Choice(METRIC_TYPES, required=False, allow_null=True),
        "aggregation": Choice(AGGREGATIONS, default="sum"),
        "quantile": Float(required=False, allow_null=True, min_value=0.0, max_value=1.0),
        "filters": ManyNested(FILTER, required=False, default=list),
        "groupBy": ManyNested(GROUP_BY, required=False, default=list),
    }


CLAUSE = Nested({"name": Char(max_length=64), "metricName": Char(max_length=255), **_selection()})


def _one_form(attrs: dict[str, Any]) -> str | None:
    has_single = bool(attrs.get("metricName"))
    has_clauses = bool(attrs.get("clauses"))
    if has_single == has_clauses:
        return "Provide exactly one of 'metricName' or 'clauses'."
    if attrs.get("formula") and not has_clauses:
        return "'formula' requires 'clauses'."
    if has_clauses and attrs.get("metricType"):
        return "'metricType' applies to the single-clause shorthand; set it per clause instead."
    return None


QUERY_REQUEST = Nested(
    {
        "query": Nested(
            {
                "metricName": Char(max_length=255, required=False),
                **_selection(),
                "interval": Choice([name for name, _ in INTERVALS], required=False, allow_null=True),
                "clauses": ManyNested(CLAUSE, required=False, max_length=MAX_CLAUSES),
                "formula": Char(required=False, allow_null=True, max_length=512),
                "dateFrom": DateTime(),
                "dateTo": DateTime(required=False),
            },
            check=_one_form,
        )
    }
)

CHARACTERIZE_REQUEST = Nested(
    {
        "query": Nested(
            {
                "metricName": Char(max_length=255),
                "anomalyFrom": DateTime(),
                "anomalyTo": DateTime(required=False),
                "baselineFrom": DateTime(required=False),
                "baselineTo": DateTime(required=False),
                "aggregation": Choice(AGGREGATIONS, required=False, allow_null=True),
                "quantile": Float(required=False, allow_null=True, min_value=0.0, max_value=1.0),
                "filters": ManyNested(FILTER, required=False, default=list),
                "candidateKeys": ListOf(Char(max_length=255), required=False),
            }
        )
    }
)

VALUES_PARAMETERS = Nested(
    {
        "value": Char(required=False, allow_blank=True, default="", max_length=255),
        "limit": Integer(required=False, default=100, min_value=1, max_value=1000),
    }
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)


def _filters(items: list[dict[str, Any]]) -> tuple[Filter, ...]:
    return tuple(Filter(f["key"], f["op"], f["value"], f["scope"]) for f in items)


def _clause(data: dict[str, Any], name: str) -> Clause:
    aggregation: str = data["aggregation"]
    return Clause(
        name=name,
        metric=data["metricName"],
        aggregation=aggregation,
        quantile=data.get("quantile") if aggregation == "histogram_quantile" else None,
        filters=_filters(data.get("filters") or []),
        group_by=tuple(g["key"] for g in data.get("groupBy") or []),
        metric_type=data.get("metricType") or None,
    )


def metrics_query(validated: dict[str, Any], now: dt.datetime) -> MetricsQuery:
    """The query a validated `QUERY_REQUEST` asks for."""
    query = validated["query"]
    if query.get("clauses"):
        clauses = tuple(_clause(c, c["name"]) for c in query["clauses"])
    else:
        clauses = (_clause(query, SINGLE_CLAUSE_NAME),)
    return MetricsQuery(
        clauses=clauses,
        start_ms=epoch_ms(query["dateFrom"]),
        end_ms=epoch_ms(query.get("dateTo") or now),
        interval=query.get("interval"),
        formula=query.get("formula"),
    )


def characterize_request(validated: dict[str, Any], now: dt.datetime) -> CharacterizeRequest:
    """The characterization a validated `CHARACTERIZE_REQUEST` asks for."""
    query = validated["query"]

    def optional(name: str) -> int | None:
        moment = query.get(name)
        return None if moment is None else epoch_ms(moment)

    return CharacterizeRequest(
        metric=query["metricName"],
        anomaly_from=epoch_ms(query["anomalyFrom"]),
        anomaly_to=epoch_ms(query.get("anomalyTo") or now),
        baseline_from=optional("baselineFrom"),
        baseline_to=optional("baselineTo"),
        aggregation=query.get("aggregation"),
        quantile=query.get("quantile"),
        filters=_filters(query.get("filters") or []),
        candidate_keys=tuple(query.get("candidateKeys") or ()),
    )
