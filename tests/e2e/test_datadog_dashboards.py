"""`/api/v1/dashboard` on a real server: the official DashboardsApi, exact round trips, every refusal.

Tests share the session's server and its `acme` / `globex` organizations, so each one finds its dashboards
by the ids it created; tests that count dashboards use an organization of their own.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ForbiddenException, NotFoundException, UnauthorizedException
from datadog_api_client.model_utils import data_to_dict
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.dashboard_bulk_action_data import DashboardBulkActionData
from datadog_api_client.v1.model.dashboard_bulk_action_data_list import DashboardBulkActionDataList
from datadog_api_client.v1.model.dashboard_bulk_delete_request import DashboardBulkDeleteRequest
from datadog_api_client.v1.model.dashboard_layout_type import DashboardLayoutType
from datadog_api_client.v1.model.dashboard_resource_type import DashboardResourceType
from datadog_api_client.v1.model.dashboard_restore_request import DashboardRestoreRequest
from datadog_api_client.v1.model.formula_and_function_metric_aggregation import (
    FormulaAndFunctionMetricAggregation,
)
from datadog_api_client.v1.model.formula_and_function_metric_data_source import (
    FormulaAndFunctionMetricDataSource,
)
from datadog_api_client.v1.model.formula_and_function_metric_query_definition import (
    FormulaAndFunctionMetricQueryDefinition,
)
from datadog_api_client.v1.model.formula_and_function_response_format import FormulaAndFunctionResponseFormat
from datadog_api_client.v1.model.query_sort_order import QuerySortOrder
from datadog_api_client.v1.model.timeseries_widget_definition import TimeseriesWidgetDefinition
from datadog_api_client.v1.model.timeseries_widget_definition_type import TimeseriesWidgetDefinitionType
from datadog_api_client.v1.model.timeseries_widget_request import TimeseriesWidgetRequest
from datadog_api_client.v1.model.toplist_widget_definition import ToplistWidgetDefinition
from datadog_api_client.v1.model.toplist_widget_definition_type import ToplistWidgetDefinitionType
from datadog_api_client.v1.model.toplist_widget_request import ToplistWidgetRequest
from datadog_api_client.v1.model.widget import Widget
from datadog_api_client.v1.model.widget_display_type import WidgetDisplayType
from datadog_api_client.v1.model.widget_formula import WidgetFormula
from datadog_api_client.v1.model.widget_formula_limit import WidgetFormulaLimit

from tests.serverproc import RunningServer, provision, sextant, start_server

PATH = "/api/v1/dashboard"
MIB = 1024 * 1024
ID_SHAPE = re.compile(r"[a-z0-9]{3}-[a-z0-9]{3}-[a-z0-9]{3}")
SERVER_FIELDS = ("id", "author_handle", "author_name", "created_at", "modified_at", "url")
# What Datadog answers for the documented fields a client did not send.
DEFAULTS: dict[str, Any] = {
    "description": None,
    "is_read_only": False,
    "template_variables": None,
    "notify_list": None,
    "restricted_roles": [],
}


def headers(org: dict[str, Any]) -> dict[str, str]:
    return {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}


def call(
    server: RunningServer, org: dict[str, Any] | None, method: str, path: str = PATH, **kwargs: Any
) -> httpx.Response:
    sent = {**(headers(org) if org else {}), **kwargs.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=sent, timeout=30, **kwargs)


def created(server: RunningServer, org: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = call(server, org, "POST", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """`status` with Datadog's query-API error body: exactly one message, holding every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    message: str = body["errors"][0]
    for fragment in fragments:
        assert fragment in message, message
    return message


def slug(title: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9\s-]", "", title.lower()).split())


