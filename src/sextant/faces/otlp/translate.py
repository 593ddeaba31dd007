"""An OTLP metrics export as one `PointBatch`, and the data points refused with the reason for each.

Series: the metric name as sent, tagged with every resource attribute and every data point attribute
as `key:value` (see `attributes`), plus `service:<service.name>` from the resource. Kinds:

- Gauge → GAUGE.
- Sum → COUNT with its temporality and monotonicity; the start time and the interval
  `time - start` when a start time is given.
- Histogram → HISTOGRAM: value = sum, count, min, max, `bounds` = explicit_bounds, bucket_counts.
- ExponentialHistogram → EXPONENTIAL_HISTOGRAM, flattened to explicit bounds (see `exponential`).
- Summary → SUMMARY: value = sum, count, the quantiles in `bounds` and their values in `samples`.

Integer and double values are both stored as doubles; times are `time_unix_nano` in milliseconds.
A point flagged NoRecordedValue (a staleness marker: "valid but has no recorded value") is skipped,
neither stored nor refused. Refused: points whose time is missing or outside what the store keeps,
whose series `check_series` refuses, whose numbers are not finite (a summary's quantile values may be
NaN: the quantile of an empty window), sums and histograms of unspecified temporality, and histograms
whose buckets do not add up. A metric without data (or of a kind newer than this server) is reported,
its points not being countable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from sextant.core.metrics import (
    MetricKind,
    PointBatch,
    Temporality,
    check_point_time,
    check_series,
    normalize_tags,
)
from sextant.faces.otlp import json_mapping
from sextant.faces.otlp.attributes import KeyValue, attribute_tags, number_text, value_text
from sextant.faces.otlp.exponential import BoundsOutOfRange, flatten

OtlpRequest = metrics_service_pb2.ExportMetricsServiceRequest | json_mapping.ExportMetricsServiceRequest

NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_TEMPORALITY = {
    metrics_pb2.AGGREGATION_TEMPORALITY_DELTA: Temporality.DELTA,
    metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE: Temporality.CUMULATIVE,
}
# The store's counts are 64-bit signed; OTLP's are unsigned.
_MAX_COUNT = 2**63 - 1
_NS_PER_MS = 1_000_000
# The error message names this many distinct problems at most.
_PROBLEMS_SHOWN = 10


@dataclass
class Translation:
    batch: PointBatch
    rejected: int = 0
    # NoRecordedValue points: valid, nothing to store.
    skipped: int = 0
    # Distinct problems with the number of points each refused (0 for what could not be counted).
    problems: dict[str, int] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        return len(self.batch)

    def error_message(self) -> str:
        """What was refused and why, for `partial_success.error_message` (empty when nothing was)."""
        if not self.problems:
            return ""
        parts = [
            f"{problem} ({count} data point{'' if count == 1 else 's'})" if count else problem
            for problem, count in list(self.problems.items())[:_PROBLEMS_SHOWN]
        ]
        more = len(self.problems) - _PROBLEMS_SHOWN
        if more > 0:
            parts.append(f"and {more} more problem{'' if more == 1 else 's'}")
        head = f"{self.rejected} data point{'' if self.rejected == 1 else 's'} refused: "
        return head + "; ".join(parts)


@dataclass(frozen=True)
class _Placement:
    """Where a point goes: its series and times, and what its metric says of all its points."""

    metric: str
    tags: tuple[str, ...]
    time_ms: int
    start_ms: int | None
    interval_ms: int | None
    temporality: Temporality | None
    monotonic: bool | None
    unit: str | None


class _Refused(Exception):
    """A data point that cannot be stored; the message says why."""


def translate(request: OtlpRequest, org_id: int, now: int) -> Translation:
    """Every point of the export that can be stored, in one batch for `org_id`; `now` in epoch ms."""
    translator = _Translator(org_id, now)
    for resource_metrics in request.resource_metrics:
        resource = resource_tags(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                translator.metric(metric, resource)
    return translator.result


def resource_tags(attributes: Any) -> list[str]:
    tags = attribute_tags(attributes)
    tags.extend(f"service:{value_text(kv.value)}" for kv in attributes if kv.key == "service.name")
    return tags


def _label(name: str) -> str:
    return repr(name if len(name) <= 100 else name[:100] + "...")


class _Translator:
    def __init__(self, org_id: int, now: int) -> None:
        self.org_id = org_id
        self.now = now
        self.result = Translation(PointBatch())
        self._resource: tuple[str, ...] = ()

    def _problem(self, message: str, points: int) -> None:
        self.result.rejected += points
        problems = self.result.problems
        problems[message] = problems.get(message, 0) + points

    def metric(self, metric: Any, resource: list[str]) -> None:
        # The series of this metric come from this resource: its tags are kept apart as well.
        self._resource = normalize_tags(resource)
        name: str = metric.name
        which = metric.WhichOneof("data")
        if which is None:
            self._problem(
                f"metric {_label(name)} has no data (gauge, sum, histogram, exponentialHistogram or "
                "summary); nothing was stored for it",
                0,
            )
            return
        data = getattr(metric, which)
        temporality: Temporality | None = None
        if which in ("sum", "histogram", "exponential_histogram"):
            temporality = _TEMPORALITY.get(data.aggregation_temporality)
            if temporality is None:
                recorded = sum(1 for p in data.data_points if not p.flags & NO_RECORDED_VALUE)
                self._problem(
                    f"metric {_label(name)}: aggregation_temporality {data.aggregation_temporality} is not "
                    "1 (delta) or 2 (cumulative)",
                    recorded,
                )
                return
        unit: str | None = metric.unit or None
        if which == "gauge":
            self._gauge(name, unit, resource, data.data_points)
            return
        add = {
            "sum": self._sum_point,
            "histogram": self._histogram_point,
            "exponential_histogram": self._exponential_point,
            "summary": self._summary_point,
        }[which]
        monotonic = bool(data.is_monotonic) if which == "sum" else None
        for point in data.data_points:
            if point.flags & NO_RECORDED_VALUE:
                self.result.skipped += 1
                continue
            try:
                tags = self._tags(name, resource, point.attributes)
                time_ms, start_ms, interval_ms = self._times(point)
                add(
                    point,
                    _Placement(name, tags, time_ms, start_ms, interval_ms, temporality, monotonic, unit),
                )
            except _Refused as exc:
                self._problem(f"metric {_label(name)}: {exc}", 1)

    def _tags(self, name: str, resource: list[str], attributes: list[KeyValue]) -> tuple[str, ...]:
        """The series' tags, once `check_series` accepts it."""
        tags = normalize_tags([*resource, *attribute_tags(attributes)])
        reason = check_series(name, tags)
        if reason is not None:
            raise _Refused(reason)
        return tags

    def _series(self, at: _Placement) -> int:
        # Registered only for a point that is stored: a refused point leaves no empty series behind.
        return self.result.batch.add_series(self.org_id, at.metric, at.tags, self._resource)

    def _times(self, point: Any) -> tuple[int, int | None, int | None]:
        time_ns: int = point.time_unix_nano
        if time_ns == 0:
            raise _Refused("time_unix_nano is missing (0)")
        time_ms = time_ns // _NS_PER_MS
        reason = check_point_time(time_ms, self.now)
        if reason is not None:
            raise _Refused(f"point time {reason}")
        start_ns: int = point.start_time_unix_nano
        if start_ns == 0:
            return time_ms, None, None
        if start_ns > time_ns:
            raise _Refused("start_time_unix_nano is later than time_unix_nano")
        start_ms = start_ns // _NS_PER_MS
        return time_ms, start_ms, time_ms - start_ms

    def _gauge(self, name: str, unit: str | None, resource: list[str], points: Any) -> None:
        # Plain values: gathered by series, then added column by column.
        by_series: dict[int, tuple[list[int], list[float]]] = {}
        for point in points:
            if point.flags & NO_RECORDED_VALUE:
                self.result.skipped += 1
                continue
            try:
                tags = self._tags(name, resource, point.attributes)
                time_ms, _, _ = self._times(point)
                value = _number(point)
            except _Refused as exc:
                self._problem(f"metric {_label(name)}: {exc}", 1)
                continue
            series = self.result.batch.add_series(self.org_id, name, tags, self._resource)
            times, values = by_series.setdefault(series, ([], []))
            times.append(time_ms)
            values.append(value)
        for series, (times, values) in by_series.items():
            self.result.batch.add_values(
                org_id=self.org_id,
                series_id=series,
                kind=MetricKind.GAUGE,
                times_ms=times,
                values=values,
                unit=unit,
            )

    # Each adder checks the whole point before it registers the series and adds the point.

    def _add(self, at: _Placement, kind: MetricKind, **fields: Any) -> None:
        """Add one point where `at` places it, with what its metric says of all its points."""
        self.result.batch.add(
            org_id=self.org_id,
            series_id=self._series(at),
            time_ms=at.time_ms,
            kind=kind,
            interval_ms=at.interval_ms,
            start_time_ms=at.start_ms,
            temporality=at.temporality,
            monotonic=at.monotonic,
            unit=at.unit,
            **fields,
        )

    def _sum_point(self, point: Any, at: _Placement) -> None:
        value = _number(point)
        self._add(at, MetricKind.COUNT, value=value)

    def _histogram_point(self, point: Any, at: _Placement) -> None:
        count = _count(point.count, "count")
        bounds = [float(b) for b in point.explicit_bounds]
        counts = [int(c) for c in point.bucket_counts]
        if bounds or counts:
            if len(counts) != len(bounds) + 1:
                raise _Refused(
                    f"has {len(counts)} bucket_counts for {len(bounds)} explicit_bounds; "
                    f"expected {len(bounds) + 1}"
                )
            if not all(math.isfinite(b) for b in bounds) or any(a >= b for a, b in pairwise(bounds)):
                raise _Refused("explicit_bounds must be finite and strictly increasing")
            _check_total(counts, count, "bucket_counts")
        total, low, high = _sum_min_max(point)
        self._add(
            at,
            MetricKind.HISTOGRAM,
            value=total,
            count=count,
            min=low,
            max=high,
            bounds=bounds or None,
            bucket_counts=counts or None,
        )

    def _exponential_point(self, point: Any, at: _Placement) -> None:
        count = _count(point.count, "count")
        zero_count = _count(point.zero_count, "zero_count")
        positive = [int(c) for c in point.positive.bucket_counts]
        negative = [int(c) for c in point.negative.bucket_counts]
        _check_total([zero_count, *positive, *negative], count, "zero_count and the bucket counts")
        try:
            bounds, counts = flatten(
                point.scale, zero_count, point.positive.offset, positive, point.negative.offset, negative
            )
        except BoundsOutOfRange as exc:
            raise _Refused(str(exc)) from None
        total, low, high = _sum_min_max(point)
        self._add(
            at,
            MetricKind.EXPONENTIAL_HISTOGRAM,
            value=total,
            count=count,
            min=low,
            max=high,
            bounds=bounds,
            bucket_counts=counts,
        )

    def _summary_point(self, point: Any, at: _Placement) -> None:
        quantiles = [float(q.quantile) for q in point.quantile_values]
        values = [float(q.value) for q in point.quantile_values]
        if not all(0.0 <= q <= 1.0 for q in quantiles) or any(a >= b for a, b in pairwise(quantiles)):
            raise _Refused("quantile_values must have quantiles in [0, 1], strictly increasing")
        if any(math.isinf(v) for v in values):
            raise _Refused("quantile_values must hold finite values (or NaN for an empty window)")
        total, count = _finite(float(point.sum), "sum"), _count(point.count, "count")
        self._add(
            at, MetricKind.SUMMARY, value=total, count=count, bounds=quantiles or None, samples=values or None
        )


def _number(point: Any) -> float:
    which = point.WhichOneof("value")
    if which is None:
        raise _Refused("has no value (as_double or as_int)")
    return _finite(float(getattr(point, which)), "value")


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise _Refused(f"{what} is {number_text(value)}; only finite numbers are stored")
    return value


def _optional_finite(point: Any, name: str) -> float | None:
    return _finite(float(getattr(point, name)), name) if point.HasField(name) else None


def _sum_min_max(point: Any) -> tuple[float | None, float | None, float | None]:
    """A histogram's optional sum, min and max."""
    return _optional_finite(point, "sum"), _optional_finite(point, "min"), _optional_finite(point, "max")


def _count(value: int, what: str) -> int:
    if value > _MAX_COUNT:
        raise _Refused(f"{what} {value} is larger than {_MAX_COUNT}")
    return int(value)


def _check_total(parts: list[int], count: int, what: str) -> None:
    total = sum(parts)
    if total != count:
        raise _Refused(f"{what} add up to {total}, but count is {count}")
