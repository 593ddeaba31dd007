"""Datadog's metric query APIs: `POST /api/v2/query/timeseries`, `POST /api/v2/query/scalar` and the legacy
`GET /api/v1/query`, answered from the metric store (and, for events data sources, the event store)
through the series engine.

Responses follow the reference: a timeseries response lists the times at which any series has a value
(buckets where none has are left out) and `null` where a series lacks one; a scalar response has one
group column per group-by key, then one number column per formula (or query), rows parallel; the v1
response has a `pointlist` per series over every bucket of the window. Each series (and number column)
carries the unit of its formula, `[unit, per_unit]` or null (see `metric_units`).
"""

from __future__ import annotations

import asyncio

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from sextant.config import MIB
from sextant.control.directory import Directory
from sextant.edge.body import BodyError, read_body
from sextant.edge.endpoints import Endpoint, Reply, json_response
from sextant.edge.guard import guarded
from sextant.faces.datadog.auth import AuthFailure, require_app_key
from sextant.faces.datadog.errors import APIErrorResponse, api_error
from sextant.faces.datadog.metric_evaluation import (
    QueryRequestError,
    RequestEvaluation,
    Result,
    check_window,
    evaluate_ast,
    evaluate_formulas,
)
from sextant.faces.datadog.metric_query_request import (
    ColumnMeta,
    GroupColumn,
    NumberColumn,
    QueryFormula,
    QueryRequest,
    ScalarAttributes,
    ScalarData,
    ScalarResponse,
    TimeseriesAttributes,
    TimeseriesData,
    TimeseriesResponse,
    TimeseriesSeries,
    UnitField,
    V1QueryResponse,
    V1Series,
)
from sextant.faces.datadog.metric_units import MetricUnits, formula_unit, unit_field
from sextant.query.datadog_metrics import requested_step_ms
from sextant.query.formula_syntax import (
    BinOp,
    Call,
    MetricOperand,
    Neg,
    parse_legacy_query,
    render_formula,
)
from sextant.query.metric_syntax import QuerySyntaxError, render_scope
from sextant.series.evaluate import Window
from sextant.series.frame import SeriesFrame
from sextant.series.intervals import choose_step_ms
from sextant.storage.backend import Backend, QueryTimeout

TIMESERIES_PATH = "/api/v2/query/timeseries"
SCALAR_PATH = "/api/v2/query/scalar"
V1_PATH = "/api/v1/query"
MAX_BODY = 1 * MIB
SCOPE = "timeseries_query"


def _decode(body: bytes, kind: str) -> QueryRequest:
    try:
        request = msgspec.json.decode(body, type=QueryRequest)
    except msgspec.ValidationError as exc:
        raise QueryRequestError(f"API input validation failed: {exc}") from None
    except msgspec.DecodeError as exc:
        raise QueryRequestError(f"API input validation failed: the body is not valid JSON ({exc})") from None
    if request.data.type != kind:
        raise QueryRequestError(f'API input validation failed: Invalid type. Expected "{kind}".')
    return request


def _values(row: np.ndarray) -> list[float | None]:
    # msgspec writes NaN as null, which is what a missing value is in Datadog's answers: no per-value check.
    values: list[float | None] = row.tolist()
    return values


def timeseries_body(results: list[Result]) -> TimeseriesResponse:
    frames = [r.frame for r in results if len(r.frame)]
    if not frames:
        return TimeseriesResponse(TimeseriesData(TimeseriesAttributes([], [], [])))
    times = frames[0].times
    present = np.zeros(len(times), dtype=bool)
    for frame in frames:
        present |= ~np.isnan(frame.values).all(axis=0)
    series, values = [], []
    for result in results:
        frame = result.frame
        unit = unit_field(result.unit)
        for row in range(len(frame)):
            series.append(TimeseriesSeries(frame.group_tags(row), result.query_index, unit))
            values.append(_values(frame.values[row, present]))
    return TimeseriesResponse(TimeseriesData(TimeseriesAttributes(series, times[present].tolist(), values)))