@pytest.fixture
def api(server: RunningServer, acme: dict[str, Any]) -> Iterator[DashboardsApi]:
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = acme["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = acme["keys"]["dd_app_key"]
    with ApiClient(configuration) as client:
        yield DashboardsApi(client)


def seed_dashboard(title: str) -> Dashboard:
    """The seed's graphs (`per_hour`, `week_before`, a toplist with a limit, a legacy `q`), built with the
    official client's models as a script would."""
    load = FormulaAndFunctionMetricQueryDefinition(
        data_source=FormulaAndFunctionMetricDataSource.METRICS,
        name="query1",
        query="avg:system.load.5{*} by {host}",
    )
    timeseries = TimeseriesWidgetDefinition(
        type=TimeseriesWidgetDefinitionType.TIMESERIES,
        title="Load per hour and a week ago",
        requests=[
            TimeseriesWidgetRequest(
                queries=[load],
                formulas=[
                    WidgetFormula(formula="per_hour(query1)"),
                    WidgetFormula(formula="week_before(query1)", alias="last week"),
                ],
                response_format=FormulaAndFunctionResponseFormat.TIMESERIES,
                display_type=WidgetDisplayType.LINE,
            )
        ],
    )
    toplist = ToplistWidgetDefinition(
        type=ToplistWidgetDefinitionType.TOPLIST,
        title="Busiest databases",
        requests=[
            ToplistWidgetRequest(
                queries=[
                    FormulaAndFunctionMetricQueryDefinition(
                        data_source=FormulaAndFunctionMetricDataSource.METRICS,
                        name="query1",
                        query="avg:system.load.5{role:db} by {host}",
                        aggregator=FormulaAndFunctionMetricAggregation.AVG,
                    )
                ],
                formulas=[
                    WidgetFormula(
                        formula="query1", limit=WidgetFormulaLimit(count=10, order=QuerySortOrder.DESC)
                    )
                ],
                response_format=FormulaAndFunctionResponseFormat.SCALAR,
            )
        ],
    )
    legacy = TimeseriesWidgetDefinition(
        type=TimeseriesWidgetDefinitionType.TIMESERIES,
        requests=[TimeseriesWidgetRequest(q="metric{apples} / metric{oranges}")],
    )
    return Dashboard(
        title=title,
        layout_type=DashboardLayoutType.ORDERED,
        description="Graphs from the seed",
        widgets=[Widget(definition=timeseries), Widget(definition=toplist), Widget(definition=legacy)],
    )


def assert_stored_as_sent(got: dict[str, Any], sent: dict[str, Any]) -> None:
    """`got` is `sent` with Datadog's defaults and the server's fields, and an id on every widget."""
    assert ID_SHAPE.fullmatch(got["id"]), got["id"]
    assert got["url"] == f"/dashboard/{got['id']}/{slug(sent['title'])}"
    assert got["author_handle"].startswith("key_") and got["author_name"] is None
    for field in ("created_at", "modified_at"):
        assert datetime.fromisoformat(got[field]).utcoffset() is not None
    widget_ids = [w["id"] for w in got["widgets"]]
    assert all(isinstance(i, int) and 0 < i < 2**53 for i in widget_ids) and len(set(widget_ids)) == len(
        widget_ids
    )
    expected = {**DEFAULTS, **sent}
    expected["widgets"] = [
        {**w, "id": got_w["id"]} for w, got_w in zip(sent["widgets"], got["widgets"], strict=True)
    ]
    assert {k: v for k, v in got.items() if k not in SERVER_FIELDS} == expected


# The official client


def test_official_client_create_get_list_update_delete(
    server: RunningServer, acme: dict[str, Any], api: DashboardsApi
) -> None:
    title = f"Seed graphs {uuid.uuid4().hex[:8]}"
    body = seed_dashboard(title)
    sent = data_to_dict(body)

    made = api.create_dashboard(body=body)
    assert made.title == title and ID_SHAPE.fullmatch(made.id)
    assert made.widgets[0].definition.requests[0].formulas[1].formula == "week_before(query1)"
    assert made.widgets[1].definition.requests[0].formulas[0].limit.count == 10
    assert made.widgets[2].definition.requests[0].q == "metric{apples} / metric{oranges}"
    assert isinstance(made.created_at, datetime) and made.created_at == made.modified_at

    raw = call(server, acme, "GET", f"{PATH}/{made.id}").json()
    assert_stored_as_sent(raw, sent)
    got = api.get_dashboard(made.id)
    assert got.id == made.id and got.url == raw["url"] and got.to_dict() == made.to_dict()

    listed = {d.id: d for d in api.list_dashboards(filter_shared=False).dashboards}
    summary = listed[made.id]
    assert (summary.title, summary.description, summary.layout_type.value) == (
        title,
        "Graphs from the seed",
        "ordered",
    )
    assert summary.url == raw["url"] and summary.is_read_only is False
    assert summary.created_at == made.created_at and summary.author_handle == raw["author_handle"]

    # Datadog's usual edit: read, change, send back (read-only fields included), with a new widget.
    changed = api.get_dashboard(made.id)
    changed.title = f"{title} (edited)"
    changed.widgets = [*changed.widgets[:2], Widget(definition=made.widgets[2].definition)]
    updated = api.update_dashboard(made.id, body=changed)
    assert updated.title == f"{title} (edited)" and updated.url.endswith(slug(f"{title} (edited)"))
    assert [w.id for w in updated.widgets[:2]] == [w.id for w in made.widgets[:2]]
    assert updated.widgets[2].id not in {w.id for w in made.widgets}
    assert updated.created_at == made.created_at and updated.modified_at > made.modified_at
    assert updated.author_handle == made.author_handle
    assert api.get_dashboard(made.id).to_dict() == updated.to_dict()

    assert api.delete_dashboard(made.id).deleted_dashboard_id == made.id
    with pytest.raises(NotFoundException):
        api.get_dashboard(made.id)
    assert made.id not in {d.id for d in api.list_dashboards().dashboards}


def test_deleted_dashboards_are_listed_and_restored(api: DashboardsApi) -> None:
    made = api.create_dashboard(body=seed_dashboard(f"Restorable {uuid.uuid4().hex[:8]}"))
    api.delete_dashboard(made.id)
    deleted = {d.id: d for d in api.list_dashboards(filter_deleted=True).dashboards}
    assert made.id in deleted
    # The client parses the field its model does not name, as Datadog sends it.
    assert deleted[made.id]["deleted_at"] >= made.modified_at
    assert made.id not in {d.id for d in api.list_dashboards().dashboards}

    body = DashboardRestoreRequest(
        data=DashboardBulkActionDataList(
            [DashboardBulkActionData(id=made.id, type=DashboardResourceType.DASHBOARD)]
        )
    )
    api.restore_dashboards(body=body)
    assert api.get_dashboard(made.id).to_dict() == made.to_dict()
    assert made.id not in {d.id for d in api.list_dashboards(filter_deleted=True).dashboards}
    # Restoring what is not deleted changes nothing.
    api.restore_dashboards(body=body)
    assert api.get_dashboard(made.id).to_dict() == made.to_dict()


def test_bulk_delete_is_all_or_nothing(
    server: RunningServer, acme: dict[str, Any], api: DashboardsApi
) -> None:
    ids = [api.create_dashboard(body=seed_dashboard(f"Bulk {n}")).id for n in range(3)]

    def bulk(*dashboard_ids: str) -> DashboardBulkDeleteRequest:
        items = [DashboardBulkActionData(id=i, type=DashboardResourceType.DASHBOARD) for i in dashboard_ids]
        return DashboardBulkDeleteRequest(data=DashboardBulkActionDataList(items))

    with pytest.raises(NotFoundException) as refused:
        api.delete_dashboards(body=bulk(*ids, "zzz-zzz-zzz"))
    assert refused.value.body == {"errors": ["Dashboard with ID zzz-zzz-zzz not found"]}
    assert all(api.get_dashboard(i).id == i for i in ids)

    api.delete_dashboards(body=bulk(*ids))
    for i in ids:
        assert_error(call(server, acme, "GET", f"{PATH}/{i}"), 404, f"Dashboard with ID {i} not found")
    # Deleting again finds nothing to delete, as one at a time does.
    assert_error(call(server, acme, "DELETE", json={"data": [{"id": ids[0], "type": "dashboard"}]}), 404)
    assert_error(
        call(server, acme, "DELETE", f"{PATH}/{ids[0]}"), 404, f"Dashboard with ID {ids[0]} not found"
    )
    response = call(server, acme, "PATCH", json={"data": [{"id": i, "type": "dashboard"} for i in ids]})
    assert response.status_code == 204 and response.content == b""
    assert all(api.get_dashboard(i).id == i for i in ids)


def test_pagination_with_count_and_start(server: RunningServer) -> None:
    org = provision(server.data_dir, f"paging-{uuid.uuid4().hex[:8]}")
    ids = [
        created(server, org, {"title": f"Page {n}", "layout_type": "ordered", "widgets": []})["id"]
        for n in range(5)
    ]

    def listed(query: str) -> list[str]:
        response = call(server, org, "GET", f"{PATH}?{query}")
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["dashboards"]]

    assert listed("") == ids
    assert listed("count=2") == ids[:2]
    assert listed("count=2&start=2") == ids[2:4]
    assert listed("start=4") == ids[4:]
    assert listed("start=9") == []
    assert listed("count=0") == []
    assert listed("filter[shared]=true") == []

    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = org["keys"]["dd_api_key"]
    configuration.api_key["appKeyAuth"] = org["keys"]["dd_app_key"]
    with ApiClient(configuration) as client:
        pages = DashboardsApi(client).list_dashboards_with_pagination(count=2)
        assert [d.id for d in pages] == ids


