"""The event query IR: what the faces translate vendor requests into and what storage compiles.

Semantics, in the order they apply:
1. Events of the organization with `start_ms <= time < end_ms` (and inside retention) that match `filter`.
2. `audience`: only events whose user (or account) belongs to the audience set.
3. `occurrence`: only events of entities (users) whose number of events left after 1-2 satisfies it.
4. `aggregation`, per group (`group_by`, nested top-N) and, for a timeseries, per time bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from sextant.query.filters import Field, Filter

USER = Field("usr.id")
ACCOUNT = Field("account.id")

AggregationKind = Literal["count", "cardinality", "sum", "avg", "min", "max", "percentile"]


@dataclass(frozen=True, slots=True)
class Aggregation:
    kind: AggregationKind
    field: Field | None = None  # required for every kind but count
    quantile: float | None = None  # 0 < q < 1, for kind "percentile" (median is 0.5)


@dataclass(frozen=True, slots=True)
class GroupBy:
    """Top `limit` values of `field` by `rank_by`; nested group-bys rank within each parent group."""

    field: Field
    limit: int
    rank_by: Aggregation
    descending: bool = True
    # Events lacking the field form a group labelled `missing_label`, unless `include_missing` is false.
    include_missing: bool = True
    missing_label: str = "N/A"


@dataclass(frozen=True, slots=True)
class Occurrence:
    op: Literal["=", ">", ">=", "<", "<="]
    count: int
    entity: Field = USER


# Audience: a boolean formula over named sets of users or accounts.
@dataclass(frozen=True, slots=True)
class EntitiesMatching:
    """Entities (`usr.id` or `account.id`) having at least one event in the time range matching `filter`."""

    entity: Field
    filter: Filter


@dataclass(frozen=True, slots=True)
class StoredSet:
    """A stored set of entity ids (a segment of user ids)."""

    entity: Field
    ids: tuple[str, ...]


AudienceSet: TypeAlias = EntitiesMatching | StoredSet


@dataclass(frozen=True, slots=True)
class SetRef:
    name: str


@dataclass(frozen=True, slots=True)
class SetNot:
    operand: AudienceExpr


@dataclass(frozen=True, slots=True)
class SetAnd:
    operands: tuple[AudienceExpr, ...]


@dataclass(frozen=True, slots=True)
class SetOr:
    operands: tuple[AudienceExpr, ...]


AudienceExpr: TypeAlias = SetRef | SetNot | SetAnd | SetOr


@dataclass(frozen=True, slots=True)
class Audience:
    sets: dict[str, AudienceSet]
    formula: AudienceExpr


@dataclass(frozen=True, slots=True)
class EventQuery:
    org_id: int
    start_ms: int
    end_ms: int
    filter: Filter
    aggregation: Aggregation
    group_by: tuple[GroupBy, ...] = ()
    interval_ms: int | None = None  # set: a timeseries, buckets aligned to multiples of it since the epoch
    audience: Audience | None = None
    occurrence: Occurrence | None = None
    source: str = "product_analytics"


@dataclass(frozen=True, slots=True)
class EventListQuery:
    org_id: int
    start_ms: int
    end_ms: int
    filter: Filter
    columns: tuple[Field, ...]
    limit: int
    sort_field: Field | None = None  # None: time
    descending: bool = True
    audience: Audience | None = None
    occurrence: Occurrence | None = None
    source: str = "product_analytics"
    offset: int = 0  # matching events skipped before the page, in the order of the sort
