"""The vendor-neutral metric query: which series (name and a filter over their tags), how their points are
rolled up into time buckets, and which tag keys group them.

Every metric face (Datadog queries, Dynatrace, PostHog) translates into `SeriesQuery`; storage answers it
with one row of bucket values per selected series (`SeriesRollup`); the series engine does the rest
(interpolation, fill, space aggregation, formulas and functions) on aligned arrays.

Tag matching: a series' tags are `key:value` strings (or bare values). `TagGlob` matches a whole tag
against a pattern in which `*` is any run of characters (`host:web-*`, `*east*`, `env`); `TagRegex`
matches the value of a key against a regular expression (whole value); `TagCompare` compares the value of a
key numerically (a value that is not a number does not match). A filter matches a series when it matches
any of its tags (for the leaves) and by the usual boolean rules for the tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, TypeAlias

TagScope = Literal["any", "resource", "attribute", "auto"]


@dataclass(frozen=True, slots=True)
class AllTags:
    """Every series (`{*}`)."""


@dataclass(frozen=True, slots=True)
class TagGlob:
    pattern: str


@dataclass(frozen=True, slots=True)
class TagRegex:
    key: str
    regex: str
    # Which of a series' tags to look in: all of them, those from the resource that sent it (OTLP's
    # resource attributes), the others, or (`auto`) the resource's when it has the key, else the others.
    scope: TagScope = "any"


@dataclass(frozen=True, slots=True)
class TagCompare:
    key: str
    op: Literal["<", "<=", ">", ">="]
    value: float


@dataclass(frozen=True, slots=True)
class TagAnd:
    operands: tuple[TagFilter, ...]


@dataclass(frozen=True, slots=True)
class TagOr:
    operands: tuple[TagFilter, ...]


@dataclass(frozen=True, slots=True)
class TagNot:
    operand: TagFilter


TagFilter: TypeAlias = AllTags | TagGlob | TagRegex | TagCompare | TagAnd | TagOr | TagNot

# Per series and bucket: how the points in the bucket become one value: one of these, or a percentile of
# the points' values, "p" and the percentile from 0 to 100 ("p50", "p95", "p99.9"; see `time_percentile`).
TimeAggregation = Literal["avg", "sum", "min", "max", "count", "last"] | str
BASIC_TIME_AGGREGATIONS = ("avg", "sum", "min", "max", "count", "last")
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d+)?)")


def time_percentile(aggregation: str) -> float | None:
    """The fraction a percentile time aggregation asks for ("p95" is 0.95), None for the basic ones;
    ValueError for anything else (a percentile above 100 included)."""
    if aggregation in BASIC_TIME_AGGREGATIONS:
        return None
    match = _PERCENTILE.fullmatch(aggregation)
    if match is None or float(match.group(1)) > 100:
        raise ValueError(
            f"unknown time aggregation {aggregation!r}: use one of {', '.join(BASIC_TIME_AGGREGATIONS)} "
            "or a percentile p0 ... p100"
        )
    return float(match.group(1)) / 100


# What a point contributes: its value, or (Datadog rates) its value times its interval in seconds, the
# count it stands for, or (counters) its increase since the previous point of its series in the query's
# range: a delta point's value as it is, a Datadog rate's value times its interval, otherwise the
# difference from the previous value, the value itself where it dropped (a counter reset), and 0 for the
# series' first point in the range (nothing to compare it with).
PointValue = Literal["value", "value_times_interval", "counter_increase"]


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    org_id: int
    metric: str
    filter: TagFilter
    start_ms: int
    end_ms: int
    step_ms: int
    time_aggregation: TimeAggregation = "avg"
    point_value: PointValue = "value"
    # Tag keys whose values label each series (a series lacking a key gets None for it).
    group_by: tuple[str, ...] = ()
    # Distributions: combine the points of each group and bucket at once, over their samples ("avg",
    # "sum", "min", "max", "count", or a percentile "p50" ... "p99.9"); the answer has one row per group.
    samples: str | None = None
    # Roll the points of every series of a group up together (one row per group: the time aggregation
    # over all of the group's points in each bucket) instead of each series apart. Implied by `samples`.
    pool_groups: bool = False
    # Buckets start at bucket_origin_ms + k * step_ms (0: multiples of the step since the epoch; PostHog's
    # weeks start on Mondays, the epoch was a Thursday).
    bucket_origin_ms: int = 0
    # With samples="count": count only the samples for which `sample <op> threshold` holds (Datadog's
    # `count(v: v<=1):metric{...}`); a bucket whose group has samples but none passing counts 0.
    value_filter: tuple[Literal["<", "<=", ">", ">="], float] | None = None