# Round trips of what the client does not know


def test_unknown_fields_and_sent_widget_ids_round_trip_exactly(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    sent = {
        "title": "Ünïcode — Mixed 'stuff' & things_2",
        "layout_type": "free",
        "description": "",
        "tags": ["team:checkout"],
        "notify_list": [],
        "template_variables": [{"name": "env", "prefix": "env", "defaults": ["prod"], "future": {"x": 1}}],
        "template_variable_presets": None,
        "a_field_from_next_year": {"nested": [1, 2.5, -3e-7, None, True, "ü", {"deep": []}]},
        "widgets": [
            {
                "id": 1234567890123,
                "layout": {"x": 0, "y": 0, "width": 47, "height": 15},
                "definition": {
                    "type": "group",
                    "layout_type": "ordered",
                    "title": "Group",
                    "widgets": [
                        {
                            "definition": {
                                "type": "query_value",
                                "requests": [
                                    {
                                        "queries": [
                                            {
                                                "data_source": "logs",
                                                "name": "query1",
                                                "search": {"query": "status:error"},
                                                "indexes": ["*"],
                                                "compute": {"aggregation": "count"},
                                                "group_by": [],
                                                "unknown_query_option": 7,
                                            }
                                        ],
                                        "formulas": [
                                            {"formula": "query1 / 100", "number_format": {"unit": {}}}
                                        ],
                                        "response_format": "scalar",
                                    }
                                ],
                                "autoscale": True,
                                "precision": 2,
                            },
                            "layout": {"x": 0, "y": 0, "width": 4, "height": 2},
                        }
                    ],
                },
            },
            {
                "definition": {"type": "some_widget_sextant_never_heard_of", "anything": {"goes": [0.1]}},
                "layout": {"x": 47, "y": 0, "width": 20, "height": 15, "is_column_break": False},
            },
        ],
        # Read-only: what a client sends back after a GET; the server's values win.
        "id": "aaa-bbb-ccc",
        "author_handle": "someone@example.com",
        "created_at": "2001-01-01T00:00:00+00:00",
        "url": "/dashboard/aaa-bbb-ccc/x",
    }
    got = created(server, acme, sent)
    assert got["id"] != "aaa-bbb-ccc" and not got["created_at"].startswith("2001")
    assert got["url"] == f"/dashboard/{got['id']}/ncode-mixed-stuff-things2"
    assert got["widgets"][0]["id"] == 1234567890123
    inner = got["widgets"][0]["definition"]["widgets"][0]
    assert isinstance(inner["id"], int) and 0 < inner["id"] < 2**53

    expected = {k: v for k, v in copy.deepcopy(sent).items() if k not in SERVER_FIELDS}
    expected["widgets"][0]["definition"]["widgets"][0]["id"] = inner["id"]
    expected["widgets"][1]["id"] = got["widgets"][1]["id"]
    assert {k: v for k, v in got.items() if k not in SERVER_FIELDS} == {**DEFAULTS, **expected}
    assert call(server, acme, "GET", f"{PATH}/{got['id']}").json() == got

    # Sending back what was read keeps every widget id, nested ones included.
    again = call(server, acme, "PUT", f"{PATH}/{got['id']}", json=got)
    assert again.status_code == 200, again.text
    assert {k: v for k, v in again.json().items() if k != "modified_at"} == {
        k: v for k, v in got.items() if k != "modified_at"
    }


def test_the_seed_examples_are_accepted_as_widget_definitions(
    server: RunningServer, acme: dict[str, Any]
) -> None:
    """The seed's REQUEST_SCHEMA examples (`viz` and `requests`) placed in widget definitions."""
    seed = (
        Path(__file__).resolve().parents[3] / "shared" / "reference" / "seeds" / "002_fa40bcc19c38ab47.txt"
    ).read_text()
    examples = [json.loads(m) for m in re.findall(r'^\{\n\s+"viz".*?^\}$', seed, re.S | re.M)]
    assert len(examples) >= 3
    widgets = [{"definition": {"type": ex.pop("viz"), **ex}} for ex in examples]
    sent = {"title": "Seed graphs", "layout_type": "ordered", "reflow_type": "auto", "widgets": widgets}
    got = created(server, acme, sent)
    assert_stored_as_sent(got, sent)


def test_put_replaces_the_whole_definition(server: RunningServer, acme: dict[str, Any]) -> None:
    first = created(
        server,
        acme,
        {
            "title": "Before",
            "description": "old",
            "notify_list": ["a@b.c"],
            "layout_type": "ordered",
            "widgets": [],
        },
    )
    replacement = {
        "title": "After",
        "layout_type": "ordered",
        "widgets": [{"definition": {"type": "note", "content": "hi"}}],
    }
    response = call(server, acme, "PUT", f"{PATH}/{first['id']}", json=replacement)
    assert response.status_code == 200, response.text
    after = response.json()
    assert_stored_as_sent(after, replacement)
    assert (after["id"], after["created_at"], after["author_handle"]) == (
        first["id"],
        first["created_at"],
        first["author_handle"],
    )
    assert after["description"] is None and after["notify_list"] is None
    assert datetime.fromisoformat(after["modified_at"]) > datetime.fromisoformat(first["modified_at"])
    listed = {d["id"]: d for d in call(server, acme, "GET").json()["dashboards"]}
    assert listed[first["id"]]["title"] == "After" and listed[first["id"]]["description"] is None


# Refusals


VALID: dict[str, Any] = {"title": "t", "layout_type": "ordered", "widgets": []}
BAD_DASHBOARDS = [
    (
        "missing title",
        {"layout_type": "ordered", "widgets": []},
        ["missing required field `title`", "needs a title"],
    ),
    ("empty title", {**VALID, "title": ""}, ["length >= 1", "`$.title`"]),
    ("title not a string", {**VALID, "title": 5}, ["Expected `str`, got `int`", "`$.title`"]),
    ("missing layout_type", {"title": "t", "widgets": []}, ["missing required field `layout_type`"]),
    (
        "bad layout_type",
        {**VALID, "layout_type": "grid"},
        ["'grid'", "`$.layout_type`", "'ordered' or 'free'"],
    ),
    ("missing widgets", {"title": "t", "layout_type": "ordered"}, ["missing required field `widgets`"]),
    (
        "widgets not a list",
        {**VALID, "widgets": {"definition": {"type": "note"}}},
        ["Expected `array`", "`$.widgets`"],
    ),
    ("widget not an object", {**VALID, "widgets": ["note"]}, ["Expected `object`", "`$.widgets[0]`"]),
    ("widget without definition", {**VALID, "widgets": [{"id": 1}]}, ["`definition`", "`$.widgets[0]`"]),
    (
        "definition without type",
        {**VALID, "widgets": [{"definition": {"requests": []}}]},
        ["`type`", "`$.widgets[0].definition`"],
    ),
    (
        "inner widget without type",
        {**VALID, "widgets": [{"definition": {"type": "group", "widgets": [{"definition": {}}]}}]},
        ["`type`", "`$.widgets[0].definition.widgets[0].definition`"],
    ),
    (
        "widget id not a number",
        {**VALID, "widgets": [{"id": "1", "definition": {"type": "note"}}]},
        ["`$.widgets[0].id`"],
    ),
    (
        "free layout without widget layout",
        {**VALID, "layout_type": "free", "widgets": [{"definition": {"type": "note"}}]},
        ["Invalid widget at position 0", "'layout' is a required property", "'free'"],
    ),
    (
        "negative layout",
        {
            **VALID,
            "widgets": [
                {"definition": {"type": "note"}, "layout": {"x": -1, "y": 0, "width": 1, "height": 1}}
            ],
        },
        [">= 0", "`$.widgets[0].layout.x`", "whole numbers from 0"],
    ),
    (
        "reflow_type on a free dashboard",
        {**VALID, "layout_type": "free", "reflow_type": "auto"},
        ["only be set when layout_type is 'ordered'"],
    ),
    ("bad reflow_type", {**VALID, "reflow_type": "fluid"}, ["'fluid'", "'auto' or 'fixed'"]),
    (
        "tag without team",
        {**VALID, "tags": ["env:prod"]},
        ["Invalid tag format. Tag key must be `team`", "env:prod"],
    ),
    ("six tags", {**VALID, "tags": [f"team:t{n}" for n in range(6)]}, ["length <= 5", "`$.tags`"]),
    ("notify_list of numbers", {**VALID, "notify_list": [1]}, ["`$.notify_list[0]`"]),
    ("template variable without name", {**VALID, "template_variables": [{"prefix": "env"}]}, ["`name`"]),
]


@pytest.mark.parametrize(("case", "body", "fragments"), BAD_DASHBOARDS, ids=[c[0] for c in BAD_DASHBOARDS])
def test_invalid_dashboards_are_400(
    server: RunningServer, acme: dict[str, Any], case: str, body: dict[str, Any], fragments: list[str]
) -> None:
    before = call(server, acme, "GET").json()
    assert_error(call(server, acme, "POST", json=body), 400, *fragments)
    target = created(server, acme, VALID)["id"]
    assert_error(call(server, acme, "PUT", f"{PATH}/{target}", json=body), 400, *fragments)
    assert call(server, acme, "GET", f"{PATH}/{target}").json()["title"] == "t"
    assert len(call(server, acme, "GET").json()["dashboards"]) == len(before["dashboards"]) + 1


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b'{"title": "t", "layout_type": "ordered", "widgets": [', ["Invalid JSON", "truncated"]),
        (b"", ["Invalid JSON"]),
        (b"not json", ["Invalid JSON", "malformed"]),
        (b'[{"title": "t"}]', ["send a JSON object"]),
        (b'"dashboard"', ["send a JSON object"]),
        (json.dumps({**VALID, "deep": json.loads("[" * 40 + "]" * 40)}).encode(), ["deeper than 32"]),
        (b"[" * 100_000 + b"]" * 100_000, ["deeper than 32"]),
    ],
    ids=["truncated", "empty", "not json", "array", "string", "too deep", "far too deep"],
)
def test_undecodable_bodies_are_400(
    server: RunningServer, acme: dict[str, Any], content: bytes, fragments: list[str]
) -> None:
    sent = {"Content-Type": "application/json"}
    assert_error(call(server, acme, "POST", content=content, headers=sent), 400, *fragments)


