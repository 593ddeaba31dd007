"""What a PostHog Metrics API query means, run on the store and the series engine.

A query is one or more clauses (a metric, an aggregation, label filters and group-by keys) over one time
range and one interval; a characterization compares an anomaly window with a baseline. PostHog's
semantics (`products/metrics/backend/metric_query_runner.py`, the per-series variant; decisions in
docs/posthog-metrics.md):

- Every aggregation resolves per stored series before it combines series. `sum`, `min`, `max`, `p95` and
  `count` take each series' last reading in the bucket, `avg` each series' mean there; across the series
  of a group they are summed, averaged, the smallest, the largest, the 95th percentile (interpolated), or
  counted (the series that reported).
- `increase` and `rate` are counter-aware: each point contributes its increase since the previous point of
  its series in the range (a delta point its value; a drop is a counter reset, the point's value is the
  increase; a series' first point contributes 0), summed per bucket and over the group's series; `rate`
  divides by the bucket's seconds.
- `histogram_quantile(q)` sums the groups' bucket-count increases (the same reset rules, bucket by bucket)
  and interpolates the quantile inside the bucket holding it (`series/histogram_quantile.py`); for a
  Datadog distribution, which keeps its raw values, it is the exact quantile of every value of the group.
- Labels: tags are `key:value`; `service_name` and `service.name` read the `service.name` tag (OTLP's
  resource attribute); a series without the key has the label `''`, so `neq` and `not_regex` match it.
  A filter's scope reads the key from the series' OTLP resource attributes (`resource`), from its data
  point attributes (`attribute`), or from the resource's if it has the key, else the data point's
  (`auto`); series from other intakes have no resource attributes. `service_name` is a resource
  attribute. groupBy reads the key from either (its first value).
- Buckets start at multiples of the interval since the epoch (UTC), weeks on Mondays; the interval
  defaults to the finest of the ladder that gives at most 60 buckets.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sextant.core.timeutil import DAY_MS, HOUR_MS, retention_floor_ms
from sextant.query.metrics import AllTags, SeriesQuery, TagAnd, TagFilter, TagNot, TagOr, TagRegex
from sextant.series import characterize as ch
from sextant.series.buckets import bucket_times
from sextant.series.frame import SeriesFrame
from sextant.series.group_quantile import quantile_groups
from sextant.series.histogram_quantile import histogram_quantiles
from sextant.series.space_aggregation import aggregate_groups
from sextant.storage.backend import Backend

MINUTE_MS = 60_000
# PostHog's interval ladder, finest first.
INTERVALS: tuple[tuple[str, int], ...] = (
    ("second", 1000),
    ("minute", MINUTE_MS),
    ("minute_5", 5 * MINUTE_MS),
    ("minute_15", 15 * MINUTE_MS),
    ("hour", HOUR_MS),
    ("hour_6", 6 * HOUR_MS),
    ("day", DAY_MS),
    ("week", 7 * DAY_MS),
)
INTERVAL_MS = dict(INTERVALS)
TARGET_BUCKETS = 60
MAX_SPAN_DAYS = 31
ROW_LIMIT = 10_000
MAX_SERIES_PER_CLAUSE = 100
MAX_CLAUSES = 10
AGGREGATIONS = ("sum", "avg", "count", "min", "max", "p95", "rate", "increase", "histogram_quantile")
METRIC_TYPES = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
# The PostHog (OTel) type of each stored kind: Datadog counts and rates are sums, its distributions
# histograms of their raw values.
POSTHOG_TYPES = {
    "gauge": "gauge",
    "count": "sum",
    "rate": "sum",
    "distribution": "histogram",
    "histogram": "histogram",
    "exponential_histogram": "exponential_histogram",
    "summary": "summary",
}
# characterize's aggregation when none is asked for, by the metric's type (anything else: avg).
CHARACTERIZE_AGGREGATIONS = {
    "sum": "rate",
    "gauge": "avg",
    "histogram": "histogram_quantile",
    "exponential_histogram": "p95",
    "summary": "avg",
}
DEFAULT_QUANTILE = 0.95
BOUNDS_DIFFER = (
    "histogram bounds differ across the selected series/time range; "
    "narrow the query with filters so all series share one bucket layout"
)
# 1970-01-05, the first Monday: ClickHouse's weeks (and so PostHog's) start on Mondays.
WEEK_ORIGIN_MS = 4 * DAY_MS
NAMES_LOOKBACK_MS = 7 * DAY_MS
SERVICE_KEYS = ("service_name", "service.name")
SERVICE_TAG = "service.name"

Op = Literal["eq", "neq", "regex", "not_regex"]
Scope = Literal["resource", "attribute", "auto"]


class QueryError(ValueError):
    """A query PostHog refuses with a 400 parse_error; the message is PostHog's."""


