"""Product Analytics queries over HTTP against ground truth computed here, in plain Python."""

from __future__ import annotations

import itertools
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from bench.data import default_shape, events
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.model_utils import validate_and_convert_types
from datadog_api_client.v2.api.product_analytics_api import ProductAnalyticsApi
from datadog_api_client.v2.model.product_analytics_analytics_request import ProductAnalyticsAnalyticsRequest

from tests.serverproc import RunningServer, provision, sextant

DAY = 86_400_000
BASE = "/api/v2/product-analytics/analytics"
MISSING = "N/A"


class Dataset:
    def __init__(
        self, server: RunningServer, org: dict[str, Any], docs: list[dict[str, Any]], end: int
    ) -> None:
        self.server = server
        self.org = org
        self.docs = docs
        self.start = end - 8 * DAY
        self.end = end

    @property
    def headers(self) -> dict[str, str]:
        return {
            "DD-API-KEY": self.org["keys"]["dd_api_key"],
            "DD-APPLICATION-KEY": self.org["keys"]["dd_app_key"],
        }

    def post(self, endpoint: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.post(
            self.server.url + f"{BASE}/{endpoint}", json=body, headers=headers or self.headers, timeout=60
        )

    def request(
        self, query: dict[str, Any], kind: str = "formula_analytics_extended_request", **times: int
    ) -> dict[str, Any]:
        return {
            "data": {
                "type": kind,
                "attributes": {
                    "from": times.get("start", self.start),
                    "to": times.get("end", self.end),
                    "query": query,
                },
            }
        }

    def ok(self, endpoint: str, query: dict[str, Any]) -> dict[str, Any]:
        kind = (
            "formula_analytics_extended_list_request"
            if endpoint == "list"
            else "formula_analytics_extended_request"
        )
        response = self.post(endpoint, self.request(query, kind))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        body: dict[str, Any] = response.json()
        assert (
            body["meta"]["status"] == "done"
            and body["meta"]["request_id"] == response.headers["x-request-id"]
        )
        return body


def get(doc: dict[str, Any], path: str) -> Any:
    """A nested value by dotted path (None when absent): independent of the store's flattening."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def search(**equal: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda d: all(get(d, path.replace("__", ".")) == value for path, value in equal.items())


@pytest.fixture(scope="module")
def data(server: RunningServer) -> Dataset:
    org = provision(server.data_dir, "analytics")
    end = int(time.time() * 1000) - 1000
    docs = events(default_shape(3000, end_ms=end - 1000, days=7, seed=11), org["application_id"])
    # A few events lacking the facets (missing groups) and carrying an array facet.
    for i in range(25):
        docs.append(
            {
                "application": {"id": org["application_id"]},
                "event": {"name": "page.viewed"},
                "type": "server",
                "usr": {"id": f"lonely-{i % 4}"},
                "amount": float(i),
                "date": end - 2000 - i * 3_600_000,
                "tags": ["red", "blue"] if i % 2 else ["red"],
            }
        )
    key = {"DD-API-KEY": org["keys"]["dd_api_key"]}
    with httpx.Client(timeout=60) as client:
        for i in range(0, len(docs), 500):
            response = client.post(server.url + "/api/v2/prodlytics", json=docs[i : i + 500], headers=key)
            assert response.status_code == 202, response.text
    dataset = Dataset(server, org, docs, end)
    # Acknowledged events become queryable within a second (the loader moves them into the store).
    deadline = time.monotonic() + 1.0
    while scalar_table(dataset.ok("scalar", count_query()))[0][1] < len(docs):
        assert time.monotonic() < deadline, "acknowledged events were not queryable within one second"
        time.sleep(0.02)
    return dataset


def in_range(d: dict[str, Any], data: Dataset) -> bool:
    return data.start <= d["date"] < data.end


def scalar_table(body: dict[str, Any]) -> list[tuple[tuple[str, ...], Any]]:
    assert body["data"]["type"] == "scalar_response"
    columns = body["data"]["attributes"]["columns"]
    groups = [c for c in columns if c["type"] == "group"]
    number = columns[-1]
    assert number["type"] == "number" and number["name"] == "query"
    return [(tuple(g["values"][i][0] for g in groups), v) for i, v in enumerate(number["values"])]


def count_query(search_text: str = "*", **extra: Any) -> dict[str, Any]:
    return {
        "query": {"data_source": "product_analytics", "search": {"query": search_text}},
        "compute": {"aggregation": "count"},
        **extra,
    }


# --- aggregations -----------------------------------------------------------------------------------------


def test_count_all_and_filtered(data: Dataset) -> None:
    assert scalar_table(data.ok("scalar", count_query()))[0][1] == len(data.docs)
    expected = sum(
        1
        for d in data.docs
        if get(d, "event.name") == "payment.processed" and get(d, "customer.tier") == "premium"
    )
    body = data.ok("scalar", count_query("@event.name:payment.processed @customer.tier:premium"))
    assert scalar_table(body) == [((), expected)]
    assert expected > 0


def measure_values(data: Dataset, path: str = "amount") -> list[float]:
    return [
        get(d, path)
        for d in data.docs
        if isinstance(get(d, path), int | float) and not isinstance(get(d, path), bool)
    ]


@pytest.mark.parametrize(
    ("aggregation", "truth"),
    [
        ("sum", lambda xs: sum(xs)),
        ("avg", lambda xs: sum(xs) / len(xs)),
        ("min", min),
        ("max", max),
        ("median", lambda xs: float(np.percentile(xs, 50))),
        ("pc75", lambda xs: float(np.percentile(xs, 75))),
        ("pc90", lambda xs: float(np.percentile(xs, 90))),
        ("pc95", lambda xs: float(np.percentile(xs, 95))),
        ("pc98", lambda xs: float(np.percentile(xs, 98))),
        ("pc99", lambda xs: float(np.percentile(xs, 99))),
        ("pc99.9", lambda xs: float(np.percentile(xs, 99.9))),
    ],
)
def test_numeric_aggregations(data: Dataset, aggregation: str, truth: Callable[[list[float]], float]) -> None:
    body = data.ok("scalar", {**count_query(), "compute": {"aggregation": aggregation, "metric": "@amount"}})
    value = scalar_table(body)[0][1]
    assert math.isclose(value, truth(measure_values(data)), rel_tol=0.01)


def test_cardinality_is_exact(data: Dataset) -> None:
    body = data.ok(
        "scalar", {**count_query(), "compute": {"aggregation": "cardinality", "metric": "@usr.id"}}
    )
    assert scalar_table(body)[0][1] == len({get(d, "usr.id") for d in data.docs})
    body = data.ok(
        "scalar", {**count_query(), "compute": {"aggregation": "cardinality", "metric": "@geo.country"}}
    )
    assert scalar_table(body)[0][1] == len({get(d, "geo.country") for d in data.docs} - {None})


# --- group by -----------------------------------------------------------------------------------------------


def ranked(counter: Counter[Any], limit: int, descending: bool = True) -> list[tuple[Any, int]]:
    items = sorted(counter.items(), key=lambda kv: ((-kv[1] if descending else kv[1]), kv[0]))
    return items[:limit]


def test_group_by_top_n_with_missing_group(data: Dataset) -> None:
    counts = Counter(get(d, "geo.country") or MISSING for d in data.docs)
    body = data.ok("scalar", count_query(group_by=[{"facet": "@geo.country", "limit": 4}]))
    assert scalar_table(body) == [((k,), v) for k, v in ranked(counts, 4)]
    ascending = data.ok(
        "scalar",
        count_query(
            group_by=[{"facet": "@geo.country", "limit": 3, "sort": {"aggregation": "count", "order": "asc"}}]
        ),
    )
    assert scalar_table(ascending) == [((k,), v) for k, v in ranked(counts, 3, descending=False)]
    assert (MISSING,) in [
        k
        for k, _ in scalar_table(
            data.ok("scalar", count_query(group_by=[{"facet": "@geo.country", "limit": 100}]))
        )
    ]


def test_should_exclude_missing(data: Dataset) -> None:
    body = data.ok(
        "scalar",
        count_query(group_by=[{"facet": "@geo.country", "limit": 100, "should_exclude_missing": True}]),
    )
    counts = Counter(get(d, "geo.country") for d in data.docs if get(d, "geo.country") is not None)
    assert sorted(scalar_table(body)) == sorted(((k,), v) for k, v in counts.items())


def test_nested_group_by_ranks_within_each_parent(data: Dataset) -> None:
    body = data.ok(
        "scalar",
        count_query(
            group_by=[
                {"facet": "@geo.country", "limit": 3, "should_exclude_missing": True},
                {"facet": "@customer.tier", "limit": 2},
            ]
        ),
    )
    countries = Counter(get(d, "geo.country") for d in data.docs if get(d, "geo.country"))
    expected = []
    for country, _ in ranked(countries, 3):
        tiers = Counter(
            get(d, "customer.tier") or MISSING for d in data.docs if get(d, "geo.country") == country
        )
        expected += [((country, tier), n) for tier, n in ranked(tiers, 2)]
    assert scalar_table(body) == expected
    assert [c["name"] for c in body["data"]["attributes"]["columns"]] == [
        "@geo.country",
        "@customer.tier",
        "query",
    ]


def test_sort_by_another_aggregation(data: Dataset) -> None:
    body = data.ok(
        "scalar",
        {
            **count_query(),
            "group_by": [
                {
                    "facet": "@customer.tier",
                    "limit": 2,
                    "should_exclude_missing": True,
                    "sort": {"aggregation": "sum", "metric": "@amount", "order": "desc"},
                },
            ],
        },
    )
    sums: defaultdict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()
    for d in data.docs:
        if get(d, "customer.tier"):
            sums[get(d, "customer.tier")] += get(d, "amount")
            counts[get(d, "customer.tier")] += 1
    top = sorted(sums, key=lambda t: -sums[t])[:2]
    assert scalar_table(body) == [((t,), counts[t]) for t in top]


def test_array_facet_counts_each_value(data: Dataset) -> None:
    body = data.ok("scalar", count_query("@tags:*", group_by=[{"facet": "@tags", "limit": 10}]))
    counts: Counter[str] = Counter(t for d in data.docs for t in (get(d, "tags") or []))
    assert dict(scalar_table(body)) == {(k,): v for k, v in counts.items()}


# --- timeseries -------------------------------------------------------------------------------------------


def test_timeseries_buckets_aligned_to_epoch(data: Dataset) -> None:
    body = data.ok(
        "timeseries",
        {
            **count_query(),
            "compute": {"aggregation": "count", "interval": DAY},
            "group_by": [{"facet": "@customer.tier", "limit": 2, "should_exclude_missing": True}],
        },
    )
    attributes = body["data"]["attributes"]
    assert body["data"]["type"] == "timeseries_response"
    times = attributes["times"]
    assert times[0] == data.start - data.start % DAY and all(
        b - a == DAY for a, b in itertools.pairwise(times)
    )
    assert times[-1] < data.end <= times[-1] + DAY
    assert attributes["intervals"] == [
        {"milliseconds": DAY, "start_time": times[0], "times": times, "type": "fixed"}
    ]
    tiers = Counter(get(d, "customer.tier") for d in data.docs if get(d, "customer.tier"))
    top = [t for t, _ in ranked(tiers, 2)]
    assert [s["group_tags"] for s in attributes["series"]] == [[f"@customer.tier:{t}"] for t in top]
    assert all(s["query_index"] == 0 for s in attributes["series"])
    for tier, row in zip(top, attributes["values"], strict=True):
        per_bucket = Counter(
            d["date"] - d["date"] % DAY for d in data.docs if get(d, "customer.tier") == tier
        )
        assert row == [per_bucket.get(t, 0) for t in times]


def test_timeseries_default_interval_and_nulls_for_averages(data: Dataset) -> None:
    body = data.ok("timeseries", {**count_query(), "compute": {"aggregation": "avg", "metric": "@amount"}})
    attributes = body["data"]["attributes"]
    interval = attributes["intervals"][0]
    # 8 days in about 150 points: the smallest round interval of at least 8 days / 150 is 1 hour... or more.
    assert interval["type"] == "auto" and interval["milliseconds"] == 3_600_000 * 2
    assert len(attributes["times"]) <= 150
    assert None in attributes["values"][0]  # buckets with no events are null for averages
    by_bucket: defaultdict[int, list[float]] = defaultdict(list)
    for d in data.docs:
        by_bucket[d["date"] - d["date"] % interval["milliseconds"]].append(d["amount"])
    for t, v in zip(attributes["times"], attributes["values"][0], strict=True):
        if t in by_bucket:
            assert math.isclose(v, sum(by_bucket[t]) / len(by_bucket[t]), rel_tol=1e-9)
        else:
            assert v is None


# --- occurrences and audiences ----------------------------------------------------------------------------


def users_with(data: Dataset, pred: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {get(d, "usr.id") for d in data.docs if pred(d) and get(d, "usr.id")}


@pytest.mark.parametrize(
    ("operator", "test"),
    [(">=", lambda n: n >= 3), ("gt", lambda n: n > 3), ("<", lambda n: n < 2), ("=", lambda n: n == 1)],
)
def test_occurrences(data: Dataset, operator: str, test: Callable[[int], bool]) -> None:
    selected = [d for d in data.docs if get(d, "event.name") == "payment.processed"]
    per_user = Counter(get(d, "usr.id") for d in selected)
    qualifying = {u for u, n in per_user.items() if test(n)}
    query = {
        "query": {
            "data_source": "product_analytics_occurrence",
            "search": {
                "query": "@event.name:payment.processed",
                "occurrences": {
                    "operator": operator,
                    "value": "3" if operator in (">=", "gt") else ("2" if operator == "<" else "1"),
                },
            },
        },
        "compute": {"aggregation": "cardinality", "metric": "@usr.id"},
    }
    assert scalar_table(data.ok("scalar", query))[0][1] == len(qualifying)
    counted = {**query, "compute": {"aggregation": "count"}}
    assert scalar_table(data.ok("scalar", counted))[0][1] == sum(per_user[u] for u in qualifying)


def test_audience_users_accounts_segments_and_formula(data: Dataset) -> None:
    premium = users_with(data, search(customer__tier="premium"))
    payers = users_with(data, search(event__name="payment.processed"))
    big_accounts = {
        get(d, "account.id") for d in data.docs if get(d, "account.id") in ("account-0", "account-1")
    }
    segment_users = [*sorted(premium)[:5], "nobody"]
    created = httpx.post(
        data.server.url + "/api/v2/sextant/segments",
        headers=data.headers,
        json={"name": "vip", "user_ids": segment_users},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    segment_id = created.json()["id"]
    audience = {
        "users": [
            {"name": "premium", "query": "@customer.tier:premium"},
            {"name": "payers", "query": "@event.name:payment.processed"},
        ],
        "accounts": [{"name": "big", "query": "@account.id:(account-0 OR account-1)"}],
        "segments": [{"name": "vip", "segment_id": segment_id}],
    }
    cases: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        ("premium AND NOT payers", lambda d: get(d, "usr.id") in premium and get(d, "usr.id") not in payers),
        ("premium OR payers", lambda d: get(d, "usr.id") in premium | payers),
        ("vip", lambda d: get(d, "usr.id") in segment_users),
        (
            "big AND (vip OR payers)",
            lambda d: (
                get(d, "account.id") in big_accounts and get(d, "usr.id") in set(segment_users) | payers
            ),
        ),
        (
            "",
            lambda d: (
                get(d, "usr.id") in premium
                and get(d, "usr.id") in payers
                and get(d, "account.id") in big_accounts
                and get(d, "usr.id") in segment_users
            ),
        ),
    ]
    for formula, keep in cases:
        body = data.ok("scalar", count_query(audience_filters={**audience, "formula": formula}))
        assert scalar_table(body)[0][1] == sum(1 for d in data.docs if keep(d)), formula


# --- list ---------------------------------------------------------------------------------------------------


def test_list_newest_first_with_columns_and_total(data: Dataset) -> None:
    body = data.ok(
        "list",
        {
            "query": {"data_source": "product_analytics", "search": {"query": "@customer.tier:pro"}},
            "columns": ["@geo.country", "@amount", "@usr.id"],
            "limit": 7,
        },
    )
    matching = sorted((d for d in data.docs if get(d, "customer.tier") == "pro"), key=lambda d: -d["date"])
    attributes = body["data"]["attributes"]
    assert body["data"]["type"] == "list_response"
    assert attributes["total_count"] == len(matching)
    records = attributes["records"]
    assert [r["timestamp"] for r in records] == [d["date"] for d in matching[:7]]
    assert [(r["@geo.country"], r["@amount"], r["@usr.id"]) for r in records] == [
        (get(d, "geo.country"), get(d, "amount"), get(d, "usr.id")) for d in matching[:7]
    ]


def test_list_sorted_by_a_facet(data: Dataset) -> None:
    body = data.ok(
        "list",
        {
            "query": {"data_source": "product_analytics", "search": {"query": "*"}},
            "columns": ["@amount"],
            "limit": 5,
            "sort": {"facet": "@amount", "order": "asc"},
        },
    )
    assert [r["@amount"] for r in body["data"]["attributes"]["records"]] == sorted(measure_values(data))[:5]


# --- the official client ----------------------------------------------------------------------------------


def test_official_client_parses_scalar_and_timeseries(data: Dataset) -> None:
    configuration = Configuration(host=data.server.url)
    configuration.api_key["apiKeyAuth"] = data.org["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = data.org["keys"]["dd_app_key"]
    query = count_query(
        "@event.name:checkout.completed",
        group_by=[{"facet": "@geo.country", "limit": 3, "should_exclude_missing": True}],
    )
    expected = ranked(
        Counter(
            get(d, "geo.country")
            for d in data.docs
            if get(d, "event.name") == "checkout.completed" and get(d, "geo.country")
        ),
        3,
    )
    with ApiClient(configuration) as client:
        api = ProductAnalyticsApi(client)
        # The client's own deserializer builds its request model from the JSON a user would write.
        body = validate_and_convert_types(
            data.request(query), (ProductAnalyticsAnalyticsRequest,), ["body"], True, True, configuration
        )
        scalar = api.query_product_analytics_scalar(body=body)
        columns = scalar.data.attributes.columns
        assert [list(v) for v in columns[0].values] == [[k] for k, _ in expected]
        assert list(columns[1].values) == [n for _, n in expected]
        series = api.query_product_analytics_timeseries(body=body)
        assert str(series.data.type) == "timeseries_response"
        assert [list(s.group_tags) for s in series.data.attributes.series] == [
            [f"@geo.country:{k}"] for k, _ in expected
        ]
        assert [sum(v) for v in series.data.attributes.values] == [n for _, n in expected]


# --- isolation and errors ---------------------------------------------------------------------------------


def test_other_organizations_see_nothing(data: Dataset, globex: dict[str, Any]) -> None:
    headers = {"DD-API-KEY": globex["keys"]["dd_api_key"], "DD-APPLICATION-KEY": globex["keys"]["dd_app_key"]}
    response = data.post("scalar", data.request(count_query("@usr.id:*")), **headers)
    assert response.status_code == 200
    assert scalar_table(response.json()) == [((), 0)]
    listed = data.post(
        "list",
        data.request(
            {"query": {"data_source": "product_analytics", "search": {"query": "*"}}},
            "formula_analytics_extended_list_request",
        ),
        **headers,
    )
    assert listed.json()["data"]["attributes"] == {"records": [], "total_count": 0}


def test_auth_errors(data: Dataset, acme: dict[str, Any]) -> None:
    body = data.request(count_query())
    cases = [
        ({}, 401),
        ({"DD-API-KEY": data.org["keys"]["dd_api_key"]}, 401),
        ({"DD-APPLICATION-KEY": data.org["keys"]["dd_app_key"]}, 401),
        ({"DD-API-KEY": data.org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": "0" * 40}, 403),
        ({"DD-API-KEY": "0" * 32, "DD-APPLICATION-KEY": data.org["keys"]["dd_app_key"]}, 403),
        (
            {
                "DD-API-KEY": data.org["keys"]["dd_api_key"],
                "DD-APPLICATION-KEY": data.org["keys"]["dd_api_key"],
            },
            403,
        ),
        (
            {"DD-API-KEY": acme["keys"]["dd_api_key"], "DD-APPLICATION-KEY": data.org["keys"]["dd_app_key"]},
            403,
        ),
        ({"Authorization": "Bearer " + "1" * 40}, 403),
    ]
    for headers, status in cases:
        response = httpx.post(data.server.url + f"{BASE}/scalar", json=body, headers=headers, timeout=30)
        assert response.status_code == status, (headers, response.text)
        errors = response.json()["errors"]
        assert isinstance(errors, list) and all(isinstance(e, str) for e in errors) and errors
    bearer = httpx.post(
        data.server.url + f"{BASE}/scalar",
        json=body,
        timeout=30,
        headers={"Authorization": "Bearer " + data.org["keys"]["dd_app_key"]},
    )
    assert bearer.status_code == 200


def attrs(query: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {"from": 1, "to": 2, "query": query, **overrides}


BAD_REQUESTS: list[tuple[str, Any, str]] = [
    ("not json", b"{", "not valid JSON"),
    ("no data", {}, "Object missing required field `data`"),
    (
        "wrong type",
        {"data": {"type": "scalar_request", "attributes": attrs(count_query())}},
        "data.type must be 'formula_analytics_extended_request'",
    ),
    (
        "from after to",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(count_query(), **{"from": 5, "to": 5}),
            }
        },
        "from (5) must be less than to (5)",
    ),
    (
        "missing compute",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs({"query": {"data_source": "product_analytics", "search": {}}}),
            }
        },
        "missing required field `compute`",
    ),
    (
        "unknown data source",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    {**count_query(), "query": {"data_source": "logs", "search": {"query": "*"}}}
                ),
            }
        },
        "unknown data_source 'logs'",
    ),
    (
        "two indexes",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs({**count_query(), "indexes": ["a", "b"]}),
            }
        },
        "at most one index",
    ),
    (
        "unknown aggregation",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs({**count_query(), "compute": {"aggregation": "mode", "metric": "@a"}}),
            }
        },
        "unknown aggregation 'mode'",
    ),
    (
        "missing metric",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs({**count_query(), "compute": {"aggregation": "avg"}}),
            }
        },
        "needs a metric",
    ),
    (
        "bad percentile",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs({**count_query(), "compute": {"aggregation": "pc0", "metric": "@a"}}),
            }
        },
        "between pc0 and pc100",
    ),
    (
        "bad occurrence operator",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    {
                        **count_query(),
                        "query": {
                            "data_source": "product_analytics_occurrence",
                            "search": {"query": "*", "occurrences": {"operator": "!=", "value": "1"}},
                        },
                    }
                ),
            }
        },
        "unknown occurrences.operator '!='",
    ),
    (
        "occurrence value",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    {
                        **count_query(),
                        "query": {
                            "data_source": "product_analytics_occurrence",
                            "search": {"query": "*", "occurrences": {"operator": ">", "value": "many"}},
                        },
                    }
                ),
            }
        },
        "occurrences.value must be a whole number",
    ),
    (
        "missing occurrences",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    {
                        **count_query(),
                        "query": {"data_source": "product_analytics_occurrence", "search": {"query": "*"}},
                    }
                ),
            }
        },
        "needs search.occurrences",
    ),
    (
        "unknown formula name",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    count_query(
                        audience_filters={"users": [{"name": "u", "query": "*"}], "formula": "u AND v"}
                    )
                ),
            }
        },
        "names 'v', which is not defined",
    ),
    (
        "segment not uuid",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    count_query(audience_filters={"segments": [{"name": "s", "segment_id": "abc"}]})
                ),
            }
        },
        "is not a UUID",
    ),
    (
        "unknown segment",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    count_query(
                        audience_filters={
                            "segments": [{"name": "s", "segment_id": "00000000-0000-4000-8000-000000000000"}]
                        }
                    )
                ),
            }
        },
        "does not exist",
    ),
    (
        "duplicate audience name",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    count_query(
                        audience_filters={
                            "users": [{"name": "u", "query": "*"}],
                            "accounts": [{"name": "u", "query": "*"}],
                        }
                    )
                ),
            }
        },
        "used twice",
    ),
    (
        "group limits product",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(
                    count_query(group_by=[{"facet": "@a", "limit": 200}, {"facet": "@b", "limit": 51}])
                ),
            }
        },
        "product of group_by limits is 10200",
    ),
    (
        "group limit zero",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(count_query(group_by=[{"facet": "@a", "limit": 0}])),
            }
        },
        "must be at least 1",
    ),
    (
        "bad search",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(count_query("@a:(x OR")),
            }
        },
        "invalid search query at position",
    ),
    (
        "bad facet",
        {
            "data": {
                "type": "formula_analytics_extended_request",
                "attributes": attrs(count_query(group_by=[{"facet": "@"}])),
            }
        },
        "is not a valid facet path",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_are_400(data: Dataset, case: str, body: Any, message: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**data.headers, "Content-Type": "application/json"}
    response = httpx.post(data.server.url + f"{BASE}/scalar", content=content, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert len(errors) == 1 and message in errors[0], errors


def test_timeseries_points_limit(data: Dataset) -> None:
    too_many = data.post(
        "timeseries", data.request({**count_query(), "compute": {"aggregation": "count", "interval": 1000}})
    )
    assert too_many.status_code == 400
    assert "the limit is 10000" in too_many.json()["errors"][0]


def test_list_limit_bounds(data: Dataset) -> None:
    for limit in (0, 1001):
        response = data.post(
            "list",
            data.request(
                {"query": {"data_source": "product_analytics", "search": {"query": "*"}}, "limit": limit},
                "formula_analytics_extended_list_request",
            ),
        )
        assert (
            response.status_code == 400 and "limit must be between 1 and 1000" in response.json()["errors"][0]
        )
    ok = data.post(
        "list",
        data.request(
            {"query": {"data_source": "product_analytics", "search": {"query": "*"}}, "limit": 1000},
            "formula_analytics_extended_list_request",
        ),
    )
    assert ok.status_code == 200 and len(ok.json()["data"]["attributes"]["records"]) == 1000


def test_segments_cli_and_http(data: Dataset, tmp_path: Any) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("user-1\nuser-2\n\nuser-2\n")
    created = json.loads(
        sextant(
            "segments",
            "create",
            "from-file",
            "--org",
            "analytics",
            "--file",
            str(ids),
            "--json",
            "--data-dir",
            str(data.server.data_dir),
        ).stdout
    )
    assert created["size"] == 2
    listed = httpx.get(data.server.url + "/api/v2/sextant/segments", headers=data.headers, timeout=30).json()[
        "data"
    ]
    assert any(s["id"] == created["id"] and s["size"] == 2 for s in listed)
    query = count_query(audience_filters={"segments": [{"name": "s", "segment_id": created["id"]}]})
    assert scalar_table(data.ok("scalar", query))[0][1] == sum(
        1 for d in data.docs if get(d, "usr.id") in ("user-1", "user-2")
    )
    deleted = httpx.delete(
        data.server.url + f"/api/v2/sextant/segments/{created['id']}", headers=data.headers, timeout=30
    )
    assert deleted.status_code == 204
    assert data.post("scalar", data.request(query)).status_code == 400


def test_daily_unique_users(data: Dataset) -> None:
    query = {**count_query(), "compute": {"aggregation": "cardinality", "metric": "@usr.id", "interval": DAY}}
    attributes = data.ok("timeseries", query)["data"]["attributes"]
    users: defaultdict[int, set[str]] = defaultdict(set)
    for d in data.docs:
        users[d["date"] - d["date"] % DAY].add(get(d, "usr.id"))
    assert attributes["values"] == [[len(users.get(t, ())) for t in attributes["times"]]]
    by_tier = data.ok("scalar", {**query, "group_by": [{"facet": "@customer.tier", "limit": 10}]})
    tiers: defaultdict[str, set[str]] = defaultdict(set)
    for d in data.docs:
        tiers[get(d, "customer.tier") or MISSING].add(get(d, "usr.id"))
    assert dict(scalar_table(by_tier)) == {(t,): len(u) for t, u in tiers.items()}


def test_an_acknowledged_event_is_queryable_within_a_second(server: RunningServer) -> None:
    org = provision(server.data_dir, "visibility")
    keys = {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}
    body = {
        "application": {"id": org["application_id"]},
        "event": {"name": "seen"},
        "type": "server",
        "usr": {"id": "visibility"},
    }
    now = int(time.time() * 1000)
    query = {
        "data": {
            "type": "formula_analytics_extended_request",
            "attributes": {"from": now - 60_000, "to": now + 60_000, "query": count_query()},
        }
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/api/v2/prodlytics", json=body, headers=keys).status_code == 202
        started = time.monotonic()
        while scalar_table(client.post(f"{BASE}/scalar", json=query, headers=keys).json())[0][1] != 1:
            assert time.monotonic() - started < 1.0, "not queryable within one second of its 202"
            time.sleep(0.01)


def test_group_by_limit_defaults_to_ten(data: Dataset) -> None:
    countries = Counter(get(d, "geo.country") or MISSING for d in data.docs)
    assert len(countries) > 10
    body = data.ok("scalar", count_query(group_by=[{"facet": "@geo.country"}]))
    assert scalar_table(body) == [((k,), v) for k, v in ranked(countries, 10)]


def test_segments_cli_list_and_delete(data: Dataset, tmp_path: Any) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("user-3\n")
    where = ("--org", "analytics", "--data-dir", str(data.server.data_dir))
    created = json.loads(
        sextant("segments", "create", "cli-made", *where, "--file", str(ids), "--json").stdout
    )
    listed = json.loads(sextant("segments", "list", *where, "--json").stdout)
    assert {"id": created["id"], "name": "cli-made", "size": 1} in [
        {k: s[k] for k in ("id", "name", "size")} for s in listed
    ]
    sextant("segments", "delete", created["id"], *where)
    assert created["id"] not in [
        s["id"] for s in json.loads(sextant("segments", "list", *where, "--json").stdout)
    ]
    missing = sextant("segments", "delete", created["id"], *where, check=False)
    assert missing.returncode == 1 and "no segment" in missing.stderr
