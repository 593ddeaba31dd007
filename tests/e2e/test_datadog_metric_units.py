"""Units in Datadog's query answers, on a real server: units sent with the points (Datadog's names through
`/api/v2/series`, UCUM codes through OTLP) and set in metric metadata, read back through the official
client's `query_timeseries_data`, `query_scalar_data` and `query_metrics` (which parse the unit objects),
through formulas and functions; and metadata refusing what is not a Datadog unit."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
from datadog_api_client.v1.model.metric_metadata import MetricMetadata
from datadog_api_client.v2.api.metrics_api import MetricsApi
from datadog_api_client.v2.model.metrics_aggregator import MetricsAggregator
from datadog_api_client.v2.model.metrics_data_source import MetricsDataSource
from datadog_api_client.v2.model.metrics_scalar_query import MetricsScalarQuery
from datadog_api_client.v2.model.metrics_timeseries_query import MetricsTimeseriesQuery
from datadog_api_client.v2.model.query_formula import QueryFormula
from datadog_api_client.v2.model.scalar_formula_query_request import ScalarFormulaQueryRequest
from datadog_api_client.v2.model.scalar_formula_request import ScalarFormulaRequest
from datadog_api_client.v2.model.scalar_formula_request_attributes import ScalarFormulaRequestAttributes
from datadog_api_client.v2.model.scalar_formula_request_queries import ScalarFormulaRequestQueries
from datadog_api_client.v2.model.scalar_formula_request_type import ScalarFormulaRequestType
from datadog_api_client.v2.model.timeseries_formula_query_request import TimeseriesFormulaQueryRequest
from datadog_api_client.v2.model.timeseries_formula_request import TimeseriesFormulaRequest
from datadog_api_client.v2.model.timeseries_formula_request_attributes import (
    TimeseriesFormulaRequestAttributes,
)
from datadog_api_client.v2.model.timeseries_formula_request_queries import TimeseriesFormulaRequestQueries
from datadog_api_client.v2.model.timeseries_formula_request_type import TimeseriesFormulaRequestType
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from tests.faces.otlp.exports import DELTA, NS, attrs, export
from tests.serverproc import RunningServer, provision

STEP_S = 60
END_S = (int(time.time()) // 3600 - 1) * 3600
START_S = END_S - 3600
TIMES = range(START_S, END_S, STEP_S)

# The unit objects as Datadog answers them (the percent one is the reference's recorded answer).
PERCENT = {"family": "percentage", "name": "percent", "plural": "percent", "scale_factor": 1.0,
           "short_name": "%", "id": 17}  # fmt: skip
BYTE = {"family": "bytes", "name": "byte", "plural": "bytes", "scale_factor": 1.0, "short_name": "B", "id": 2}
KIBIBYTE = {"family": "bytes", "name": "kibibyte", "plural": "kibibytes", "scale_factor": 1024.0,
            "short_name": "KiB", "id": 3}  # fmt: skip
SECOND = {"family": "time", "name": "second", "plural": "seconds", "scale_factor": 1.0, "short_name": "s",
          "id": 11}  # fmt: skip
MILLISECOND = {"family": "time", "name": "millisecond", "plural": "milliseconds", "scale_factor": 0.001,
               "short_name": "ms", "id": 10}  # fmt: skip
REQUEST = {"family": "network", "name": "request", "plural": "requests", "scale_factor": 1.0,
           "short_name": "req", "id": 19}  # fmt: skip
MINUTE = {"family": "time", "name": "minute", "plural": "minutes", "scale_factor": 60.0, "short_name": "min",
          "id": 12}  # fmt: skip


@pytest.fixture(scope="module")
def org(server: RunningServer) -> dict[str, Any]:
    """Metrics with units: Datadog series with a unit name, OTLP metrics with UCUM units, and a metric
    whose unit only its metadata gives."""
    created = provision(server.data_dir, "metric-units")
    headers = {"DD-API-KEY": created["keys"]["dd_api_key"]}
    series = [
        {
            "metric": "app.cpu",
            "type": 3,
            "unit": "percent",
            "points": [{"timestamp": t, "value": 50.0} for t in TIMES],
        },
        *(
            {
                "metric": "app.memory",
                "type": 3,
                "unit": "byte",
                "tags": [f"host:{host}"],
                "points": [{"timestamp": t, "value": 1000.0 * (k + 1) + (t - START_S)} for t in TIMES],
            }
            for k, host in enumerate(("a", "b"))
        ),
        {
            "metric": "app.hits",
            "type": 1,
            "interval": STEP_S,
            "points": [{"timestamp": t, "value": 3} for t in TIMES],
        },
        {"metric": "app.plain", "type": 3, "points": [{"timestamp": t, "value": 2.0} for t in TIMES]},
    ]
    response = httpx.post(server.url + "/api/v2/series", json={"series": series}, headers=headers, timeout=30)
    assert response.status_code == 202, response.text

    def gauge(name: str, unit: str, value: float) -> pb.Metric:
        points = [pb.NumberDataPoint(time_unix_nano=t * 1000 * NS, as_double=value) for t in TIMES]
        return pb.Metric(name=name, unit=unit, gauge=pb.Gauge(data_points=points))

    requests = pb.Metric(
        name="otel.requests",
        unit="{request}",
        sum=pb.Sum(
            aggregation_temporality=DELTA,
            is_monotonic=True,
            data_points=[
                pb.NumberDataPoint(
                    start_time_unix_nano=(t - STEP_S) * 1000 * NS,
                    time_unix_nano=t * 1000 * NS,
                    as_int=6,
                    attributes=attrs(route="/"),
                )
                for t in TIMES
            ],
        ),
    )
    body = export(
        gauge("otel.latency", "ms", 12.5),
        gauge("otel.throughput", "By/s", 100.0),
        gauge("otel.ratio", "1", 0.5),
        requests,
    ).SerializeToString()
    response = httpx.post(
        server.url + "/v1/metrics",
        content=body,
        headers={**headers, "Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    time.sleep(1.2)  # visible within a second
    return created


def config(server: RunningServer, org: dict[str, Any]) -> Configuration:
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = org["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = org["keys"]["dd_app_key"]
    return configuration


def timeseries_units(
    server: RunningServer, org: dict[str, Any], queries: dict[str, str], formulas: list[str]
) -> list[Any]:
    """Each formula's unit as the official client parsed it (one per formula: its first series)."""
    body = TimeseriesFormulaQueryRequest(
        data=TimeseriesFormulaRequest(
            attributes=TimeseriesFormulaRequestAttributes(
                formulas=[QueryFormula(formula=f) for f in formulas],
                _from=START_S * 1000,
                to=END_S * 1000,
                interval=300_000,
                queries=TimeseriesFormulaRequestQueries(
                    [
                        MetricsTimeseriesQuery(data_source=MetricsDataSource.METRICS, query=q, name=name)
                        for name, q in queries.items()
                    ]
                ),
            ),
            type=TimeseriesFormulaRequestType.TIMESERIES_REQUEST,
        )
    )
    with ApiClient(config(server, org)) as api_client:
        response = MetricsApi(api_client).query_timeseries_data(body=body)
    attributes = response.to_dict()["data"]["attributes"]
    first: dict[int, Any] = {}
    for series in attributes["series"]:
        first.setdefault(series["query_index"], series.get("unit"))
    assert sorted(first) == list(range(len(formulas))), attributes["series"]
    return [first[i] for i in range(len(formulas))]


