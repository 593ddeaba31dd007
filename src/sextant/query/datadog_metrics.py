"""What a Datadog metric query string means, turned into a storage query and the steps after it.

A metric query is rolled up per stored series (time aggregation), then combined per group (space
aggregation), as Datadog does. The metric's type decides the defaults (decisions, documented in
docs/datadog-metric-queries.md):

| type | no modifier | `.as_count()` | `.as_rate()` |
|---|---|---|---|
| gauge (and unknown) | time avg, interpolated | as with no modifier | as with no modifier |
| count | sum per bucket | sum per bucket | sum per bucket / bucket seconds |
| rate | avg of the per-second values | sum of value x interval | that sum / bucket seconds |

Distributions (and OTel histograms, which Datadog shows as distributions) are combined per group and
bucket at once over their values: `avg` is the sum over the count, `sum`, `count`, `min`, `max`, and the
percentile aggregators (`p50:` ... `p99.9:`) are taken over every raw value of the group, which only
distributions keep.

A `.rollup(agg)` replaces the time aggregation of the first column; `.fill(method, limit)` replaces the
gauges' default interpolation (linear, up to 300 s after a real value). Space aggregation defaults to
`avg`; `count` counts the series of the group that have a value. Tags filter by the scope tree.

`count(v: v<=1):metric{...}` (Datadog's threshold queries on distributions, as in latency SLOs: the values
at most 1 over `count:metric{...}`, all of them) counts, per group and bucket, the raw values of a
distribution that pass the comparison; only distributions keep their values, so any other type is refused.

`by {*}` groups by every tag: the keys are those of the `key:value` tags of the series that have points in
the window, each series labelled with its own values, so that each series is its own group (`group_tags`
its tags). As with a named key, a key with several values in one series groups by its first value, and
tags without a key (`production`) are not group keys: series told apart only by those are combined.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from sextant.core.units import SECOND, MetricUnit
from sextant.query.metric_syntax import (
    CompareOp,
    MetricQueryAst,
    Scope,
    ScopeAll,
    ScopeAnd,
    ScopeNot,
    ScopeOr,
    TagCompare,
    TagIn,
    TagMatch,
    TagRegex,
)
from sextant.query.metrics import (
    AllTags,
    PointValue,
    SeriesQuery,
    TagAnd,
    TagFilter,
    TagGlob,
    TagNot,
    TagOr,
    TimeAggregation,
)
from sextant.query.metrics import TagCompare as IrTagCompare
from sextant.query.metrics import TagRegex as IrTagRegex
from sextant.series.frame import SeriesFrame
from sextant.series.functions.interpolation import DEFAULT_LIMIT_S, MAX_LIMIT_S, fill
from sextant.series.space_aggregation import SpaceAggregation, aggregate_groups
from sextant.storage.backend import Backend

# Kinds whose points summarize many values (Datadog shows OTel histograms as distributions).
DISTRIBUTION_KINDS = ("distribution", "histogram", "exponential_histogram")


class UnsupportedQuery(ValueError):
    """A query that parses but that Sextant does not evaluate; the message says what to change."""


def tag_filter(node: Scope) -> TagFilter:
    """The scope tree of a metric query as the storage filter tree."""
    if isinstance(node, ScopeAll):
        return AllTags()
    if isinstance(node, TagMatch):
        return TagGlob(node.glob)
    if isinstance(node, TagIn):
        return TagOr(tuple(TagGlob(f"{node.key}:{value}") for value in node.values))
    if isinstance(node, TagRegex):
        return IrTagRegex(node.key, node.pattern)
    if isinstance(node, TagCompare):
        return IrTagCompare(node.key, node.op, float(node.value))
    if isinstance(node, ScopeNot):
        return TagNot(tag_filter(node.operand))
    if isinstance(node, ScopeAnd):
        return TagAnd(tuple(tag_filter(op) for op in node.operands))
    if isinstance(node, ScopeOr):
        return TagOr(tuple(tag_filter(op) for op in node.operands))
    raise TypeError(f"unknown scope node {node!r}")


@dataclass(frozen=True)
class MetricPlan:
    """How to compute one metric query over any window with a given step."""

    metric: str
    filter: TagFilter
    group_by: tuple[str, ...]
    time_aggregation: TimeAggregation
    point_value: PointValue
    space_aggregation: SpaceAggregation
    # Divide each bucket by its length in seconds (`.as_rate()` on counts and rates).
    per_second: bool
    # Fill per stored series before space aggregation: (method, limit seconds), or None.
    fill: tuple[str, float] | None
    kind: str | None
    # Distributions: how the samples of a group and bucket combine (see SeriesQuery.samples).
    samples: str | None = None
    # `count(v: v<=1):`: count only the samples passing the comparison (with samples="count").
    value_filter: tuple[CompareOp, float] | None = None
    # `by {*}`: group by every key the selected series carry (group_by is then empty until they are read).
    every_tag: bool = False

    def unit(self, metric_unit: MetricUnit | None) -> MetricUnit | None:
        """The unit of the query's result for a metric measured in `metric_unit`: counts of points,
        series or values have none, `.as_rate()` is per second, `.as_count()` of a rate drops its
        per-unit."""
        if metric_unit is None:
            return None
        counting = self.samples == "count" if self.samples is not None else self.time_aggregation == "count"
        if counting or self.space_aggregation == "count":
            return None
        if self.per_second:
            return MetricUnit(metric_unit.unit, SECOND)
        if self.point_value == "value_times_interval":
            return MetricUnit(metric_unit.unit)
        return metric_unit


def plan(ast: MetricQueryAst, kind: str | None) -> MetricPlan:
    """The plan of a parsed query for a metric of `kind` (its latest stored type; None when unknown)."""
    if ast.value_filter is not None and kind not in (None, "distribution"):
        raise UnsupportedQuery(
            f"count(v: ...) counts the raw values of a distribution; {ast.metric} is a {kind}"
            + (" (bucket counts only)" if kind in DISTRIBUTION_KINDS else "")
            + ": send it as a distribution, or count its series with count:metric{...}"
        )
    if ast.weighted and kind not in (None, "gauge"):
        raise UnsupportedQuery(".weighted() applies to gauges only")
    space = ast.space_aggregator or "avg"
    if kind in DISTRIBUTION_KINDS or ast.value_filter is not None:
        return _distribution_plan(ast, kind or "distribution", space)
    if space not in ("avg", "sum", "min", "max", "count"):
        raise UnsupportedQuery(
            f"the {space} aggregator needs a distribution metric; {ast.metric} is "
            f"{'not stored yet' if kind is None else 'a ' + kind}: use avg, sum, min or max"
        )
    modifier = ast.type_modifier
    per_second = False
    point_value: PointValue = "value"
    interpolate = kind in (None, "gauge")
    if kind == "count":
        time: TimeAggregation = "sum"
        per_second = modifier == "as_rate"
    elif kind == "rate":
        if modifier is None:
            time = "avg"
        else:
            time, point_value = "sum", "value_times_interval"
            per_second = modifier == "as_rate"
    else:
        time = "avg"
    if ast.rollup is not None and ast.rollup.aggregator is not None:
        time = ast.rollup.aggregator
    filling: tuple[str, float] | None = ("linear", DEFAULT_LIMIT_S) if interpolate else None
    if ast.fill is not None:
        limit = ast.fill.limit_seconds if ast.fill.limit_seconds is not None else DEFAULT_LIMIT_S
        if not 0 < limit <= MAX_LIMIT_S:
            raise UnsupportedQuery(f".fill() limit must be between 1 and {MAX_LIMIT_S} seconds, not {limit}")
        filling = None if ast.fill.method == "null" else (ast.fill.method, float(limit))
    return MetricPlan(
        metric=ast.metric,
        filter=tag_filter(ast.scope),
        group_by=_group_keys(ast),
        time_aggregation=time,
        point_value=point_value,
        space_aggregation=space,  # type: ignore[arg-type]
        per_second=per_second,
        fill=filling,
        kind=kind,
        every_tag="*" in ast.group_by,
    )


def _group_keys(ast: MetricQueryAst) -> tuple[str, ...]:
    return () if "*" in ast.group_by else tuple(ast.group_by)


def _distribution_plan(ast: MetricQueryAst, kind: str, space: str) -> MetricPlan:
    # A distribution is combined over its samples per group and bucket at once, as Datadog computes its
    # percentiles over every value of the group; no rollup aggregator, no interpolation.
    if space.startswith("p") and kind != "distribution":
        raise UnsupportedQuery(
            f"the {space} aggregator needs the raw values of a distribution; {ast.metric} is a {kind} "
            "(bucket counts only): use avg, sum, min, max or count"
        )
    if ast.type_modifier is not None:
        raise UnsupportedQuery(f".{ast.type_modifier}() does not apply to distributions")
    value_filter = None
    if ast.value_filter is not None:
        value_filter = (ast.value_filter.op, float(ast.value_filter.value))
    return MetricPlan(
        metric=ast.metric,
        filter=tag_filter(ast.scope),
        group_by=_group_keys(ast),
        time_aggregation="sum",
        point_value="value",
        space_aggregation="sum",
        per_second=False,
        fill=None,
        kind=kind,
        samples=space,
        value_filter=value_filter,
        every_tag="*" in ast.group_by,
    )


def requested_step_ms(ast: MetricQueryAst) -> int | None:
    """The bucket width the query asks for with `.rollup(agg, seconds)`, if any."""
    if ast.rollup is None or ast.rollup.seconds is None:
        return None
    return int(ast.rollup.seconds * 1000)


def run(
    store: Backend,
    org_id: int,
    metric_plan: MetricPlan,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    timeout_s: float,
) -> SeriesFrame:
    """The query's series, one per group, over [start_ms, end_ms) in buckets of step_ms."""
    query = SeriesQuery(
        org_id=org_id,
        metric=metric_plan.metric,
        filter=metric_plan.filter,
        start_ms=start_ms,
        end_ms=end_ms,
        step_ms=step_ms,
        time_aggregation=metric_plan.time_aggregation,
        point_value=metric_plan.point_value,
        group_by=metric_plan.group_by,
        samples=metric_plan.samples,
        value_filter=metric_plan.value_filter,
    )
    if metric_plan.every_tag and metric_plan.samples is not None:
        # Samples are combined per group in the store: learn the keys from the series first.
        probe = replace(query, samples=None, value_filter=None, time_aggregation="count")
        _, tags = _series_with_points(store.query_series(probe, timeout_s))
        keys = tuple(sorted({k for t in tags for k in t}))
        query = replace(query, group_by=keys)
    raw = store.query_series(query, timeout_s)
    if metric_plan.samples is not None:
        return raw  # already one series per group
    if metric_plan.every_tag:
        raw = label_by_every_tag(raw)
    if metric_plan.fill is not None and np.isnan(raw.values).any():
        method, limit = metric_plan.fill
        raw = fill(raw, method, limit)  # type: ignore[arg-type]
    grouped = aggregate_groups(raw, metric_plan.space_aggregation)
    if metric_plan.per_second:
        grouped = grouped.with_values(grouped.values / (step_ms / 1000.0))
    return grouped


def _tag_values(tags: tuple[str, ...]) -> dict[str, str]:
    """A series' `key:value` tags by key, the first value of a key that has several (as the store groups
    by a named key); tags without a key are left out."""
    values: dict[str, str] = {}
    for tag in sorted(tags):
        key, sep, value = tag.partition(":")
        if sep and key:
            values.setdefault(key, value)
    return values


def _series_with_points(frame: SeriesFrame) -> tuple[npt.NDArray[np.intp], list[dict[str, str]]]:
    """The rows that have a value in the window, and their tags by key."""
    rows = np.flatnonzero(~np.isnan(frame.values).all(axis=1))
    return rows, [_tag_values(frame.tags[row]) for row in rows]


def label_by_every_tag(frame: SeriesFrame) -> SeriesFrame:
    """Stored series (with their tags) grouped by every key they carry (`by {*}`): the series without any
    point in the window left out, each other labelled with its own values."""
    rows, tags = _series_with_points(frame)
    keys = tuple(sorted({k for t in tags for k in t}))
    return replace(
        frame,
        values=frame.values[rows],
        group_by=keys,
        labels=[tuple(t.get(k) for k in keys) for t in tags],
        tags=[frame.tags[row] for row in rows],
    )
