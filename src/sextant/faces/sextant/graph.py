"""`POST /api/v2/sextant/graph`: one graph definition as dashboards hold it (`viz`, `requests` with `queries`
and `formulas`, `response_format`), evaluated over a window, for a UI to draw.

Each request is answered in the shape of Datadog's v2 query API for its `response_format`: `timeseries`
as `/api/v2/query/timeseries` attributes, `scalar` (toplists, query values) as `/api/v2/query/scalar`
attributes with each formula's `limit`. The window is `from`/`to` in epoch milliseconds, the last hour
when absent. Authenticated like the Datadog query endpoints.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import MIB
from sextant.control.directory import Directory
from sextant.core.timeutil import HOUR_MS, now_ms
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.faces.datadog.metric_evaluation import (
    QueryRequestError,
    RequestEvaluation,
    check_window,
    evaluate_formulas,
)
from sextant.faces.datadog.metric_queries import scalar_body, scalar_columns, timeseries_body
from sextant.faces.datadog.metric_query_request import (
    DataQuery,
    QueryFormula,
    ScalarAttributes,
    TimeseriesAttributes,
)
from sextant.faces.datadog.metric_units import MetricUnits
from sextant.series.evaluate import Window
from sextant.storage.backend import Backend, QueryTimeout

PATH = "/api/v2/sextant/graph"
MAX_BODY = 1 * MIB


class GraphRequest(msgspec.Struct):
    queries: list[DataQuery]
    formulas: list[QueryFormula] | None = None
    response_format: Literal["timeseries", "scalar"] = "timeseries"


class Graph(msgspec.Struct, rename={"start": "from", "end": "to"}):
    """A graph definition, as in a dashboard widget (`viz` and `requests`), and the window to draw."""

    requests: list[GraphRequest]
    viz: str = "timeseries"
    start: int | None = None
    end: int | None = None
    interval: int | None = None


class TimeseriesAnswer(msgspec.Struct, tag_field="response_format", tag="timeseries"):
    data: TimeseriesAttributes


class ScalarAnswer(msgspec.Struct, tag_field="response_format", tag="scalar"):
    data: ScalarAttributes


class GraphResponse(msgspec.Struct):
    viz: str
    start: int = msgspec.field(name="from")
    end: int = msgspec.field(name="to")
    requests: list[TimeseriesAnswer | ScalarAnswer] = msgspec.field(default_factory=list)


class GraphApi:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        errors = {
            code: Reply(text, APIErrorResponse)
            for code, text in [(400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden")]
        }
        return [
            Endpoint(
                "POST",
                PATH,
                guarded(self.graph, api_error),
                "Evaluate one graph definition (viz, requests with queries and formulas) over a window",
                "Sextant graphs",
                request=Graph,
                responses={200: Reply("OK", GraphResponse), **errors},
                auth_headers=("DD-API-KEY", "DD-APPLICATION-KEY"),
            )
        ]

    async def graph(self, request: Request) -> Response:
        try:
            org_id = require_app_key(request.headers, self._directory, "timeseries_query").org_id
            body = await read_body(request.receive, request.headers, max_bytes=MAX_BODY, max_decoded=MAX_BODY)
            try:
                graph = msgspec.json.decode(body, type=Graph)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise QueryRequestError(f"invalid graph definition: {exc}") from None
            return json_response(await asyncio.to_thread(self._evaluate, org_id, graph))
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except QueryRequestError as exc:
            return api_error(400, str(exc))
        except QueryTimeout as exc:
            return api_error(504, str(exc))

    def _evaluate(self, org_id: int, graph: Graph) -> GraphResponse:
        end = graph.end if graph.end is not None else now_ms()
        start = graph.start if graph.start is not None else end - HOUR_MS
        check_window(start, end)
        if not graph.requests:
            raise QueryRequestError("a graph needs at least one request")
        answers: list[TimeseriesAnswer | ScalarAnswer] = []
        units = MetricUnits(self._directory, org_id)
        for i, spec in enumerate(graph.requests):
            if not spec.queries:
                raise QueryRequestError(f"requests[{i}]: queries must hold at least one query")
            scalar = spec.response_format == "scalar"
            evaluation = RequestEvaluation(
                self._store, org_id, spec.queries, start, end, scalar=scalar, units=units
            )
            window = Window(start, end, evaluation.step_ms(None if scalar else graph.interval))
            formulas = [(f.formula, f.alias) for f in spec.formulas or []]
            results = evaluate_formulas(evaluation, formulas, window)
            if scalar:
                columns = scalar_columns(spec.formulas, evaluation.names)
                answers.append(ScalarAnswer(scalar_body(results, *columns).data.attributes))
            else:
                answers.append(TimeseriesAnswer(timeseries_body(results).data.attributes))
        return GraphResponse(graph.viz, start, end, answers)