@dataclass(frozen=True)
class Filter:
    key: str
    op: Op
    value: str
    scope: Scope = "auto"


@dataclass(frozen=True)
class Clause:
    name: str
    metric: str
    aggregation: str
    quantile: float | None = None
    filters: tuple[Filter, ...] = ()
    group_by: tuple[str, ...] = ()
    metric_type: str | None = None


@dataclass(frozen=True)
class MetricsQuery:
    clauses: tuple[Clause, ...]
    start_ms: int
    end_ms: int
    interval: str | None = None
    formula: str | None = None


def pick_interval(start_ms: int, end_ms: int) -> str:
    """The finest interval giving at most TARGET_BUCKETS buckets over the range."""
    span = end_ms - start_ms
    for name, step in INTERVALS:
        if span / step <= TARGET_BUCKETS:
            return name
    return INTERVALS[-1][0]


def check_contract(query: MetricsQuery) -> None:
    """The request's own consistency, checked before anything runs (PostHog's contract messages)."""
    for clause in query.clauses:
        if clause.aggregation == "histogram_quantile":
            if clause.quantile is None:
                raise QueryError("histogram_quantile requires a quantile")
            if not 0.0 < clause.quantile < 1.0:
                raise QueryError("quantile must be in (0, 1)")
        if not clause.name:
            raise QueryError("clause name must be non-empty")
    if not query.clauses:
        raise QueryError("at least one clause is required")
    if len(query.clauses) > MAX_CLAUSES:
        raise QueryError(f"at most {MAX_CLAUSES} clauses are allowed per query")
    if query.end_ms <= query.start_ms:
        raise QueryError("date_to must be after date_from")
    names = [c.name for c in query.clauses]
    if len(names) != len(set(names)):
        raise QueryError("clause names must be unique")


@dataclass(frozen=True)
class _Window:
    start_ms: int
    end_ms: int
    interval: str

    @property
    def step_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    @property
    def origin_ms(self) -> int:
        return WEEK_ORIGIN_MS if self.interval == "week" else 0


def _check_run(clause: Clause, start_ms: int, end_ms: int, interval: str | None) -> _Window:
    """What PostHog's runner checks of one clause before it runs it; the window it runs over."""
    if clause.aggregation not in AGGREGATIONS:
        raise QueryError(f"Unsupported aggregation: {clause.aggregation!r}")
    if clause.metric_type is not None and clause.metric_type not in METRIC_TYPES:
        raise QueryError(f"Unknown metric_type: {clause.metric_type!r}")
    if end_ms <= start_ms:
        raise QueryError("date_to must be after date_from")
    if end_ms - start_ms > MAX_SPAN_DAYS * DAY_MS:
        raise QueryError(f"date range too wide; the maximum span is {MAX_SPAN_DAYS} days")
    if interval is not None:
        if interval not in INTERVAL_MS:
            raise QueryError(f"Unknown interval: {interval!r}")
        if (end_ms - start_ms) / INTERVAL_MS[interval] > ROW_LIMIT:
            raise QueryError(
                f"interval {interval!r} produces more than {ROW_LIMIT} buckets over this range; "
                "use a coarser interval or a narrower range"
            )
    if clause.aggregation == "histogram_quantile" and (
        clause.quantile is None or not 0.0 < clause.quantile < 1.0
    ):
        raise QueryError("histogram_quantile requires a quantile in (0, 1)")
    return _Window(start_ms, end_ms, interval or pick_interval(start_ms, end_ms))


# --- labels and filters -----------------------------------------------------------------------------------


def tag_key(key: str) -> str:
    """The tag key a PostHog label key reads."""
    return SERVICE_TAG if key in SERVICE_KEYS else key


def label_of(tags: Sequence[str], key: str) -> str:
    """The value of `key` among a series' (sorted) tags: the first tag with the key; '' without one."""
    prefix = tag_key(key) + ":"
    for tag in tags:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return ""


