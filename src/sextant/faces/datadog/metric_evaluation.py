"""Datadog formula requests evaluated: queries by name (metrics, or events of a data source) and formulas
over them, on one grid of epoch-aligned buckets. Every refusal is a `QueryRequestError` whose message
says what to fix; the face answers it with 400."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sextant.core.timeutil import now_ms, retention_floor_ms
from sextant.core.units import MetricUnit
from sextant.faces.datadog.analytics_request import (
    MISSING_LABEL,
    RequestError,
    aggregation,
    facet_field,
)
from sextant.faces.datadog.logs_search import LOGS_VOCABULARY
from sextant.faces.datadog.metric_query_request import DataQuery
from sextant.faces.datadog.metric_units import formula_unit
from sextant.query import datadog_metrics
from sextant.query.datadog_metrics import MetricPlan, UnsupportedQuery
from sextant.query.events import EventQuery, GroupBy
from sextant.query.formula_syntax import FormulaAst, MetricOperand, QueryRef, parse_formula
from sextant.query.metric_syntax import MetricQueryAst, QuerySyntaxError, parse_metric_query
from sextant.query.planning import QueryLimitError, check_limits
from sextant.query.search_syntax import DEFAULT_VOCABULARY, SearchSyntaxError, parse_search
from sextant.series.binary import GroupMatchError, Operand
from sextant.series.buckets import densify
from sextant.series.evaluate import FormulaError, Window, evaluate
from sextant.series.frame import SeriesFrame, labels_of_rows
from sextant.series.functions import (
    FunctionArgumentError,
    FunctionContext,
    InsufficientHistoryError,
    ShiftedWindow,
    realign,
)
from sextant.series.functions.reducers import reduce_rows
from sextant.series.intervals import choose_step_ms
from sextant.storage.backend import Backend

TIMEOUT_S = 30.0
MAX_WINDOW_MS = round(15 * 30.436875 * 86_400_000)
# The v2 API's events data sources that Sextant stores.
EVENT_SOURCES = {"logs": "logs", "product_analytics": "product_analytics", "rum": "product_analytics"}
SCALAR_AGGREGATORS = ("avg", "mean", "min", "max", "sum", "last", "l2norm", "area")


class QueryRequestError(ValueError):
    pass


# (metric name, the unit its points were stored with) → the metric's unit.
UnitOfMetric = Callable[[str, str | None], MetricUnit | None]


@dataclass(frozen=True)
class Result:
    """One series set of a response and the index of the formula (or query) it came from."""

    query_index: int
    frame: SeriesFrame
    alias: str | None = None
    unit: MetricUnit | None = None


def check_window(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise QueryRequestError(
            f"'from' ({start_ms}) must be earlier than 'to' ({end_ms}), in epoch milliseconds"
        )
    if end_ms < retention_floor_ms(now_ms()):
        raise QueryRequestError("Queries ending outside the retention date are invalid")
    if end_ms - start_ms > MAX_WINDOW_MS:
        raise QueryRequestError("the time range is longer than the 15 months of retention")


def _named(queries: list[DataQuery]) -> dict[str, DataQuery]:
    named: dict[str, DataQuery] = {}
    for i, q in enumerate(queries):
        name = q.name or f"query{i + 1}"
        if name in named:
            raise QueryRequestError(f"queries[{i}]: the name {name!r} is used twice; names must be unique")
        named[name] = q
    return named


class RequestEvaluation:
    """One request: its queries parsed once, fetched per window as the formulas need them."""

    def __init__(
        self,
        store: Backend,
        org_id: int,
        queries: list[DataQuery],
        start_ms: int,
        end_ms: int,
        *,
        scalar: bool = False,
        units: UnitOfMetric | None = None,
    ) -> None:
        self._store = store
        self._units = units
        # Scalar requests reduce each query to one value per group (metrics by their `aggregator`).
        self._scalar = scalar
        self._org_id = org_id
        self._queries = _named(queries)
        self._start, self._end = start_ms, end_ms
        self._metric_asts: dict[str, MetricQueryAst] = {}
        self._plans: dict[MetricQueryAst, MetricPlan] = {}
        self._info: dict[str, tuple[str, str | None] | None] = {}
        for name, q in self._queries.items():
            if q.data_source == "metrics":
                if not q.query:
                    raise QueryRequestError(f"query {name!r}: a metrics query needs 'query'")
                if scalar and (q.aggregator or "avg") not in SCALAR_AGGREGATORS:
                    raise QueryRequestError(
                        f"query {name!r}: unknown aggregator {q.aggregator!r}; use one of "
                        f"{', '.join(SCALAR_AGGREGATORS)}"
                    )
                try:
                    self._metric_asts[name] = parse_metric_query(q.query)
                except QuerySyntaxError as exc:
                    raise QueryRequestError(f"query {name!r}: {exc}") from None
            elif q.data_source not in EVENT_SOURCES:
                raise QueryRequestError(
                    f"query {name!r}: data_source {q.data_source!r} is not supported; use metrics, "
                    f"{', '.join(EVENT_SOURCES)}"
                )

    @property
    def names(self) -> list[str]:
        return list(self._queries)

    def step_ms(self, requested_ms: int | None) -> int:
        asked = [requested_ms] if requested_ms else []
        asked += [s for s in map(datadog_metrics.requested_step_ms, self._metric_asts.values()) if s]
        return choose_step_ms(self._end - self._start, max(asked) if asked else None)

    def fetch(self, operand: QueryRef | MetricOperand, window: Window) -> SeriesFrame:
        if isinstance(operand, MetricOperand):
            return self._metrics(operand.query, window)
        if operand.name not in self._queries:
            raise QueryRequestError(
                f"the formula names {operand.name!r}, which is not a query of the request"
            )
        ast = self._metric_asts.get(operand.name)
        spec = self._queries[operand.name]
        if ast is None:
            return self._events(operand.name, spec, window)
        frame = self._metrics(ast, window)
        return scalar_frame(frame, spec.aggregator or "avg") if self._scalar else frame

    def operand_unit(self, operand: QueryRef | MetricOperand) -> MetricUnit | None:
        """The unit of a query's series: its metric's, as the query's modifiers and (for scalars) its
        aggregator leave it; events have none."""
        if isinstance(operand, MetricOperand):
            return self._metric_unit(operand.query)
        ast = self._metric_asts.get(operand.name)
        if ast is None:
            return None
        unit = self._metric_unit(ast)
        aggregator = self._queries[operand.name].aggregator or "avg"
        if self._scalar and aggregator == "area" and unit is not None:
            return unit.times_seconds()  # the area under the curve: value x seconds
        return unit

    def _metric_unit(self, ast: MetricQueryAst) -> MetricUnit | None:
        if self._units is None:
            return None
        info = self._metric_info(ast.metric)
        return self._plan(ast).unit(self._units(ast.metric, info[1] if info else None))

    def _metric_info(self, metric: str) -> tuple[str, str | None] | None:
        if metric not in self._info:
            self._info[metric] = self._store.metric_info(self._org_id, metric, TIMEOUT_S)
        return self._info[metric]

    def _plan(self, ast: MetricQueryAst) -> MetricPlan:
        metric_plan = self._plans.get(ast)
        if metric_plan is None:
            info = self._metric_info(ast.metric)
            try:
                metric_plan = self._plans[ast] = datadog_metrics.plan(ast, info[0] if info else None)
            except UnsupportedQuery as exc:
                raise QueryRequestError(str(exc)) from None
        return metric_plan

    def _metrics(self, ast: MetricQueryAst, window: Window) -> SeriesFrame:
        metric_plan = self._plan(ast)
        if not ast.timeshift_seconds:
            return datadog_metrics.run(
                self._store,
                self._org_id,
                metric_plan,
                window.start_ms,
                window.end_ms,
                window.step_ms,
                TIMEOUT_S,
            )
        shift = ast.timeshift_seconds * 1000
        shifted = ShiftedWindow(window.start_ms + shift, window.end_ms + shift, -shift)
        frame = datadog_metrics.run(
            self._store,
            self._org_id,
            metric_plan,
            shifted.start_ms,
            shifted.end_ms,
            window.step_ms,
            TIMEOUT_S,
        )
        return realign(frame, shifted, window.times)

    def _events(self, name: str, spec: DataQuery, window: Window) -> SeriesFrame:
        interval = None if self._scalar else window.step_ms
        query = self.event_query(name, spec, window.start_ms, window.end_ms, interval)
        table = self._store.query_events(query, TIMEOUT_S)
        return frame_of_events(table, query, window)

    def event_query(
        self, name: str, spec: DataQuery, start_ms: int, end_ms: int, step_ms: int | None
    ) -> EventQuery:
        what = f"query {name!r}"
        if spec.compute is None:
            raise QueryRequestError(f'{what}: an events query needs \'compute\' ({{"aggregation": "count"}})')
        source = EVENT_SOURCES[spec.data_source]
        vocabulary = LOGS_VOCABULARY if source == "logs" else DEFAULT_VOCABULARY
        try:
            compute = aggregation(spec.compute.aggregation, spec.compute.metric, f"{what} compute")
            groups = tuple(
                GroupBy(
                    field=facet_field(g.facet, f"{what} group_by[{i}].facet"),
                    limit=g.limit,
                    rank_by=compute
                    if g.sort is None or g.sort.aggregation is None
                    else aggregation(
                        g.sort.aggregation, g.sort.metric or spec.compute.metric, f"{what} sort"
                    ),
                    descending=g.sort is None or g.sort.order == "desc",
                    include_missing=not g.should_exclude_missing,
                    missing_label=MISSING_LABEL,
                )
                for i, g in enumerate(spec.group_by or [])
            )
            flt = parse_search((spec.search.query if spec.search else "*") or "*", vocabulary)
        except RequestError as exc:
            raise QueryRequestError(str(exc)) from None
        except SearchSyntaxError as exc:
            raise QueryRequestError(f"{what} search.query: {exc}") from None
        query = EventQuery(
            org_id=self._org_id,
            start_ms=start_ms,
            end_ms=end_ms,
            filter=flt,
            aggregation=compute,
            group_by=groups,
            interval_ms=step_ms,
            source=source,
        )
        try:
            check_limits(query)
        except QueryLimitError as exc:
            raise QueryRequestError(f"{what}: {exc}") from None
        return query


def frame_of_events(table: pa.Table, query: EventQuery, window: Window) -> SeriesFrame:
    """The event engine's rows (`k0..kn`, `bucket`, `value`) as one series per group on the window's grid;
    without buckets (a scalar query), one value per group in the window's first bucket."""
    assert isinstance(table, pa.Table)
    keys = [f"k{i}" for i in range(len(query.group_by))]
    labels, rows = labels_of_rows([table.column(k).to_pylist() for k in keys], table.num_rows)
    times = window.times
    found = table.column("value").to_numpy(zero_copy_only=False).astype(float)
    if query.interval_ms is None:
        times = times[:1]
        values = np.full((len(labels), len(times)), np.nan)
        values[rows, 0] = found
    else:
        buckets = table.column("bucket").to_numpy().astype(np.int64)
        values = densify(times, rows, buckets, found, len(labels), np.nan)
    group_by = tuple(g.field.path for g in query.group_by)
    return SeriesFrame(times, values, group_by, labels, window.step_ms)