def test_bodies_over_5_mib_are_413(server: RunningServer, acme: dict[str, Any]) -> None:
    note = {"definition": {"type": "note", "content": "x" * 1000}}
    big = json.dumps({**VALID, "widgets": [note] * (5 * 1024 + 10)}).encode()
    assert len(big) > 5 * MIB
    assert_error(call(server, acme, "POST", content=big), 413, "limit is 5242880 bytes")
    target = created(server, acme, VALID)["id"]
    assert_error(call(server, acme, "PUT", f"{PATH}/{target}", content=big), 413, "5242880")
    packed = gzip.compress(big)
    assert len(packed) < MIB
    gz = {"Content-Encoding": "gzip"}
    assert_error(call(server, acme, "POST", content=packed, headers=gz), 413, "decompressed", "5242880")
    # Just under the limit is stored.
    fits = json.dumps({**VALID, "widgets": [note] * (5 * 1024 - 200)}).encode()
    assert 5 * MIB - 300_000 < len(fits) <= 5 * MIB
    response = call(server, acme, "POST", content=gzip.compress(fits), headers=gz)
    assert response.status_code == 200, response.text
    assert len(response.json()["widgets"]) == 5 * 1024 - 200


@pytest.mark.parametrize(
    ("query", "fragments"),
    [
        ("count=-1", ["'-1'", "count", "whole number"]),
        ("count=ten", ["'ten'", "count"]),
        ("start=1.5", ["'1.5'", "start"]),
        (f"start={2**63}", ["start", "whole number"]),
        ("filter[shared]=maybe", ["'maybe'", "filter[shared]", "true or false"]),
        ("filter[deleted]=1", ["filter[deleted]", "true or false"]),
        ("filter[shared]=true&filter[deleted]=true", ["cannot be combined"]),
    ],
)
def test_bad_list_parameters_are_400(
    server: RunningServer, acme: dict[str, Any], query: str, fragments: list[str]
) -> None:
    assert_error(call(server, acme, "GET", f"{PATH}?{query}"), 400, *fragments)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({}, ["missing required field `data`"]),
        ({"data": []}, ["length >= 1"]),
        ({"data": [{"type": "dashboard"}]}, ["`id`"]),
        ({"data": [{"id": "abc-def-ghi", "type": "notebook"}]}, ["'notebook'"]),
        ({"data": [{"id": f"a{n}", "type": "dashboard"} for n in range(1001)]}, ["length <= 1000"]),
    ],
    ids=["no data", "empty", "no id", "wrong type", "over 1000"],
)
@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_bad_bulk_bodies_are_400(
    server: RunningServer, acme: dict[str, Any], method: str, body: dict[str, Any], fragments: list[str]
) -> None:
    assert_error(call(server, acme, method, json=body), 400, "Invalid request", *fragments)
    assert_error(call(server, acme, method, content=b"{"), 400, "Invalid request")