def tag_keys(tags: Sequence[str]) -> list[str]:
    """The keys a series carries, as characterize counts them: each `key:value` tag's key, but not the
    `service` tag the OTLP intake derives from `service.name`."""
    service = next((t[len(SERVICE_TAG) + 1 :] for t in tags if t.startswith(SERVICE_TAG + ":")), None)
    keys = []
    for tag in tags:
        key, colon, value = tag.partition(":")
        if colon and not (key == "service" and value == service):
            keys.append(key)
    return keys


_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")
# Constructs Python's `re` accepts and RE2 (the store's regular expressions, and ClickHouse's) does not.
_LOOKAROUND = re.compile(r"\(\?(?:=|!|<=|<!|>|P=|\()")


def _re2_escape(text: str) -> str:
    return _RE2_META.sub(r"\\\1", text)


def _unsupported_construct(pattern: str) -> str | None:
    """Why RE2 would refuse a pattern Python compiles (lookaround, backreferences, atomic groups,
    possessive quantifiers, conditionals), or None."""
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and pattern[i + 1] in "123456789":
                return "backreferences are"
            i += 2
            continue
        if c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            continue
        if c == "(" and _LOOKAROUND.match(pattern, i):
            return "lookaround, atomic groups and conditionals are"
        if c in "*+?}" and i + 1 < n and pattern[i + 1] == "+":
            return "possessive quantifiers are"
        i += 1
    return None


def _check_regex(flt: Filter) -> None:
    try:
        re.compile(flt.value)
    except re.error as exc:
        raise QueryError(f"Invalid regular expression for filter {flt.key!r}: {exc}") from None
    why = _unsupported_construct(flt.value)
    if why is not None:
        raise QueryError(
            f"Invalid regular expression for filter {flt.key!r}: {why} not supported "
            "(patterns are RE2 syntax)"
        )


def _has_key(key: str, scope: Scope) -> TagFilter:
    return TagRegex(key, "(?s).*", scope)


def _equals(key: str, value: str, scope: Scope) -> TagFilter:
    exact = TagRegex(key, _re2_escape(value), scope)
    # A series without the key reads as '' (as a missing map key does in ClickHouse).
    return TagOr((exact, TagNot(_has_key(key, scope)))) if value == "" else exact


def _searches(key: str, pattern: str, scope: Scope) -> TagFilter:
    # ClickHouse's match() searches; the store's regex matches the whole value.
    found = TagRegex(key, f"(?s).*(?:{pattern}).*", scope)
    return TagOr((found, TagNot(_has_key(key, scope)))) if re.search(pattern, "") else found


def tag_filter(filters: Sequence[Filter]) -> TagFilter:
    """The filters (ANDed) as the store's tag filter; QueryError for a bad regular expression."""
    conditions: list[TagFilter] = []
    for flt in filters:
        key = tag_key(flt.key)
        if flt.op in ("regex", "not_regex"):
            _check_regex(flt)
            condition = _searches(key, flt.value, flt.scope)
        else:
            condition = _equals(key, flt.value, flt.scope)
        conditions.append(TagNot(condition) if flt.op in ("neq", "not_regex") else condition)
    return TagAnd(tuple(conditions)) if conditions else AllTags()


# --- a clause's data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """A clause's answer by label set: `values[g, j]` for `labels[g]` (the values of `keys`) in the bucket
    starting at `times[j]`; `present` where the bucket had data (a present value may be NaN or infinite:
    an aggregate that is not a number, shown as null)."""

    keys: tuple[str, ...]
    labels: list[tuple[str, ...]]
    times: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    present: npt.NDArray[np.bool_]

    @classmethod
    def empty(cls, keys: tuple[str, ...], times: npt.NDArray[np.int64]) -> Rows:
        return cls(keys, [], times, np.empty((0, len(times))), np.empty((0, len(times)), dtype=bool))

    @property
    def row_count(self) -> int:
        """(bucket, label set) rows, as PostHog's query returns them."""
        return int(self.present.sum())