def test_units_of_queries_formulas_and_functions(server: RunningServer, org: dict[str, Any]) -> None:
    queries = {"mem": "avg:app.memory{*} by {host}", "cpu": "avg:app.cpu{*}", "plain": "avg:app.plain{*}"}
    formulas = {
        "mem": [BYTE, None],
        "cpu": [PERCENT, None],
        "plain": None,
        "mem * 2": [BYTE, None],
        "mem / 1024": [BYTE, None],
        "-mem + 1": [BYTE, None],
        "2 / mem": None,
        "mem * plain": [BYTE, None],
        "mem + mem": [BYTE, None],
        "mem + cpu": None,
        "mem / mem": None,
        "mem / cpu": [BYTE, PERCENT],
        "per_second(mem)": [BYTE, SECOND],
        "per_minute(mem)": [BYTE, MINUTE],
        "derivative(mem)": [BYTE, SECOND],
        "integral(per_second(mem))": [BYTE, None],
        "integral(mem)": None,
        "per_second(per_second(mem))": None,
        "dt(mem)": [SECOND, None],
        "diff(mem)": [BYTE, None],
        "cumsum(mem)": [BYTE, None],
        "ewma_3(mem)": [BYTE, None],
        "top(mem, 1, 'max', 'desc')": [BYTE, None],
        "hour_before(mem)": [BYTE, None],
        "timeshift(mem, -60)": [BYTE, None],
        "moving_rollup(mem, 300, 'max')": [BYTE, None],
        "moving_rollup(mem, 300, 'count')": None,
        "log10(mem)": None,
        "count_not_null(mem)": None,
        "abs(cpu) * 100 / cpu": None,
    }
    got = timeseries_units(server, org, queries, list(formulas))
    assert dict(zip(formulas, got, strict=True)) == formulas


def test_otlp_units_and_type_modifiers(server: RunningServer, org: dict[str, Any]) -> None:
    queries = {
        "latency": "avg:otel.latency{*}",
        "bytes": "avg:otel.throughput{*}",
        "ratio": "avg:otel.ratio{*}",
        "counted": "sum:otel.requests{*}.as_count()",
        "rate": "sum:otel.requests{*}.as_rate()",
        "series": "count:otel.latency{*}",
        "points": "avg:otel.latency{*}.rollup(count)",
    }
    got = timeseries_units(server, org, queries, list(queries))
    assert got == [
        [MILLISECOND, None],
        [BYTE, SECOND],
        None,  # "1": dimensionless
        [REQUEST, None],
        [REQUEST, SECOND],
        None,  # a number of series
        None,  # a number of points
    ]


