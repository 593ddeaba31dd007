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

import hashlib
from collections.abc import Iterable
from enum import StrEnum

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


class PointBatch:
    """Points in columns, as the writer commits them, and the series they belong to."""

    __slots__ = (
        "bounds",
        "bucket_counts",
        "count",
        "interval_ms",
        "kind",
        "max",
        "min",
        "monotonic",
        "org_id",
        "samples",
        "series",
        "series_id",
        "start_time_ms",
        "temporality",
        "time_ms",
        "unit",
        "value",
    )

    def __init__(self) -> None:
        self.org_id: list[int] = []
        self.series_id: list[int] = []
        self.time_ms: list[int] = []
        self.kind: list[str] = []
        self.value: list[float | None] = []
        self.count: list[int | None] = []
        self.min: list[float | None] = []
        self.max: list[float | None] = []
        self.bounds: list[list[float] | None] = []
        self.bucket_counts: list[list[int] | None] = []
        self.samples: list[list[float] | None] = []
        self.interval_ms: list[int | None] = []
        self.start_time_ms: list[int | None] = []
        self.temporality: list[str | None] = []
        self.monotonic: list[bool | None] = []
        self.unit: list[str | None] = []
        # (org_id, series_id) -> (metric, tags) of every series a point of this batch belongs to.
        self.series: dict[tuple[int, int], tuple[str, tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return len(self.time_ms)

    def add_series(self, org_id: int, metric: str, tags: tuple[str, ...]) -> int:
        """Register a series (tags normalized) and return its id, for the points that follow."""
        sid = series_id(metric, tags)
        self.series.setdefault((org_id, sid), (metric, tags))
        return sid

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
        self.org_id.append(org_id)
        self.series_id.append(series_id)
        self.time_ms.append(time_ms)
        self.kind.append(kind.value)
        self.value.append(value)
        self.count.append(count)
        self.min.append(min)
        self.max.append(max)
        self.bounds.append(bounds)
        self.bucket_counts.append(bucket_counts)
        self.samples.append(samples)
        self.interval_ms.append(interval_ms)
        self.start_time_ms.append(start_time_ms)
        self.temporality.append(None if temporality is None else temporality.value)
        self.monotonic.append(monotonic)
        self.unit.append(unit or None)

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
        """Plain points (a value each, nothing else) of one series, column by column: what most senders
        send, and several times cheaper than `add` per point."""
        n = len(times_ms)
        if len(values) != n:
            raise ValueError("times_ms and values differ in length")
        none: list[None] = [None] * n
        self.org_id.extend([org_id] * n)
        self.series_id.extend([series_id] * n)
        self.time_ms.extend(times_ms)
        self.kind.extend([kind.value] * n)
        self.value.extend(values)
        for column in (self.count, self.min, self.max, self.bounds, self.bucket_counts, self.samples):
            column.extend(none)
        self.interval_ms.extend([interval_ms] * n)
        self.start_time_ms.extend(none)
        self.temporality.extend([None if temporality is None else temporality.value] * n)
        self.monotonic.extend([monotonic] * n)
        self.unit.extend([unit or None] * n)

    def extend(self, other: PointBatch) -> None:
        for column in self.__slots__:
            if column == "series":
                for key, value in other.series.items():
                    self.series.setdefault(key, value)
            else:
                getattr(self, column).extend(getattr(other, column))

    def columns(self) -> dict[str, list[object]]:
        """Every point column by name (for the log and the stores)."""
        return {c: getattr(self, c) for c in self.__slots__ if c != "series"}

    @classmethod
    def from_columns(
        cls, columns: dict[str, list[object]], series: dict[tuple[int, int], tuple[str, tuple[str, ...]]]
    ) -> PointBatch:
        batch = cls()
        for name, values in columns.items():
            setattr(batch, name, values)
        batch.series = series
        return batch