class _ClauseData:
    """One clause's points over a window, grouped on demand by any keys (a characterization groups the
    same data several ways)."""

    def __init__(self, store: Backend, org_id: int, clause: Clause, window: _Window, timeout_s: float):
        self._store = store
        self._clause = clause
        self._window = window
        self._timeout_s = timeout_s
        self._times = bucket_times(window.start_ms, window.end_ms, window.step_ms, window.origin_ms)
        self._query = SeriesQuery(
            org_id=org_id,
            metric=clause.metric,
            filter=tag_filter(clause.filters),
            start_ms=window.start_ms,
            end_ms=window.end_ms,
            step_ms=window.step_ms,
            bucket_origin_ms=window.origin_ms,
        )
        info = store.metric_info(org_id, clause.metric, timeout_s)
        self._kind = None if info is None else info[0]
        wrong_type = (
            clause.metric_type is not None and POSTHOG_TYPES.get(self._kind or "") != clause.metric_type
        )
        self._nothing = self._kind is None or wrong_type
        self._per_series: SeriesFrame | None = None
        self._histograms: pa.Table | None = None

    def grouped(self, keys: tuple[str, ...]) -> Rows:
        if self._nothing:
            return Rows.empty(keys, self._times)
        aggregation = self._clause.aggregation
        if aggregation == "histogram_quantile":
            if self._kind == "distribution":
                return self._sample_quantiles(keys)
            return self._histogram_quantiles(keys)
        return self._combined(keys)

    def _series(self) -> SeriesFrame:
        if self._per_series is None:
            aggregation = self._clause.aggregation
            if aggregation in ("rate", "increase"):
                query = dataclasses.replace(
                    self._query, time_aggregation="sum", point_value="counter_increase"
                )
            else:
                query = dataclasses.replace(
                    self._query, time_aggregation="avg" if aggregation == "avg" else "last"
                )
            self._per_series = self._store.query_series(query, self._timeout_s)
        return self._per_series

    def _combined(self, keys: tuple[str, ...]) -> Rows:
        raw = self._series()
        if not len(raw):
            return Rows.empty(keys, self._times)
        labelled = SeriesFrame(
            times=raw.times,
            values=raw.values,
            group_by=keys,
            labels=[tuple(label_of(tags, k) for k in keys) for tags in raw.tags],
            step_ms=raw.step_ms,
        )
        aggregation = self._clause.aggregation
        if aggregation == "p95":
            grouped = quantile_groups(labelled, 0.95)
        elif aggregation in ("rate", "increase"):
            grouped = aggregate_groups(labelled, "sum")
        else:
            grouped = aggregate_groups(labelled, aggregation)  # type: ignore[arg-type]
        values = grouped.values
        present = ~np.isnan(values)
        if aggregation == "rate":
            values = values / (self._window.step_ms / 1000.0)
        return Rows(
            keys, [tuple(str(v) for v in labels) for labels in grouped.labels], raw.times, values, present
        )

    def _histogram_quantiles(self, keys: tuple[str, ...]) -> Rows:
        if self._histograms is None:
            self._histograms = self._store.query_histogram_buckets(self._query, self._timeout_s)
        table = self._histograms
        if not table.num_rows:
            return Rows.empty(keys, self._times)
        variants = {tuple(b) for b in table.column("bounds").to_pylist() if b}
        if len(variants) > 1:
            raise QueryError(BOUNDS_DIFFER)
        widths = pc.unique(pc.list_value_length(table.column("counts"))).to_pylist()
        if len(widths) > 1:
            raise QueryError(BOUNDS_DIFFER)
        bounds = list(next(iter(variants))) if variants else []
        counts = pc.list_flatten(table.column("counts")).to_numpy().astype(np.float64)
        counts = counts.reshape(table.num_rows, widths[0])
        # Labels are worked out once per stored series, not per row.
        _, first_rows, series_of_row = np.unique(
            table.column("series_id").to_numpy(), return_index=True, return_inverse=True
        )
        tags = table.column("tags")
        series_labels = [tuple(label_of(tags[int(r)].as_py(), k) for k in keys) for r in first_rows]
        labels = sorted(set(series_labels))
        label_index = {label: i for i, label in enumerate(labels)}
        group = np.array([label_index[label] for label in series_labels], dtype=np.int64)[series_of_row]
        step, first = self._window.step_ms, self._times[0]
        column = (table.column("bucket").to_numpy() - first) // step
        cells = group * len(self._times) + column
        summed = np.zeros((len(labels) * len(self._times), widths[0]))
        np.add.at(summed, cells, counts)
        present = np.zeros(len(labels) * len(self._times), dtype=bool)
        present[cells] = True
        quantile = self._clause.quantile
        assert quantile is not None
        values = histogram_quantiles(quantile, bounds, summed)
        # PostHog answers a (bucket, group) row only when its rows had data; one whose count increases add
        # up to nothing has no quantile, and is left out rather than shown as 0.
        shape = (len(labels), len(self._times))
        rows = Rows(keys, list(labels), self._times, values.reshape(shape), present.reshape(shape))
        check_row_limit(rows)
        kept = rows.present & ~np.isnan(rows.values)
        return Rows(keys, rows.labels, rows.times, rows.values, kept)

    def _sample_quantiles(self, keys: tuple[str, ...]) -> Rows:
        quantile = self._clause.quantile
        assert quantile is not None
        query = dataclasses.replace(
            self._query, group_by=tuple(tag_key(k) for k in keys), samples=f"p{quantile * 100!r}"
        )
        frame = self._store.query_series(query, self._timeout_s)
        labels = [tuple("" if v is None else str(v) for v in labels) for labels in frame.labels]
        return Rows(keys, labels, frame.times, frame.values, ~np.isnan(frame.values))

    def reporting_series_keys(self, start_ms: int, end_ms: int) -> list[list[str]]:
        """The tag keys of each series of the metric (whatever the filters) with a point in [start, end)."""
        query = SeriesQuery(
            org_id=self._query.org_id,
            metric=self._clause.metric,
            filter=AllTags(),
            start_ms=start_ms,
            end_ms=end_ms,
            step_ms=end_ms - start_ms,
            time_aggregation="count",
        )
        frame = self._store.query_series(query, self._timeout_s)
        reported = np.flatnonzero((~np.isnan(frame.values)).any(axis=1))
        return [tag_keys(frame.tags[int(row)]) for row in reported]