def test_scalar_columns_carry_units(server: RunningServer, org: dict[str, Any]) -> None:
    def scalar(aggregator: MetricsAggregator, query: str) -> Any:
        body = ScalarFormulaQueryRequest(
            data=ScalarFormulaRequest(
                attributes=ScalarFormulaRequestAttributes(
                    formulas=[QueryFormula(formula="a"), QueryFormula(formula="a * 8")],
                    _from=START_S * 1000,
                    to=END_S * 1000,
                    queries=ScalarFormulaRequestQueries(
                        [
                            MetricsScalarQuery(
                                aggregator=aggregator,
                                data_source=MetricsDataSource.METRICS,
                                query=query,
                                name="a",
                            )
                        ]
                    ),
                ),
                type=ScalarFormulaRequestType.SCALAR_REQUEST,
            )
        )
        with ApiClient(config(server, org)) as api_client:
            response = MetricsApi(api_client).query_scalar_data(body=body)
        return response.to_dict()["data"]["attributes"]["columns"]

    columns = scalar(MetricsAggregator.MAX, "avg:otel.throughput{*}")
    assert [c["meta"]["unit"] for c in columns] == [[BYTE, SECOND], [BYTE, SECOND]]
    # The area under a rate per second is an amount.
    columns = scalar(MetricsAggregator.AREA, "avg:otel.throughput{*}")
    assert [c["meta"]["unit"] for c in columns] == [[BYTE, None], [BYTE, None]]
    columns = scalar(MetricsAggregator.AREA, "avg:app.cpu{*}")
    assert columns[0]["meta"]["unit"] is None


def test_v1_query_series_carry_units(server: RunningServer, org: dict[str, Any]) -> None:
    with ApiClient(config(server, org)) as api_client:
        response = MetricsApiV1(api_client).query_metrics(
            _from=START_S, to=END_S, query="avg:app.cpu{*}, per_second(avg:otel.latency{*}), avg:app.plain{*}"
        )
    series = response.to_dict()["series"]
    assert [s["unit"] for s in series] == [[PERCENT, None], [MILLISECOND, SECOND], None]
    raw = httpx.get(
        server.url + "/api/v1/query",
        params={"from": START_S, "to": END_S, "query": "avg:app.cpu{*}"},
        headers={"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]},
        timeout=30,
    )
    assert raw.json()["series"][0]["unit"] == [PERCENT, None]


def test_metadata_units_win_over_stored_ones_and_unknown_units_are_refused(
    server: RunningServer, org: dict[str, Any]
) -> None:
    queries = {"mem": "avg:app.memory{*}", "hits": "sum:app.hits{*}.as_count()"}
    assert timeseries_units(server, org, queries, ["mem", "hits"]) == [[BYTE, None], None]
    with ApiClient(config(server, org)) as api_client:
        api = MetricsApiV1(api_client)
        api.update_metric_metadata("app.memory", MetricMetadata(unit="kibibyte"))
        api.update_metric_metadata("app.hits", MetricMetadata(unit="request", per_unit="minute"))
        assert timeseries_units(server, org, queries, ["mem", "hits"]) == [
            [KIBIBYTE, None],
            [REQUEST, MINUTE],
        ]
        for bad, message in [
            (
                MetricMetadata(unit="kilobytes"),
                "unit 'kilobytes' is not a metric unit (did you mean kilobyte?)",
            ),
            (MetricMetadata(unit="ms"), "unit 'ms' is not a metric unit (did you mean millisecond?)"),
            (MetricMetadata(unit="bytez"), "unit 'bytez' is not a metric unit (did you mean byte?)"),
            (MetricMetadata(per_unit="fortnight"), "per_unit 'fortnight' is not a metric unit"),
            (MetricMetadata(unit="millisecond", per_unit="second"), "a time unit per a time unit"),
        ]:
            with pytest.raises(ApiException) as caught:
                api.update_metric_metadata("app.memory", bad)
            assert caught.value.status == 400
            (error,) = caught.value.body["errors"]
            assert message in error, error
        # Nothing of a refused edit is kept.
        assert api.get_metric_metadata("app.memory").to_dict() == {"type": "gauge", "unit": "kibibyte"}
    assert timeseries_units(server, org, {"mem": "avg:app.memory{*}"}, ["mem"]) == [[KIBIBYTE, None]]


def test_metadata_reads_otlp_units_as_datadog_units(server: RunningServer, org: dict[str, Any]) -> None:
    with ApiClient(config(server, org)) as api_client:
        api = MetricsApiV1(api_client)
        assert api.get_metric_metadata("otel.latency").to_dict() == {"type": "gauge", "unit": "millisecond"}
        assert api.get_metric_metadata("otel.throughput").to_dict() == {
            "type": "gauge",
            "unit": "byte",
            "per_unit": "second",
        }
        assert api.get_metric_metadata("otel.ratio").to_dict() == {"type": "gauge"}
