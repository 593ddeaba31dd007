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

from dataclasses import dataclass
from typing import Literal, TypeAlias


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

# Per series and bucket: how the points in the bucket become one value.
TimeAggregation = Literal["avg", "sum", "min", "max", "count", "last"]
# What a point contributes: its value, or (Datadog rates) its value times its interval in seconds, the
# count it stands for.
PointValue = Literal["value", "value_times_interval"]


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