def check_row_limit(rows: Rows) -> None:
    if rows.row_count >= ROW_LIMIT:
        raise QueryError(
            "query produced too many (time bucket, group) rows; "
            "use a coarser interval, a narrower range, or a lower-cardinality group_by"
        )


# --- queries ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClauseResult:
    clause: Clause
    rows: Rows


def run_clauses(store: Backend, org_id: int, query: MetricsQuery, timeout_s: float) -> list[ClauseResult]:
    """Every clause's rows over the query's window; QueryError as PostHog refuses a query."""
    check_contract(query)
    results = []
    for clause in query.clauses:
        window = _check_run(clause, query.start_ms, query.end_ms, query.interval)
        data = _ClauseData(store, org_id, clause, window, timeout_s)
        rows = data.grouped(clause.group_by)
        check_row_limit(rows)
        results.append(ClauseResult(clause, rows))
    return results


@dataclass(frozen=True)
class OutputSeries:
    labels: dict[str, str]
    values: list[float | None]
    metric_name: str | None
    clause: str


def shared_grid(results: Sequence[ClauseResult]) -> npt.NDArray[np.int64]:
    """The bucket times where any series of any clause had data, in order."""
    if not results:
        return np.empty(0, dtype=np.int64)
    times = results[0].rows.times
    seen = np.zeros(len(times), dtype=bool)
    for result in results:
        if len(result.rows.labels):
            seen |= result.rows.present.any(axis=0)
    grid: npt.NDArray[np.int64] = times[seen]
    return grid