def scalar_body(
    results: list[Result], names: list[str], limits: list[tuple[int | None, str]]
) -> ScalarResponse:
    """Group columns then number columns; rows are the union of the formulas' groups, in the first
    formula's order after its limit."""
    keys: tuple[str, ...] = next((r.frame.group_by for r in results if r.frame.group_by), ())
    rows: list[tuple[str | None, ...]] = []
    seen: set[tuple[str | None, ...]] = set()
    columns: list[dict[tuple[str | None, ...], float | None]] = []
    for result, (count, order) in zip(results, limits, strict=True):
        frame = result.frame
        cells = {
            frame.labels[i]: (None if np.isnan(v) else float(v)) for i, v in enumerate(frame.values[:, 0])
        }
        ordered = sorted(
            cells, key=lambda k: (cells[k] is None, -(cells[k] or 0) if order == "desc" else cells[k] or 0)
        )
        if count is not None:
            ordered = ordered[:count]
            cells = {k: cells[k] for k in ordered}
        columns.append(cells)
        for label in ordered:
            if label not in seen and (not keys or len(label) == len(keys)):
                seen.add(label)
                rows.append(label)
    out: list[GroupColumn | NumberColumn] = [
        GroupColumn(key, [[str(r[i]) if r[i] is not None else "N/A"] for r in rows])
        for i, key in enumerate(keys)
    ]
    for name, cells, result in zip(names, columns, results, strict=True):
        out.append(NumberColumn(name, [cells.get(r) for r in rows], ColumnMeta(unit_field(result.unit))))
    return ScalarResponse(ScalarData(ScalarAttributes(out)))


def scalar_columns(
    formulas: list[QueryFormula] | None, query_names: list[str]
) -> tuple[list[str], list[tuple[int | None, str]]]:
    """The number columns of a scalar answer: each formula's name (its alias, else its text) and limit;
    without formulas, each query's name and no limit."""
    if not formulas:
        return query_names, [(None, "desc")] * len(query_names)
    names = [f.alias or f.formula for f in formulas]
    limits: list[tuple[int | None, str]] = [
        (f.limit.count, f.limit.order) if f.limit else (None, "desc") for f in formulas
    ]
    return names, limits


