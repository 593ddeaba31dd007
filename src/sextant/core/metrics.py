"""The metric model: series identified by organization, name and sorted tag set; points in columns.

Every intake (Datadog series, OTLP, Dynatrace lines) translates into the same `PointBatch`, so a point is
stored one way whichever vendor sent it. A series is `metric` plus its sorted, de-duplicated tags
(`key:value`, or a bare `value` as Datadog allows); its id is a 64-bit hash of both, computed where the
point is accepted, so that the writer never looks a series up and a replayed log record maps to the same
series again.

A point keeps what later computations need: its kind, the value (for histograms, summaries and
distributions the sum), the count, min and max where the sender has them, histogram bounds and bucket
counts, raw samples (distributions) or quantile values (summaries, with their quantiles in `bounds`),
the interval it covers, and for sums the temporality and monotonicity, so that rates and increases can be
computed and counter resets found.
"""

from __future__ import annotations

import array
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from sextant.core.timeutil import FUTURE_TOLERANCE_MS, retention_floor_ms


class MetricKind(StrEnum):
    """What a point measures. `count` is a sum over its interval (Datadog count, OTel Sum)."""

    GAUGE = "gauge"
    COUNT = "count"
    RATE = "rate"
    DISTRIBUTION = "distribution"
    HISTOGRAM = "histogram"
    EXPONENTIAL_HISTOGRAM = "exponential_histogram"
    SUMMARY = "summary"


class Temporality(StrEnum):
    """How a sum relates to earlier points of its series (OTel AggregationTemporality)."""

    DELTA = "delta"
    CUMULATIVE = "cumulative"


# Datadog documents 200 characters for a tag; names are bounded alike so that no series key is huge.
MAX_TAG_CHARS = 200
MAX_METRIC_NAME_CHARS = 200
MAX_TAGS_PER_SERIES = 100


class InvalidPoint(ValueError):
    """A series or point the store cannot keep; the message says which part and why."""


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Sorted and de-duplicated: the same set in any order is the same series."""
    return tuple(sorted(set(tags)))


def series_id(metric: str, tags: tuple[str, ...]) -> int:
    """The 64-bit identity of a series within an organization (`tags` as from normalize_tags)."""
    # NUL cannot occur in a name or tag (check_series refuses it), so the joined text is unambiguous.
    key = "\0".join((metric, *tags)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def check_series(metric: str, tags: tuple[str, ...]) -> str | None:
    """Why a series cannot be stored, or None."""
    if not metric:
        return "metric name is empty"
    if len(metric) > MAX_METRIC_NAME_CHARS:
        return f"metric name is longer than {MAX_METRIC_NAME_CHARS} characters"
    if "\0" in metric:
        return "metric name contains a NUL character"
    if len(tags) > MAX_TAGS_PER_SERIES:
        return f"has {len(tags)} tags; at most {MAX_TAGS_PER_SERIES} are allowed"
    for tag in tags:
        if not tag:
            return "has an empty tag"
        if len(tag) > MAX_TAG_CHARS:
            return f"tag {tag[:40]!r}... is longer than {MAX_TAG_CHARS} characters"
        if "\0" in tag:
            return f"tag {tag!r} contains a NUL character"
    return None


def check_point_time(time_ms: int, now: int) -> str | None:
    """Why a point time is not accepted, or None: metrics are kept 15 months, like events."""
    if time_ms < retention_floor_ms(now):
        return f"is more than 15 months in the past (oldest accepted: {retention_floor_ms(now)} ms)"
    if time_ms > now + FUTURE_TOLERANCE_MS:
        return f"is more than 1 hour in the future (latest accepted: {now + FUTURE_TOLERANCE_MS} ms)"
    return None


POINT_COLUMNS = (
    "org_id",
    "series_id",
    "time_ms",
    "kind",
    "value",
    "count",
    "min",
    "max",
    "bounds",
    "bucket_counts",
    "samples",
    "interval_ms",
    "start_time_ms",
    "temporality",
    "monotonic",
    "unit",
)
# A run of plain points of one series (see PointBatch.add_values): what is the same for all its points,
# and how many points it has; their times and values are in the batch's run buffers, run after run.
RunHeader = tuple[int, int, str, int | None, str | None, bool | None, str | None, int]


@dataclass(slots=True)
class PlainRuns:
    """The plain runs of a batch: a header per run, and every run's times (int64 ms) and values
    (float64) back to back, in native byte order (bytearrays, so that native code can append to them)."""

    headers: list[RunHeader]
    times_ms: bytearray
    values: bytearray

    @classmethod
    def empty(cls) -> PlainRuns:
        return cls([], bytearray(), bytearray())

    @property
    def points(self) -> int:
        return len(self.times_ms) // 8


_T = TypeVar("_T")


class _Column(Generic[_T]):
    """A point column of a PointBatch, read as one list (plain runs expanded into it first)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, batch: PointBatch, owner: type | None = None) -> list[_T]:
        column: list[_T] = batch.columns()[self.name]  # type: ignore[assignment]
        return column