def evaluate_formulas(
    evaluation: RequestEvaluation, formulas: list[tuple[str, str | None]], window: Window
) -> list[Result]:
    """Each formula (text, alias) evaluated on the window; without formulas, each query as it is."""
    if not formulas:
        formulas = [(name, None) for name in evaluation.names]
    results = []
    for index, (text, alias) in enumerate(formulas):
        ast = parse(text, evaluation.names, index)
        frame = evaluate_ast(evaluation, ast, window)
        results.append(Result(index, frame, alias, formula_unit(ast, evaluation.operand_unit)))
    return results


def evaluate_ast(evaluation: RequestEvaluation, ast: FormulaAst, window: Window) -> SeriesFrame:
    """One formula tree evaluated on the window; a constant is one ungrouped series holding it."""
    value = _guarded(lambda: evaluate(ast, window, evaluation.fetch, FunctionContext()))
    return _as_frame(value, window)


def parse(text: str, names: list[str], index: int) -> FormulaAst:
    try:
        return parse_formula(text, names)
    except QuerySyntaxError as exc:
        raise QueryRequestError(f"formulas[{index}]: {exc}") from None


def _guarded(compute: Callable[[], Operand]) -> Operand:
    try:
        return compute()
    except (FormulaError, GroupMatchError, FunctionArgumentError, InsufficientHistoryError) as exc:
        raise QueryRequestError(str(exc)) from None


def _as_frame(value: Operand, window: Window) -> SeriesFrame:
    if isinstance(value, SeriesFrame):
        return value
    # A constant formula: one ungrouped series holding it in every bucket.
    times = window.times
    return SeriesFrame(times, np.full((1, len(times)), value), (), [()], window.step_ms)


def scalar_frame(frame: SeriesFrame, aggregator: str) -> SeriesFrame:
    """Each series reduced to one value over the window, in the window's first bucket."""
    reduced = reduce_rows(frame, aggregator)  # type: ignore[arg-type]
    return SeriesFrame(
        frame.times[:1],
        reduced.reshape(-1, 1),
        frame.group_by,
        frame.labels,
        frame.step_ms,
        kind=frame.kind,
        unit=frame.unit,
    )