class DatadogMetricQueries:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        auth = ("DD-API-KEY", "DD-APPLICATION-KEY")
        errors = {
            code: Reply(text, APIErrorResponse)
            for code, text in [
                (400, "Bad Request"),
                (401, "Unauthorized"),
                (403, "Forbidden"),
                (504, "Query timed out"),
            ]
        }
        tag = "Datadog metric queries"
        return [
            Endpoint(
                "POST",
                TIMESERIES_PATH,
                guarded(self.timeseries, api_error),
                "Query timeseries data across metrics and events data sources, with formulas",
                tag,
                request=QueryRequest,
                responses={200: Reply("OK", TimeseriesResponse), **errors},
                auth_headers=auth,
            ),
            Endpoint(
                "POST",
                SCALAR_PATH,
                guarded(self.scalar, api_error),
                "Query scalar values across metrics and events data sources, with formulas",
                tag,
                request=QueryRequest,
                responses={200: Reply("OK", ScalarResponse), **errors},
                auth_headers=auth,
            ),
            Endpoint(
                "GET",
                V1_PATH,
                guarded(self.v1_query, api_error),
                "Query timeseries points (legacy: from and to in seconds; query with functions, arithmetic)",
                tag,
                responses={200: Reply("OK", V1QueryResponse), **errors},
                auth_headers=auth,
            ),
        ]

    async def _org(self, request: Request) -> int:
        return require_app_key(request.headers, self._directory, SCOPE).org_id

    async def timeseries(self, request: Request) -> Response:
        return await self._answer(request, scalar=False)

    async def scalar(self, request: Request) -> Response:
        return await self._answer(request, scalar=True)

    async def _answer(self, request: Request, *, scalar: bool) -> Response:
        try:
            org_id = await self._org(request)
            body = await read_body(request.receive, request.headers, max_bytes=MAX_BODY, max_decoded=MAX_BODY)
            parsed = _decode(body, "scalar_request" if scalar else "timeseries_request")
            return json_response(await asyncio.to_thread(self._evaluate, org_id, parsed, scalar))
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except BodyError as exc:
            return api_error(exc.status, str(exc))
        except QueryRequestError as exc:
            return api_error(400, str(exc))
        except QueryTimeout as exc:
            return api_error(504, str(exc))

    def _evaluate(
        self, org_id: int, request: QueryRequest, scalar: bool
    ) -> TimeseriesResponse | ScalarResponse:
        attrs = request.data.attributes
        if not attrs.queries:
            raise QueryRequestError("API input validation failed: queries must hold at least one query")
        check_window(attrs.start, attrs.end)
        evaluation = RequestEvaluation(
            self._store,
            org_id,
            attrs.queries,
            attrs.start,
            attrs.end,
            scalar=scalar,
            units=MetricUnits(self._directory, org_id),
        )
        step = evaluation.step_ms(None if scalar else attrs.interval)
        window = Window(attrs.start, attrs.end, step)
        formulas = [(f.formula, f.alias) for f in attrs.formulas or []]
        results = evaluate_formulas(evaluation, formulas, window)
        if not scalar:
            return timeseries_body(results)
        return scalar_body(results, *scalar_columns(attrs.formulas, evaluation.names))

    async def v1_query(self, request: Request) -> Response:
        try:
            org_id = await self._org(request)
            params = request.query_params
            missing = [p for p in ("from", "to", "query") if not params.get(p)]
            if missing:
                raise QueryRequestError(
                    f"missing query parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
                )
            try:
                start_s, end_s = int(params["from"]), int(params["to"])
            except ValueError:
                raise QueryRequestError("'from' and 'to' must be times in epoch seconds") from None
            text = params["query"]
            return json_response(
                await asyncio.to_thread(self._v1, org_id, text, start_s * 1000, end_s * 1000)
            )
        except AuthFailure as exc:
            return api_error(exc.status, exc.detail)
        except QueryRequestError as exc:
            return api_error(400, str(exc))
        except QueryTimeout as exc:
            return api_error(504, str(exc))

    def _v1(self, org_id: int, text: str, start_ms: int, end_ms: int) -> V1QueryResponse:
        check_window(start_ms, end_ms)
        try:
            expressions = parse_legacy_query(text)
        except QuerySyntaxError as exc:
            raise QueryRequestError(str(exc)) from None
        operands = [op for ast in expressions for op in _metric_operands(ast)]
        evaluation = RequestEvaluation(
            self._store, org_id, [], start_ms, end_ms, units=MetricUnits(self._directory, org_id)
        )
        asked = [s for s in (requested_step_ms(op.query) for op in operands) if s]
        step = choose_step_ms(end_ms - start_ms, max(asked) if asked else None)
        window = Window(start_ms, end_ms, step)
        series: list[V1Series] = []
        group_by: list[str] = []
        for index, ast in enumerate(expressions):
            frame = evaluate_ast(evaluation, ast, window)
            first = next(iter(_metric_operands(ast)), None)
            group_by = group_by or list(frame.group_by)
            unit = unit_field(formula_unit(ast, evaluation.operand_unit))
            for row in range(len(frame)):
                series.append(_v1_series(frame, row, index, render_formula(ast), first, window, unit))
        return V1QueryResponse(
            status="ok",
            res_type="time_series",
            resp_version=1,
            query=text,
            message="",
            from_date=start_ms,
            to_date=end_ms,
            group_by=group_by,
            series=series,
        )


def _metric_operands(ast: object) -> list[MetricOperand]:
    if isinstance(ast, MetricOperand):
        return [ast]
    if isinstance(ast, BinOp):
        return _metric_operands(ast.left) + _metric_operands(ast.right)
    if isinstance(ast, Neg):
        return _metric_operands(ast.operand)
    if isinstance(ast, Call):
        return [op for a in ast.args for op in _metric_operands(a)]
    return []


def _v1_series(
    frame: SeriesFrame,
    row: int,
    index: int,
    expression: str,
    operand: MetricOperand | None,
    window: Window,
    unit: UnitField | None,
) -> V1Series:
    tags = frame.group_tags(row)
    metric = operand.query.metric if operand else expression
    scope = ",".join(tags) if tags else (render_scope(operand.query.scope) if operand else "*")
    times = frame.times.tolist()
    # NaN is written as null (see _values).
    points: list[tuple[int, float | None]] = list(zip(times, frame.values[row].tolist(), strict=True))
    start = times[0] if times else window.start_ms
    end = (times[-1] if times else window.start_ms) + window.step_ms - 1000
    return V1Series(
        metric=metric,
        display_name=metric,
        expression=expression,
        scope=scope,
        tag_set=tags,
        aggr=operand.query.space_aggregator if operand else None,
        attributes={},
        query_index=index,
        interval=window.step_ms // 1000,
        length=len(points),
        start=start,
        end=end,
        pointlist=points,
        unit=unit,
    )
