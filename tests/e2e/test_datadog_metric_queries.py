"""Datadog metric queries on a real server: data sent through the intakes, read back through
`/api/v2/query/timeseries`, `/api/v2/query/scalar` and `/api/v1/query`, checked against computations made
here from the points sent."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
from datadog_api_client.v2.api.metrics_api import MetricsApi
from datadog_api_client.v2.model.formula_limit import FormulaLimit
from datadog_api_client.v2.model.metrics_aggregator import MetricsAggregator
from datadog_api_client.v2.model.metrics_data_source import MetricsDataSource
from datadog_api_client.v2.model.metrics_scalar_query import MetricsScalarQuery
from datadog_api_client.v2.model.metrics_timeseries_query import MetricsTimeseriesQuery
from datadog_api_client.v2.model.query_formula import QueryFormula
from datadog_api_client.v2.model.query_sort_order import QuerySortOrder
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

from tests.serverproc import RunningServer, provision

STEP_S = 60
WEEK_S = 7 * 86_400
# A whole-hour window that ended an hour ago; points every 60 s in it (and a week before it).
END_S = (int(time.time()) // 3600 - 1) * 3600
START_S = END_S - 3600
HOSTS = ["web-1", "web-2", "db-1"]


def load(host: str, t: int) -> float:
    return (t // STEP_S) % 17 + 10 * HOSTS.index(host)


def requests_value(t: int) -> float:
    return float((t // STEP_S) % 5 + 1)


@pytest.fixture(scope="module")
def org(server: RunningServer) -> dict[str, Any]:
    """An organization with gauges per host, a count, and error/info logs, sent through the intakes."""
    created = provision(server.data_dir, "metric-queries")
    key = created["keys"]["dd_api_key"]
    headers = {"DD-API-KEY": key, "Content-Type": "application/json"}
    series = []
    for base in (START_S, START_S - WEEK_S):
        times = range(base, base + 3600, STEP_S)
        for host in HOSTS:
            series.append(
                {
                    "metric": "system.load.5",
                    "type": 3,
                    "points": [{"timestamp": t, "value": load(host, t)} for t in times],
                    "resources": [{"name": host, "type": "host"}],
                    "tags": ["env:prod"] if host.startswith("web") else ["env:staging", "role:db"],
                }
            )
        series.append(
            {
                "metric": "app.requests",
                "type": 1,
                "interval": STEP_S,
                "points": [{"timestamp": t, "value": requests_value(t)} for t in times],
            }
        )
    response = httpx.post(server.url + "/api/v2/series", json={"series": series}, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    logs = []
    for k, t in enumerate(range(START_S, START_S + 3600, 300)):
        logs += [{"message": "boom", "status": "error", "service": "api", "timestamp": t * 1000}] * (
            1 + k % 3
        )
        logs += [{"message": "ok", "status": "info", "service": "api", "timestamp": t * 1000}] * 4
    response = httpx.post(server.url + "/api/v2/logs", json=logs, headers=headers, timeout=30)
    assert response.status_code == 202, response.text
    time.sleep(1.5)  # visible within a second
    return created


def client_config(server: RunningServer, org: dict[str, Any]) -> Configuration:
    config = Configuration(host=server.url)
    config.api_key["apiKeyAuth"] = org["keys"]["dd_api_key"]
    config.api_key["appKeyAuth"] = org["keys"]["dd_app_key"]
    return config


def post(server: RunningServer, org: dict[str, Any], path: str, body: Any) -> httpx.Response:
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}
    return httpx.post(server.url + path, json=body, headers=headers, timeout=60)


def timeseries(
    queries: list[dict[str, Any]], formulas: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    attributes: dict[str, Any] = {"from": START_S * 1000, "to": END_S * 1000, "queries": queries, **extra}
    if formulas is not None:
        attributes["formulas"] = [{"formula": f} for f in formulas]
    return {"data": {"type": "timeseries_request", "attributes": attributes}}


def by_time(body: dict[str, Any], index: int) -> dict[int, float | None]:
    attrs = body["data"]["attributes"]
    return dict(zip(attrs["times"], attrs["values"][index], strict=True))


def metric(query: str, name: str = "a") -> dict[str, Any]:
    return {"data_source": "metrics", "name": name, "query": query}


def test_the_official_client_reads_a_timeseries_formula(server: RunningServer, org: dict[str, Any]) -> None:
    body = TimeseriesFormulaQueryRequest(
        data=TimeseriesFormulaRequest(
            attributes=TimeseriesFormulaRequestAttributes(
                formulas=[QueryFormula(formula="a"), QueryFormula(formula="2 * a")],
                _from=START_S * 1000,
                to=END_S * 1000,
                interval=300_000,
                queries=TimeseriesFormulaRequestQueries(
                    [
                        MetricsTimeseriesQuery(
                            data_source=MetricsDataSource.METRICS,
                            query="avg:system.load.5{*} by {host}",
                            name="a",
                        )
                    ]
                ),
            ),
            type=TimeseriesFormulaRequestType.TIMESERIES_REQUEST,
        )
    )
    with ApiClient(client_config(server, org)) as api_client:
        response = MetricsApi(api_client).query_timeseries_data(body=body)
    # The client parsed the answer into its models; compare them as plain data.
    attrs = response.to_dict()["data"]["attributes"]
    series, times, values = attrs["series"], attrs["times"], attrs["values"]
    assert [(s["group_tags"], s["query_index"]) for s in series] == [
        (["host:db-1"], 0),
        (["host:web-1"], 0),
        (["host:web-2"], 0),
        (["host:db-1"], 1),
        (["host:web-1"], 1),
        (["host:web-2"], 1),
    ]
    assert times == [t * 1000 for t in range(START_S, END_S, 300)]
    for i, host in enumerate(["db-1", "web-1", "web-2"]):
        expected = [
            sum(load(host, t) for t in range(b, b + 300, STEP_S)) / 5 for b in range(START_S, END_S, 300)
        ]
        assert values[i] == pytest.approx(expected)
        assert values[i + 3] == pytest.approx([2 * v for v in expected])


def test_space_aggregation_across_hosts_and_a_filtered_scope(
    server: RunningServer, org: dict[str, Any]
) -> None:
    def prod(t: int) -> float:
        return load("web-1", t) + load("web-2", t)

    exact = timeseries([metric("sum:system.load.5{env:prod}")], interval=60_000)
    response = post(server, org, "/api/v2/query/timeseries", exact)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["attributes"]["series"] == [
        {"group_tags": [], "query_index": 0, "unit": None}
    ]
    assert by_time(response.json(), 0) == {t * 1000: prod(t) for t in range(START_S, END_S, STEP_S)}
    # The default step of an hour is 20 s: the gauges are interpolated between their minutes, then summed.
    response = post(
        server, org, "/api/v2/query/timeseries", timeseries([metric("sum:system.load.5{env:prod}")])
    )
    series = by_time(response.json(), 0)
    assert len(series) == 180
    for t in range(START_S, END_S - STEP_S, STEP_S):
        for offset in (0, 20, 40):
            want = prod(t) + (prod(t + STEP_S) - prod(t)) * offset / STEP_S
            assert series[(t + offset) * 1000] == pytest.approx(want)


def test_counts_sum_per_bucket_and_per_hour_scales_the_rate(
    server: RunningServer, org: dict[str, Any]
) -> None:
    response = post(
        server,
        org,
        "/api/v2/query/timeseries",
        timeseries([metric("sum:app.requests{*}.as_count()", "q")], ["q", "per_hour(q)"], interval=600_000),
    )
    assert response.status_code == 200, response.text
    counts, hourly = by_time(response.json(), 0), by_time(response.json(), 1)
    for b in range(START_S, END_S, 600):
        assert counts[b * 1000] == sum(requests_value(t) for t in range(b, b + 600, STEP_S))
    # per_hour: the change per second between buckets, times 3600 (null where the counter went down).
    times = sorted(counts)
    for previous, current in itertools.pairwise(times):
        delta = counts[current] - counts[previous]  # type: ignore[operator]
        want = None if delta < 0 else delta / 600 * 3600
        assert hourly[current] == (pytest.approx(want) if want is not None else None)


def test_week_before_reads_the_same_hour_a_week_earlier(server: RunningServer, org: dict[str, Any]) -> None:
    query = metric("avg:system.load.5{host:db-1}", "query1")
    response = post(
        server, org, "/api/v2/query/timeseries", timeseries([query], ["week_before(query1)"], interval=60_000)
    )
    assert response.status_code == 200, response.text
    shifted = by_time(response.json(), 0)
    assert len(shifted) == 60
    for t_ms, value in shifted.items():
        assert value == load("db-1", t_ms // 1000 - WEEK_S)


def test_the_error_over_info_log_ratio(server: RunningServer, org: dict[str, Any]) -> None:
    def logs(name: str, status: str) -> dict[str, Any]:
        return {
            "data_source": "logs",
            "name": name,
            "search": {"query": f"status:{status}"},
            "indexes": ["*"],
            "compute": {"aggregation": "count"},
            "group_by": [],
        }

    body = timeseries(
        [logs("query1", "error"), logs("query2", "info")], ["query1 / query2 * 100"], interval=300_000
    )
    response = post(server, org, "/api/v2/query/timeseries", body)
    assert response.status_code == 200, response.text
    ratio = by_time(response.json(), 0)
    for k, t in enumerate(range(START_S, START_S + 3600, 300)):
        assert ratio[t * 1000] == pytest.approx((1 + k % 3) / 4 * 100)


def test_scalar_with_aggregators_and_a_limit(server: RunningServer, org: dict[str, Any]) -> None:
    body = ScalarFormulaQueryRequest(
        data=ScalarFormulaRequest(
            attributes=ScalarFormulaRequestAttributes(
                formulas=[QueryFormula(formula="a", limit=FormulaLimit(count=2, order=QuerySortOrder.DESC))],
                _from=START_S * 1000,
                to=END_S * 1000,
                queries=ScalarFormulaRequestQueries(
                    [
                        MetricsScalarQuery(
                            aggregator=MetricsAggregator.MAX,
                            data_source=MetricsDataSource.METRICS,
                            query="avg:system.load.5{*} by {host}",
                            name="a",
                        )
                    ]
                ),
            ),
            type=ScalarFormulaRequestType.SCALAR_REQUEST,
        )
    )
    with ApiClient(client_config(server, org)) as api_client:
        response = MetricsApi(api_client).query_scalar_data(body=body)
    columns = response.to_dict()["data"]["attributes"]["columns"]
    assert columns[0]["type"] == "group" and columns[0]["name"] == "host"
    assert columns[0]["values"] == [["db-1"], ["web-2"]]  # the two largest maxima, descending
    assert columns[1]["type"] == "number" and columns[1]["name"] == "a"
    assert columns[1]["values"] == [
        max(load(h, t) for t in range(START_S, END_S, STEP_S)) for h in ("db-1", "web-2")
    ]


def test_v1_query_with_arithmetic_in_the_string(server: RunningServer, org: dict[str, Any]) -> None:
    with ApiClient(client_config(server, org)) as api_client:
        response = MetricsApiV1(api_client).query_metrics(
            _from=START_S, to=END_S, query="avg:system.load.5{host:web-1} * 2, sum:system.load.5{*} by {env}"
        )
    answer = response.to_dict()
    assert answer["status"] == "ok"
    assert [(s["query_index"], s["tag_set"]) for s in answer["series"]] == [
        (0, []),
        (1, ["env:prod"]),
        (1, ["env:staging"]),
    ]
    first = answer["series"][0]
    assert first["interval"] == 20 and first["metric"] == "system.load.5"
    values = {p[0]: p[1] for p in first["pointlist"]}
    assert len(first["pointlist"]) == 180
    for t in range(START_S, END_S, STEP_S):
        assert values[t * 1000] == 2 * load("web-1", t)
    staging = {p[0]: p[1] for p in answer["series"][2]["pointlist"]}
    assert all(staging[t * 1000] == load("db-1", t) for t in range(START_S, END_S, STEP_S))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"data": {"type": "scalar_request", "attributes": {"from": 0, "to": 1, "queries": []}}},
            "Invalid type",
        ),
        (timeseries([metric("avg:system.load.5{env:prod AND !host:a}")]), "query 'a'"),
        (timeseries([metric("avg:system.load.5{*}")], ["b * 2"]), "b"),
        (timeseries([metric("avg:system.load.5{*}")], ["nope(a)"]), "nope"),
        (timeseries([metric("avg:system.load.5{*}")], ["top(a, 0)"]), "limit"),
        (timeseries([metric("avg:system.load.5{*}")], ["top(a, 5, 'median')"]), "by (third argument)"),
        (timeseries([metric("avg:system.load.5{*}")], ["abs(5)"]), "over queries"),
        (timeseries([metric("count(v: v<=1):system.load.5{*}")]), "raw values of a distribution"),
        (timeseries([{"data_source": "spans", "name": "a", "compute": {"aggregation": "count"}}]), "spans"),
        (
            timeseries(
                [metric("avg:system.load.5{*} by {host}"), metric("avg:system.load.5{*} by {env}", "b")],
                ["a + b"],
            ),
            "cannot match",
        ),
        (
            {
                "data": {
                    "type": "timeseries_request",
                    "attributes": {"from": 2000, "to": 1000, "queries": [metric("m{*}")]},
                }
            },
            "earlier",
        ),
        (
            {
                "data": {
                    "type": "timeseries_request",
                    "attributes": {"from": 1000, "to": 2000, "queries": [metric("m{*}")]},
                }
            },
            "retention",
        ),
        (b"not json", "not valid JSON"),
    ],
)
def test_bad_requests_are_400_with_what_to_fix(
    server: RunningServer, org: dict[str, Any], body: Any, message: str
) -> None:
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    response = httpx.post(
        server.url + "/api/v2/query/timeseries", content=content, headers=headers, timeout=30
    )
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert message in error


def test_auth_and_tenant_isolation(
    server: RunningServer, org: dict[str, Any], globex: dict[str, Any]
) -> None:
    body = timeseries([metric("avg:system.load.5{*}")])
    assert httpx.post(server.url + "/api/v2/query/timeseries", json=body, timeout=30).status_code == 401
    response = post(server, globex, "/api/v2/query/timeseries", body)
    assert response.status_code == 200
    assert response.json()["data"]["attributes"] == {"series": [], "times": [], "values": []}
    with ApiClient(client_config(server, org)) as api_client:
        config = api_client.configuration
        config.api_key["appKeyAuth"] = "not-a-key"
        with pytest.raises(ApiException) as caught:
            MetricsApiV1(api_client).query_metrics(_from=START_S, to=END_S, query="avg:system.load.5{*}")
    assert caught.value.status == 403


def test_no_data_is_an_empty_answer(server: RunningServer, org: dict[str, Any]) -> None:
    response = post(server, org, "/api/v2/query/timeseries", timeseries([metric("avg:no.such.metric{*}")]))
    assert response.status_code == 200
    assert response.json()["data"] == {
        "attributes": {"series": [], "times": [], "values": []},
        "id": "0",
        "type": "timeseries_response",
    }


SEED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "seeds" / "002_fa40bcc19c38ab47.txt"


def seed_graph(after: str) -> dict[str, Any]:
    """The graph JSON that follows `after` in the seed document: the next paragraph (the JSON has no blank
    lines), wrapped in braces where the seed shows only its fields."""
    text = SEED.read_text()
    fragment = text[text.index(after) + len(after) :].strip().split("\n\n")[0]
    graph: dict[str, Any] = json.loads(fragment if fragment.startswith("{") else "{" + fragment + "}")
    return graph


def graph(
    server: RunningServer, org: dict[str, Any], definition: dict[str, Any], **window: int
) -> dict[str, Any]:
    response = post(server, org, "/api/v2/sextant/graph", {**definition, **window})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_seed_graphs_evaluate(server: RunningServer, org: dict[str, Any]) -> None:
    window = {"from": START_S * 1000, "to": END_S * 1000, "interval": 300_000}
    toplist = seed_graph("Here is the same example as a top list.")
    assert toplist["viz"] == "toplist"
    (answer,) = graph(server, org, toplist, **window)["requests"]
    assert answer["response_format"] == "scalar"
    host, value = answer["data"]["columns"]
    assert host == {"type": "group", "name": "host", "values": [["db-1"]]}
    # The average of the graph's 20 s buckets: the gauge interpolated between its minutes, and its last
    # value held to the end of the window.
    minutes = [load("db-1", t) for t in range(START_S, END_S, STEP_S)]
    buckets = [a + (b - a) * k / 3 for a, b in itertools.pairwise(minutes) for k in range(3)] + [
        minutes[-1]
    ] * 3
    assert value["name"] == "query1" and value["values"] == [pytest.approx(sum(buckets) / len(buckets))]

    per_hour = seed_graph(
        "Here is an example using the rate() function, which takes only a single metric as a parameter."
    )
    (answer,) = graph(server, org, per_hour, **window)["requests"]
    assert [s["group_tags"] for s in answer["data"]["series"]] == [
        ["host:db-1"],
        ["host:web-1"],
        ["host:web-2"],
    ]

    ratio = seed_graph("and then apply a Timeshift function.")
    (answer,) = graph(server, org, ratio, **window)["requests"]
    data = answer["data"]
    # Formula 0 is the ratio; formula 1 the same a week before, when there were no logs: no series.
    assert [s["query_index"] for s in data["series"]] == [0]
    for k, (t, v) in enumerate(zip(data["times"], data["values"][0], strict=True)):
        assert t == (START_S + 300 * k) * 1000 and v == pytest.approx((1 + k % 3) / 4)


def test_a_graph_needs_requests_and_valid_json(server: RunningServer, org: dict[str, Any]) -> None:
    for body, message in [({"requests": []}, "at least one request"), ({"viz": "toplist"}, "invalid graph")]:
        response = post(server, org, "/api/v2/sextant/graph", body)
        assert response.status_code == 400 and message in response.json()["errors"][0]


def test_percentiles_of_a_distribution_over_every_value(server: RunningServer, org: dict[str, Any]) -> None:
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "Content-Type": "application/json"}
    values = {
        host: {t: [float((t // 60 + i * 7 + n) % 50) for i in range(5)] for t in range(START_S, END_S, 600)}
        for n, host in enumerate(HOSTS)
    }
    series = [
        {"metric": "api.latency", "host": host, "points": [[t, v] for t, v in points.items()]}
        for host, points in values.items()
    ]
    response = httpx.post(
        server.url + "/api/v1/distribution_points", json={"series": series}, headers=headers
    )
    assert response.status_code == 202, response.text
    time.sleep(1.2)

    def quantile(samples: list[float], q: float) -> float:
        ordered = sorted(samples)
        position = q * (len(ordered) - 1)
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    body = timeseries(
        [metric("p95:api.latency{*}", "p"), metric("avg:api.latency{*} by {host}", "a")], interval=600_000
    )
    response = post(server, org, "/api/v2/query/timeseries", body)
    assert response.status_code == 200, response.text
    p95, by_host = by_time(response.json(), 0), response.json()["data"]["attributes"]
    for t in range(START_S, END_S, 600):
        everything = [v for host in HOSTS for v in values[host][t]]
        assert p95[t * 1000] == pytest.approx(quantile(everything, 0.95))
    assert [s["group_tags"] for s in by_host["series"][1:]] == [["host:db-1"], ["host:web-1"], ["host:web-2"]]
    for row, host in enumerate(["db-1", "web-1", "web-2"], start=1):
        assert by_host["values"][row] == pytest.approx(
            [sum(values[host][t]) / 5 for t in range(START_S, END_S, 600)]
        )
    # A percentile of a gauge is refused with what to do instead.
    response = post(server, org, "/api/v2/query/timeseries", timeseries([metric("p95:system.load.5{*}")]))
    assert response.status_code == 400 and "distribution" in response.json()["errors"][0]


def test_group_by_every_tag(server: RunningServer, org: dict[str, Any]) -> None:
    """`by {*}`: each series its own group, its group tags all of its tags."""
    body = timeseries(
        [metric("avg:system.load.5{*} by {*}"), metric("sum:system.load.5{*} by {host}", "b")],
        ["a", "a - b"],
        interval=60_000,
    )
    response = post(server, org, "/api/v2/query/timeseries", body)
    assert response.status_code == 200, response.text
    attrs = response.json()["data"]["attributes"]
    tags = {
        "db-1": ["env:staging", "host:db-1", "role:db"],
        "web-1": ["env:prod", "host:web-1"],
        "web-2": ["env:prod", "host:web-2"],
    }
    # Rows ordered by their labels, key by key (env, then host, then role).
    order = ["web-1", "web-2", "db-1"]
    assert [(s["group_tags"], s["query_index"]) for s in attrs["series"]] == [
        (tags[h], i) for i in (0, 1) for h in order
    ]
    for row, host in enumerate(order):
        assert by_time(response.json(), row) == {
            t * 1000: load(host, t) for t in range(START_S, END_S, STEP_S)
        }
        # Matched with the by {host} query on the key they share.
        assert set(by_time(response.json(), row + 3).values()) == {0.0}
    scalar = {
        "data": {
            "type": "scalar_request",
            "attributes": {
                "from": START_S * 1000,
                "to": END_S * 1000,
                "queries": [{**metric("max:system.load.5{*} by {*}"), "aggregator": "max"}],
            },
        }
    }
    response = post(server, org, "/api/v2/query/scalar", scalar)
    assert response.status_code == 200, response.text
    env, host, role, value = response.json()["data"]["attributes"]["columns"]
    assert (env["name"], host["name"], role["name"]) == ("env", "host", "role")
    assert host["values"] == [["db-1"], ["web-2"], ["web-1"]]
    assert env["values"] == [["staging"], ["prod"], ["prod"]]
    assert role["values"] == [["db"], ["N/A"], ["N/A"]]
    assert value["values"] == [
        max(load(h, t) for t in range(START_S, END_S, STEP_S)) for h in ("db-1", "web-2", "web-1")
    ]


def test_count_by_value_counts_the_values_passing_the_filter(
    server: RunningServer, org: dict[str, Any]
) -> None:
    """`count(v: v<=20):` counts the raw values of a distribution at most 20: the latency SLO pattern,
    the good values over `count:` (all of them)."""
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "Content-Type": "application/json"}
    values = {
        host: {
            t: [float((t // 60 + i * 11 + 3 * n) % 40) for i in range(1 + n)]
            for t in range(START_S, END_S, 300)
        }
        for n, host in enumerate(HOSTS)
    }
    series = [
        {"metric": "api.wait", "host": host, "points": [[t, v] for t, v in points.items()]}
        for host, points in values.items()
    ]
    response = httpx.post(
        server.url + "/api/v1/distribution_points", json={"series": series}, headers=headers
    )
    assert response.status_code == 202, response.text
    time.sleep(1.2)
    body = timeseries(
        [
            metric("count(v: v<=20):api.wait{*} by {host}", "good"),
            metric("count:api.wait{*} by {host}", "all"),
            metric("count(v: v>35):api.wait{host:db-1}", "slow"),
        ],
        ["good", "good / all * 100", "slow"],
        interval=300_000,
    )
    response = post(server, org, "/api/v2/query/timeseries", body)
    assert response.status_code == 200, response.text
    attrs = response.json()["data"]["attributes"]
    assert [s["group_tags"] for s in attrs["series"]] == [
        ["host:db-1"],
        ["host:web-1"],
        ["host:web-2"],
    ] * 2 + [[]]
    assert all(s["unit"] is None for s in attrs["series"])  # counts of values have no unit
    for row, host in enumerate(["db-1", "web-1", "web-2"]):
        good = {t * 1000: float(sum(v <= 20 for v in vs)) for t, vs in values[host].items()}
        assert by_time(response.json(), row) == good
        share = by_time(response.json(), row + 3)
        assert share == {t: pytest.approx(good[t] / len(values[host][t // 1000]) * 100) for t in good}
    slow = by_time(response.json(), 6)
    assert slow == {t * 1000: float(sum(v > 35 for v in vs)) for t, vs in values["db-1"].items()}