class PointBatch:
    """Points, as the writer commits them, and the series they belong to.

    Points with more than a value (histograms, summaries, distributions, sums with a start time) are kept
    point by point in columns; plain points are kept as runs of one series (`add_values`), a tuple per
    run: most senders send many series of few points, and a run costs one append where columns cost
    sixteen. `parts()` gives both as they are, for the log and the stores; `columns()` (and the column
    attributes) give every point in columns.
    """

    __slots__ = ("_columns", "_runs", "resource_tags", "series")

    org_id: _Column[int] = _Column()
    series_id: _Column[int] = _Column()
    time_ms: _Column[int] = _Column()
    kind: _Column[str] = _Column()
    value: _Column[float | None] = _Column()
    count: _Column[int | None] = _Column()
    min: _Column[float | None] = _Column()
    max: _Column[float | None] = _Column()
    bounds: _Column[list[float] | None] = _Column()
    bucket_counts: _Column[list[int] | None] = _Column()
    samples: _Column[list[float] | None] = _Column()
    interval_ms: _Column[int | None] = _Column()
    start_time_ms: _Column[int | None] = _Column()
    temporality: _Column[str | None] = _Column()
    monotonic: _Column[bool | None] = _Column()
    unit: _Column[str | None] = _Column()

    def __init__(self) -> None:
        self._columns: dict[str, list[object]] = {c: [] for c in POINT_COLUMNS}
        self._runs = PlainRuns.empty()
        # (org_id, series_id) -> (metric, tags) of every series a point of this batch belongs to.
        self.series: dict[tuple[int, int], tuple[str, tuple[str, ...]]] = {}
        # Of those, the tags that describe where the series comes from rather than what it measures
        # (OTLP's resource attributes), for series that have any: PostHog filters tell them apart.
        self.resource_tags: dict[tuple[int, int], tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._columns["time_ms"]) + self._runs.points

    def add_series(
        self, org_id: int, metric: str, tags: tuple[str, ...], resource_tags: tuple[str, ...] = ()
    ) -> int:
        """Register a series (tags normalized) and return its id, for the points that follow;
        `resource_tags`: which of its tags come from the resource that sent it (normalized too)."""
        sid = series_id(metric, tags)
        self.series.setdefault((org_id, sid), (metric, tags))
        if resource_tags:
            self.resource_tags.setdefault((org_id, sid), resource_tags)
        return sid

    def register_series(self, org_id: int, sid: int, metric: str, tags: tuple[str, ...]) -> None:
        """Register a series whose id the caller already has (`series_id(metric, tags)`, tags normalized)."""
        self.series.setdefault((org_id, sid), (metric, tags))

    def add(
        self,
        *,
        org_id: int,
        series_id: int,
        time_ms: int,
        kind: MetricKind,
        value: float | None,
        count: int | None = None,
        min: float | None = None,
        max: float | None = None,
        bounds: list[float] | None = None,
        bucket_counts: list[int] | None = None,
        samples: list[float] | None = None,
        interval_ms: int | None = None,
        start_time_ms: int | None = None,
        temporality: Temporality | None = None,
        monotonic: bool | None = None,
        unit: str | None = None,
    ) -> None:
        row = (
            org_id,
            series_id,
            time_ms,
            kind.value,
            value,
            count,
            min,
            max,
            bounds,
            bucket_counts,
            samples,
            interval_ms,
            start_time_ms,
            None if temporality is None else temporality.value,
            monotonic,
            unit or None,
        )
        for column, cell in zip(self._columns.values(), row, strict=True):
            column.append(cell)

    def add_values(
        self,
        *,
        org_id: int,
        series_id: int,
        kind: MetricKind,
        times_ms: list[int],
        values: list[float],
        interval_ms: int | None = None,
        temporality: Temporality | None = None,
        monotonic: bool | None = None,
        unit: str | None = None,
    ) -> None:
        """Plain points (a value each, nothing else) of one series: what most senders send, and much
        cheaper than `add` per point (one header for the run, its numbers copied into flat buffers)."""
        n = len(times_ms)
        if len(values) != n:
            raise ValueError("times_ms and values differ in length")
        if not n:
            return
        runs = self._runs
        runs.times_ms += array.array("q", times_ms)
        runs.values += array.array("d", values)
        temporality_value = None if temporality is None else temporality.value
        runs.headers.append(
            (org_id, series_id, kind.value, interval_ms, temporality_value, monotonic, unit or None, n)
        )

    def add_filled(
        self,
        fill: Callable[..., int],
        fill_args: tuple[object, ...],
        *,
        org_id: int,
        series_id: int,
        kind: MetricKind,
        interval_ms: int | None = None,
        temporality: Temporality | None = None,
        monotonic: bool | None = None,
        unit: str | None = None,
    ) -> int:
        """Plain points of one series written by `fill(times, values, *fill_args)` straight into the run
        buffers (native int64 ms, float64 values); `fill` returns how many it appended, or -1, having
        appended nothing, when it cannot. Returns what `fill` returned."""
        runs = self._runs
        n: int = fill(runs.times_ms, runs.values, *fill_args)
        if n > 0:
            temporality_value = None if temporality is None else temporality.value
            runs.headers.append(
                (org_id, series_id, kind.value, interval_ms, temporality_value, monotonic, unit or None, n)
            )
        return n

    def extend(self, other: PointBatch) -> None:
        for key, value in other.series.items():
            self.series.setdefault(key, value)
        for key, tags in other.resource_tags.items():
            self.resource_tags.setdefault(key, tags)
        for name, column in self._columns.items():
            column.extend(other._columns[name])
        mine, theirs = self._runs, other._runs
        mine.headers.extend(theirs.headers)
        mine.times_ms += theirs.times_ms
        mine.values += theirs.values

    def referenced_series(self) -> set[tuple[int, int]]:
        """(org_id, series_id) of every series the batch has points of."""
        columns, runs = self._columns, self._runs
        found = set(zip(columns["org_id"], columns["series_id"], strict=True))
        found.update((h[0], h[1]) for h in runs.headers)
        return found  # type: ignore[return-value]

    def parts(self) -> tuple[dict[str, list[object]], PlainRuns]:
        """The point-by-point columns and the plain runs, as kept (not to be changed)."""
        return self._columns, self._runs

    def columns(self) -> dict[str, list[object]]:
        """Every point column by name: the plain runs are moved into the columns first."""
        runs = self._runs
        if runs.headers:
            columns = self._columns
            columns["time_ms"].extend(array.array("q", runs.times_ms).tolist())
            columns["value"].extend(array.array("d", runs.values).tolist())
            for org_id, sid, kind, interval_ms, temporality, monotonic, unit, n in runs.headers:
                none: list[object] = [None] * n
                columns["org_id"].extend([org_id] * n)
                columns["series_id"].extend([sid] * n)
                columns["kind"].extend([kind] * n)
                for name in ("count", "min", "max", "bounds", "bucket_counts", "samples", "start_time_ms"):
                    columns[name].extend(none)
                columns["interval_ms"].extend([interval_ms] * n)
                columns["temporality"].extend([temporality] * n)
                columns["monotonic"].extend([monotonic] * n)
                columns["unit"].extend([unit] * n)
            self._runs = PlainRuns.empty()
        return self._columns

    @classmethod
    def from_parts(
        cls,
        columns: dict[str, list[object]],
        runs: PlainRuns,
        series: dict[tuple[int, int], tuple[str, tuple[str, ...]]],
    ) -> PointBatch:
        batch = cls()
        batch._columns = {c: columns[c] for c in POINT_COLUMNS}
        batch._runs = runs
        batch.series = series
        return batch