def _on_grid(rows: Rows, grid: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Each label set's values at the grid's buckets: 0 where it had no data, NaN where not finite."""
    columns = np.searchsorted(rows.times, grid)
    present = rows.present[:, columns]
    values = rows.values[:, columns]
    with np.errstate(invalid="ignore"):
        filled = np.where(present, np.where(np.isfinite(values), values, np.nan), 0.0)
    return filled


def _label_key(keys: tuple[str, ...], labels: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dict(zip(keys, labels, strict=True)).items()))


@dataclass(frozen=True)
class _ClauseSeries:
    clause: Clause
    keys: list[tuple[tuple[str, str], ...]]
    values: npt.NDArray[np.float64]
    # What the clause returned was one series without labels (a formula broadcasts it).
    ungrouped: bool = False


def _clause_series(result: ClauseResult, grid: npt.NDArray[np.int64]) -> _ClauseSeries:
    """The clause's series on the grid, largest (summed |value|) first, at most MAX_SERIES_PER_CLAUSE."""
    rows = result.rows
    # A label set without data in the range (a series that reported only before it) has no series.
    reported = np.flatnonzero(rows.present.any(axis=1))
    rows = Rows(
        rows.keys,
        [rows.labels[i] for i in reported],
        rows.times,
        rows.values[reported],
        rows.present[reported],
    )
    keys = [_label_key(rows.keys, labels) for labels in rows.labels]
    values = _on_grid(rows, grid)
    with np.errstate(invalid="ignore"):
        magnitude = np.nansum(np.abs(values), axis=1) if len(keys) else np.zeros(0)
    order = sorted(range(len(keys)), key=lambda i: (-float(magnitude[i]), keys[i]))[:MAX_SERIES_PER_CLAUSE]
    kept = [keys[i] for i in order]
    return _ClauseSeries(result.clause, kept, values[order], ungrouped=len(kept) == 1 and not kept[0])


def _nullable(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values.tolist()]


FormulaFunction = Callable[[Mapping[str, npt.NDArray[np.float64]]], npt.NDArray[np.float64]]


def assemble(
    results: Sequence[ClauseResult], formula: FormulaFunction | None
) -> tuple[npt.NDArray[np.int64], list[OutputSeries]]:
    """The response's grid and series: each clause's series, zero-filled onto the grid, or only the
    formula's; with no data at all, one empty series."""
    grid = shared_grid(results)
    if not len(grid):
        first = results[0].clause
        if formula is not None:
            return grid, [OutputSeries({}, [], None, "formula")]
        return grid, [OutputSeries({}, [], first.metric, first.name)]
    per_clause = [_clause_series(r, grid) for r in results]
    if formula is not None:
        return grid, _formula_series(per_clause, formula, len(grid))
    out = []
    for series in per_clause:
        for key, values in zip(series.keys, series.values, strict=True):
            out.append(OutputSeries(dict(key), _nullable(values), series.clause.metric, series.clause.name))
    return grid, out


def _formula_series(
    per_clause: list[_ClauseSeries], formula: FormulaFunction, width: int
) -> list[OutputSeries]:
    """One formula series per label set every grouped clause has (one-to-one matching); a clause that is
    one series without labels applies to all of them."""
    grouped = {s.clause.name: dict(zip(s.keys, s.values, strict=True)) for s in per_clause if not s.ungrouped}
    broadcast = {s.clause.name: s.values[0] for s in per_clause if s.ungrouped}
    label_sets: set[tuple[tuple[str, str], ...]] = (
        set.intersection(*(set(by_key) for by_key in grouped.values())) if grouped else {()}
    )
    out = []
    for key in sorted(label_sets):
        inputs = {name: by_key[key] for name, by_key in grouped.items()}
        inputs.update(broadcast)
        stacked = np.vstack(list(inputs.values())) if inputs else np.zeros((0, width))
        with np.errstate(all="ignore"):
            result = np.asarray(formula(inputs), dtype=np.float64) * np.ones(width)
        # A null input gives a null output, and so does a result that is not a finite number.
        result = np.where(np.isnan(stacked).any(axis=0) | ~np.isfinite(result), np.nan, result)
        out.append(OutputSeries(dict(key), _nullable(result), None, "formula"))
    return out


# --- values and has_metrics -------------------------------------------------------------------------------


def metric_names(
    store: Backend, org_id: int, search: str, limit: int, now_ms: int, timeout_s: float
) -> list[tuple[str, str]]:
    """(name, PostHog type) of the metrics seen in the last 7 days whose name holds `search` (any case),
    an exact match (any case) first, then the most recently seen."""
    table = store.metric_names(org_id, timeout_s)
    table = table.filter(pc.greater(table.column("last_seen_ms"), now_ms - NAMES_LOOKBACK_MS))
    needle = search.strip()
    if needle:
        table = table.filter(pc.match_substring(table.column("metric"), needle, ignore_case=True))
    exact = pc.equal(pc.utf8_lower(table.column("metric")), needle.lower())
    ranked = table.append_column("exact", exact).sort_by(
        [("exact", "descending"), ("last_seen_ms", "descending"), ("metric", "ascending")]
    )
    ranked = ranked.slice(0, limit)
    names = ranked.column("metric").to_pylist()
    kinds = ranked.column("kind").to_pylist()
    return [(name, POSTHOG_TYPES.get(str(kind), str(kind))) for name, kind in zip(names, kinds, strict=True)]


def has_metrics(store: Backend, org_id: int, now_ms: int, timeout_s: float) -> bool:
    """Whether the organization has any metric point still kept."""
    table = store.metric_names(org_id, timeout_s)
    kept = pc.greater_equal(table.column("last_seen_ms"), retention_floor_ms(now_ms))
    return bool(pc.any(kept).as_py())


# --- characterize -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CharacterizeRequest:
    metric: str
    anomaly_from: int
    anomaly_to: int
    baseline_from: int | None = None
    baseline_to: int | None = None
    aggregation: str | None = None
    quantile: float | None = None
    filters: tuple[Filter, ...] = ()
    candidate_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    metric: str
    aggregation: str
    interval: str
    windows: ch.Windows
    statistics: ch.WindowStatistics
    movers: list[ch.Mover]
    # The metric's buckets with data over both windows (and the gap between them): time, value.
    points: list[tuple[int, float | None]]

    @property
    def onset_ms(self) -> int | None:
        onset = self.statistics.onset
        return None if onset is None else self.points[onset][0]


def _default_aggregation(
    store: Backend, org_id: int, metric: str, now_ms: int, timeout_s: float
) -> tuple[str, float | None]:
    """The aggregation for the metric's type, as PostHog looks the type up (the names list)."""
    for name, metric_type in metric_names(store, org_id, metric, 5, now_ms, timeout_s):
        if name == metric:
            aggregation = CHARACTERIZE_AGGREGATIONS.get(metric_type, "avg")
            return aggregation, DEFAULT_QUANTILE if aggregation == "histogram_quantile" else None
    return "avg", None


def characterize(
    store: Backend, org_id: int, request: CharacterizeRequest, now_ms: int, timeout_s: float
) -> Report:
    """How the anomaly window compares with the baseline, when the change began, and which label values
    moved most; QueryError as PostHog refuses a request."""
    try:
        windows = ch.resolve_windows(
            request.anomaly_from, request.anomaly_to, request.baseline_from, request.baseline_to
        )
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    aggregation, quantile = request.aggregation, request.quantile
    if aggregation is None:
        aggregation, default_quantile = _default_aggregation(store, org_id, request.metric, now_ms, timeout_s)
        quantile = quantile if quantile is not None else default_quantile
    if aggregation == "histogram_quantile" and quantile is None:
        quantile = DEFAULT_QUANTILE
    interval = ch.combined_interval(
        INTERVALS, pick_interval(windows.anomaly_from, windows.anomaly_to), windows
    )
    clause = Clause(
        name="anomaly",
        metric=request.metric,
        aggregation=aggregation,
        quantile=quantile if aggregation == "histogram_quantile" else None,
        filters=request.filters,
    )
    window = _check_run(clause, windows.baseline_from, windows.anomaly_to, interval)
    data = _ClauseData(store, org_id, clause, window, timeout_s)
    rows = data.grouped(())
    check_row_limit(rows)
    if len(rows.labels):
        present = rows.present[0]
        times, values = rows.times[present], rows.values[0][present]
    else:
        times, values = np.empty(0, dtype=np.int64), np.empty(0)
    statistics = ch.window_statistics(times, values, np.ones(len(times), dtype=bool), windows)
    points = [
        (int(t), float(v) if np.isfinite(v) else None)
        for t, v in zip(times.tolist(), values.tolist(), strict=True)
    ]
    keys = request.candidate_keys or ch.discover_candidate_keys(
        data.reporting_series_keys(windows.anomaly_from, windows.anomaly_to)
    )
    movers: list[ch.Mover] = []
    for key in keys[: ch.MAX_CANDIDATE_KEYS]:
        by_label = data.grouped((key,))
        check_row_limit(by_label)
        movers.extend(
            ch.movers_of_key(
                key,
                [labels[0] for labels in by_label.labels],
                by_label.times,
                by_label.values,
                by_label.present,
                windows,
            )
        )
    return Report(
        metric=request.metric,
        aggregation=aggregation,
        interval=interval,
        windows=windows,
        statistics=statistics,
        movers=ch.top_movers(movers),
        points=points,
    )