# Credentials, organizations


def test_missing_credentials_are_401(server: RunningServer, acme: dict[str, Any]) -> None:
    target = created(server, acme, VALID)["id"]
    for method, path in [
        ("GET", PATH),
        ("POST", PATH),
        ("GET", f"{PATH}/{target}"),
        ("PUT", f"{PATH}/{target}"),
        ("DELETE", f"{PATH}/{target}"),
        ("DELETE", PATH),
        ("PATCH", PATH),
    ]:
        assert_error(call(server, None, method, path, json=VALID), 401, "DD-API-KEY")
        app_only = {"DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]}
        assert_error(call(server, None, method, path, json=VALID, headers=app_only), 401, "DD-API-KEY")
    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = acme["keys"]["dd_api_key"]
    with ApiClient(configuration) as client, pytest.raises(UnauthorizedException):
        DashboardsApi(client).get_dashboard(target)
    assert call(server, acme, "GET", f"{PATH}/{target}").status_code == 200


def test_invalid_keys_and_missing_scopes_are_403(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    target = created(server, acme, VALID)["id"]
    item = f"{PATH}/{target}"
    wrong_app = {"DD-API-KEY": acme["keys"]["dd_api_key"], "DD-APPLICATION-KEY": "0" * 40}
    assert_error(call(server, None, "GET", item, headers=wrong_app), 403, "application key is not valid")
    mixed = {"DD-API-KEY": globex["keys"]["dd_api_key"], "DD-APPLICATION-KEY": acme["keys"]["dd_app_key"]}
    assert_error(call(server, None, "GET", item, headers=mixed), 403, "different organizations")

    def app_key(*scopes: str) -> dict[str, str]:
        flags = [arg for scope in scopes for arg in ("--scope", scope)]
        out = sextant(
            "keys",
            "create",
            "--org",
            "acme",
            "--kind",
            "dd_app_key",
            *flags,
            "--data-dir",
            str(server.data_dir),
            "--json",
        ).stdout
        return {"DD-API-KEY": acme["keys"]["dd_api_key"], "DD-APPLICATION-KEY": json.loads(out)["secret"]}

    metrics_only = app_key("metrics_read")
    assert_error(
        call(server, None, "GET", item, headers=metrics_only), 403, "lacks the dashboards_read scope"
    )
    assert_error(call(server, None, "GET", PATH, headers=metrics_only), 403, "dashboards_read")
    reader = app_key("dashboards_read")
    assert call(server, None, "GET", item, headers=reader).status_code == 200
    assert call(server, None, "GET", PATH, headers=reader).status_code == 200
    for method, path in [("POST", PATH), ("PUT", item), ("DELETE", item), ("DELETE", PATH), ("PATCH", PATH)]:
        body = VALID if method in ("POST", "PUT") else {"data": [{"id": target, "type": "dashboard"}]}
        assert_error(
            call(server, None, method, path, json=body, headers=reader),
            403,
            "lacks the dashboards_write scope",
        )
    assert call(server, acme, "GET", item).json()["title"] == "t"

    configuration = Configuration(host=server.url)
    configuration.api_key["apiKeyAuth"] = reader["DD-API-KEY"]
    configuration.api_key["appKeyAuth"] = reader["DD-APPLICATION-KEY"]
    with ApiClient(configuration) as client, pytest.raises(ForbiddenException):
        DashboardsApi(client).delete_dashboard(target)


def test_unknown_ids_are_404(server: RunningServer, acme: dict[str, Any]) -> None:
    for unknown in ("zzz-zzz-zzz", "public", "not-an-id-at-all"):
        item = f"{PATH}/{unknown}"
        message = f"Dashboard with ID {unknown} not found"
        assert_error(call(server, acme, "GET", item), 404, message)
        assert_error(call(server, acme, "PUT", item, json=VALID), 404, message)
        assert_error(call(server, acme, "DELETE", item), 404, message)
    assert_error(
        call(server, acme, "PATCH", json={"data": [{"id": "zzz-zzz-zzz"}, {"id": "yyy-yyy-yyy"}]}),
        404,
        "Dashboards with IDs zzz-zzz-zzz, yyy-yyy-yyy not found",
    )


def test_other_organizations_cannot_see_or_touch_a_dashboard(
    server: RunningServer, acme: dict[str, Any], globex: dict[str, Any]
) -> None:
    mine = created(server, acme, {**VALID, "title": "Acme only"})
    item = f"{PATH}/{mine['id']}"
    message = f"Dashboard with ID {mine['id']} not found"
    assert_error(call(server, globex, "GET", item), 404, message)
    assert_error(call(server, globex, "PUT", item, json={**VALID, "title": "Taken over"}), 404, message)
    assert_error(call(server, globex, "DELETE", item), 404, message)
    bulk = {"data": [{"id": mine["id"], "type": "dashboard"}]}
    assert_error(call(server, globex, "DELETE", json=bulk), 404, message)
    assert_error(call(server, globex, "PATCH", json=bulk), 404, message)
    for query in ("", "?filter[deleted]=true"):
        assert mine["id"] not in {
            d["id"] for d in call(server, globex, "GET", PATH + query).json()["dashboards"]
        }
    theirs = created(server, globex, {**VALID, "title": "Globex only"})
    assert theirs["id"] not in {d["id"] for d in call(server, acme, "GET").json()["dashboards"]}
    assert call(server, acme, "GET", item).json() == mine


def test_openapi_lists_every_route(server: RunningServer) -> None:
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert set(paths[PATH]) == {"get", "post", "delete", "patch"}
    assert set(paths[f"{PATH}/{{dashboard_id}}"]) == {"get", "put", "delete"}
    create = paths[PATH]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/DashboardDefinition"
    )
    assert {"200", "400", "401", "403", "413"} <= set(create["responses"])
    assert "404" in paths[f"{PATH}/{{dashboard_id}}"]["get"]["responses"]


# Durability and upgrades


def test_dashboards_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    try:
        default = json.loads((data_dir / "credentials.json").read_text())
        made = created(first, default, {**VALID, "title": "Kept"})
    finally:
        assert first.stop() == 0, first.errors()
    second = start_server(data_dir)
    try:
        assert call(second, default, "GET", f"{PATH}/{made['id']}").json() == made
    finally:
        assert second.stop() == 0, second.errors()


def test_an_upgraded_data_dir_gives_the_dashboard_scopes_to_all_scope_keys_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = start_server(data_dir)
    first.stop()
    default = json.loads((data_dir / "credentials.json").read_text())
    restricted = sextant(
        "keys",
        "create",
        "--org",
        "default",
        "--kind",
        "dd_app_key",
        "--scope",
        "metrics_read",
        "--data-dir",
        str(data_dir),
        "--json",
    ).stdout
    # Rewind the control database to before dashboards existed, as an older Sextant left it.
    with sqlite3.connect(data_dir / "control.sqlite3") as db:
        db.execute("DROP TABLE dashboards")
        db.execute("DELETE FROM schema_migrations WHERE version >= 4")
        db.execute(
            "UPDATE keys SET scopes = ? WHERE kind = 'dd_app_key' AND scopes LIKE '%dashboards_write%'",
            (json.dumps(["rum_apps_read", "timeseries_query", "metrics_read", "logs_read_data"]),),
        )
        assert db.execute("SELECT count(*) FROM keys WHERE scopes LIKE '%dashboards%'").fetchone() == (0,)
    upgraded = start_server(data_dir)
    try:
        assert (
            created(upgraded, default, {**VALID, "title": "After the upgrade"})["title"]
            == "After the upgrade"
        )
        narrow = {
            "DD-API-KEY": default["keys"]["dd_api_key"],
            "DD-APPLICATION-KEY": json.loads(restricted)["secret"],
        }
        assert_error(call(upgraded, None, "GET", PATH, headers=narrow), 403, "dashboards_read")
    finally:
        assert upgraded.stop() == 0, upgraded.errors()
