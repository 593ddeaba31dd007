"""OTLP exports to point batches: what is stored for each kind, and what is refused and why."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from sextant.core.metrics import series_id
from sextant.core.timeutil import now_ms
from sextant.faces.otlp.translate import Translation, translate
from tests.faces.otlp.exports import CUMULATIVE, DELTA, NS, attrs, every_kind, export

ORG = 7
RESOURCE_TAGS = ["service.name:checkout", "service:checkout"]


def rows(translation: Translation) -> list[dict[str, Any]]:
    batch = translation.batch
    columns = batch.columns()
    out = []
    for i in range(len(batch)):
        row = {name: values[i] for name, values in columns.items()}
        row["metric"], row["tags"] = batch.series[(row["org_id"], row["series_id"])]
        out.append(row)
    return out


def test_every_kind() -> None:
    now = now_ms()
    translation = translate(every_kind(now), ORG, now)
    assert (translation.stored, translation.rejected, translation.problems) == (5, 0, {})
    assert translation.error_message() == ""
    by_metric = {row["metric"]: row for row in rows(translation)}
    common = {"org_id": ORG, "time_ms": now}
    started = {"start_time_ms": now - 60_000, "interval_ms": 60_000}
    nothing = {
        "count": None,
        "min": None,
        "max": None,
        "bounds": None,
        "bucket_counts": None,
        "samples": None,
    }
    gauge = by_metric.pop("t.gauge")
    assert gauge["tags"] == ("room:lab", *RESOURCE_TAGS)
    assert gauge["series_id"] == series_id("t.gauge", gauge["tags"])
    assert gauge == {
        **common,
        **nothing,
        "series_id": gauge["series_id"],
        "metric": "t.gauge",
        "tags": gauge["tags"],
        "kind": "gauge",
        "value": 21.5,
        "interval_ms": None,
        "start_time_ms": None,
        "temporality": None,
        "monotonic": None,
        "unit": "Cel",
    }
    for row in by_metric.values():
        assert row["tags"] == tuple(RESOURCE_TAGS)
        assert {k: row[k] for k in (*common, *started)} == {**common, **started}
    assert {
        k: by_metric["t.sum"][k] for k in ("kind", "value", "temporality", "monotonic", "unit", "count")
    } == {
        "kind": "count",
        "value": 42.0,
        "temporality": "cumulative",
        "monotonic": True,
        "unit": "{request}",
        "count": None,
    }
    histogram = by_metric["t.histogram"]
    assert {k: histogram[k] for k in ("kind", "value", "count", "min", "max", "bounds", "bucket_counts")} == {
        "kind": "histogram",
        "value": 55.5,
        "count": 4,
        "min": 0.5,
        "max": 40.0,
        "bounds": [1.0, 10.0],
        "bucket_counts": [1, 2, 1],
    }
    assert (histogram["temporality"], histogram["monotonic"], histogram["unit"]) == ("delta", None, "ms")
    exponential = by_metric["t.exponential"]
    assert {
        k: exponential[k] for k in ("kind", "value", "count", "min", "max", "bounds", "bucket_counts")
    } == {
        "kind": "exponential_histogram",
        "value": 20.0,
        "count": 6,
        "min": 0.0,
        "max": 7.5,
        # zero bucket (-inf, 2], then (2, 4] and (4, 8]
        "bounds": [2.0, 4.0, 8.0],
        "bucket_counts": [1, 2, 3, 0],
    }
    summary = by_metric["t.summary"]
    assert {k: summary[k] for k in ("kind", "value", "count", "bounds", "samples", "temporality")} == {
        "kind": "summary",
        "value": 12.5,
        "count": 10,
        "bounds": [0.5, 0.99],
        "samples": [1.0, 3.0],
        "temporality": None,
    }


def test_resource_and_point_attributes_are_tags() -> None:
    now = now_ms()
    point = pb.NumberDataPoint(
        time_unix_nano=now * NS, as_double=1, attributes=attrs(code=200, ok=True, ratio=0.5)
    )
    request = export(pb.Metric(name="m", gauge=pb.Gauge(data_points=[point])), **{"host.name": "web-1"})
    (row,) = rows(translate(request, ORG, now))
    assert row["tags"] == (
        "code:200",
        "host.name:web-1",
        "ok:true",
        "ratio:0.5",
        "service.name:checkout",
        "service:checkout",
    )


def test_int_values_are_floats_and_times_are_milliseconds() -> None:
    now = now_ms()
    points = [
        pb.NumberDataPoint(time_unix_nano=now * NS + 999_999, as_int=-3),
        pb.NumberDataPoint(time_unix_nano=(now - 10) * NS, as_int=2**53 + 1),
    ]
    request = export(pb.Metric(name="m", gauge=pb.Gauge(data_points=points)))
    translation = translate(request, ORG, now)
    assert translation.batch.time_ms == [now, now - 10]
    assert translation.batch.value == [-3.0, float(2**53)]
    assert all(isinstance(v, float) for v in translation.batch.value)


def test_no_recorded_value_points_are_skipped_not_refused() -> None:
    now = now_ms()
    flag = pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    gauge = [
        pb.NumberDataPoint(time_unix_nano=now * NS, flags=flag),
        pb.NumberDataPoint(time_unix_nano=now * NS, as_double=1),
    ]
    hist = [pb.HistogramDataPoint(time_unix_nano=now * NS, flags=flag)]
    request = export(
        pb.Metric(name="g", gauge=pb.Gauge(data_points=gauge)),
        pb.Metric(name="h", histogram=pb.Histogram(aggregation_temporality=DELTA, data_points=hist)),
    )
    translation = translate(request, ORG, now)
    assert (translation.stored, translation.skipped, translation.rejected) == (1, 2, 0)
    assert translation.error_message() == ""


def _good(now: int) -> pb.NumberDataPoint:
    return pb.NumberDataPoint(time_unix_nano=now * NS, as_double=1.0)


def _gauge(name: str, *points: pb.NumberDataPoint) -> pb.Metric:
    return pb.Metric(name=name, gauge=pb.Gauge(data_points=points))


def _hist(now: int, **fields: Any) -> pb.Metric:
    point = pb.HistogramDataPoint(time_unix_nano=now * NS, **fields)
    return pb.Metric(name="h", histogram=pb.Histogram(aggregation_temporality=DELTA, data_points=[point]))


def _expo(now: int, **fields: Any) -> pb.Metric:
    point = pb.ExponentialHistogramDataPoint(time_unix_nano=now * NS, **fields)
    return pb.Metric(
        name="e",
        exponential_histogram=pb.ExponentialHistogram(aggregation_temporality=DELTA, data_points=[point]),
    )


def _summary(now: int, *quantiles: tuple[float, float], **fields: Any) -> pb.Metric:
    values = [pb.SummaryDataPoint.ValueAtQuantile(quantile=q, value=v) for q, v in quantiles]
    point = pb.SummaryDataPoint(time_unix_nano=now * NS, quantile_values=values, **fields)
    return pb.Metric(name="s", summary=pb.Summary(data_points=[point]))


DAY_MS = 86_400_000
REFUSED: list[tuple[str, Any, str]] = [
    (
        "no time",
        lambda now: _gauge("m", pb.NumberDataPoint(as_double=1)),
        "metric 'm': time_unix_nano is missing (0)",
    ),
    (
        "too old",
        lambda now: _gauge("m", pb.NumberDataPoint(time_unix_nano=(now - 470 * DAY_MS) * NS, as_double=1)),
        "metric 'm': point time is more than 15 months in the past",
    ),
    (
        "in the future",
        lambda now: _gauge("m", pb.NumberDataPoint(time_unix_nano=(now + 2 * 3_600_000) * NS, as_double=1)),
        "point time is more than 1 hour in the future",
    ),
    (
        "start after time",
        lambda now: pb.Metric(
            name="c",
            sum=pb.Sum(
                aggregation_temporality=DELTA,
                data_points=[
                    pb.NumberDataPoint(start_time_unix_nano=now * NS + 1, time_unix_nano=now * NS, as_int=1)
                ],
            ),
        ),
        "start_time_unix_nano is later than time_unix_nano",
    ),
    (
        "no value",
        lambda now: _gauge("m", pb.NumberDataPoint(time_unix_nano=now * NS)),
        "has no value (as_double or as_int)",
    ),
    (
        "NaN",
        lambda now: _gauge("m", pb.NumberDataPoint(time_unix_nano=now * NS, as_double=math.nan)),
        "value is NaN",
    ),
    (
        "infinite",
        lambda now: _gauge("m", pb.NumberDataPoint(time_unix_nano=now * NS, as_double=-math.inf)),
        "value is -Infinity; only finite numbers are stored",
    ),
    ("empty name", lambda now: _gauge("", _good(now)), "metric '': metric name is empty"),
    ("long name", lambda now: _gauge("x" * 201, _good(now)), "metric name is longer than 200 characters"),
    (
        "long tag",
        lambda now: _gauge(
            "m", pb.NumberDataPoint(time_unix_nano=now * NS, as_double=1, attributes=attrs(k="v" * 200))
        ),
        "is longer than 200 characters",
    ),
    (
        "too many tags",
        lambda now: _gauge(
            "m",
            pb.NumberDataPoint(
                time_unix_nano=now * NS, as_double=1, attributes=attrs(**{f"k{i}": i for i in range(100)})
            ),
        ),
        "has 102 tags; at most 100 are allowed",
    ),
    (
        "NUL in a tag",
        lambda now: _gauge(
            "m", pb.NumberDataPoint(time_unix_nano=now * NS, as_double=1, attributes=attrs(k="a\0b"))
        ),
        "contains a NUL character",
    ),
    (
        "unspecified temporality",
        lambda now: pb.Metric(
            name="c", sum=pb.Sum(data_points=[pb.NumberDataPoint(time_unix_nano=now * NS, as_int=1)])
        ),
        "metric 'c': aggregation_temporality 0 is not 1 (delta) or 2 (cumulative)",
    ),
    (
        "unknown temporality",
        lambda now: pb.Metric(
            name="h",
            histogram=pb.Histogram(
                aggregation_temporality=7, data_points=[pb.HistogramDataPoint(time_unix_nano=now * NS)]
            ),
        ),
        "aggregation_temporality 7 is not",
    ),
    (
        "bucket count mismatch",
        lambda now: _hist(now, count=2, explicit_bounds=[1.0], bucket_counts=[2]),
        "has 1 bucket_counts for 1 explicit_bounds; expected 2",
    ),
    (
        "bounds without buckets",
        lambda now: _hist(now, count=2, explicit_bounds=[1.0, 2.0]),
        "has 0 bucket_counts for 2 explicit_bounds",
    ),
    (
        "bounds not increasing",
        lambda now: _hist(now, count=2, explicit_bounds=[2.0, 1.0], bucket_counts=[1, 1, 0]),
        "explicit_bounds must be finite and strictly increasing",
    ),
    (
        "bounds not finite",
        lambda now: _hist(now, count=2, explicit_bounds=[1.0, math.inf], bucket_counts=[1, 1, 0]),
        "explicit_bounds must be finite",
    ),
    (
        "buckets do not add up",
        lambda now: _hist(now, count=5, explicit_bounds=[1.0], bucket_counts=[1, 1]),
        "bucket_counts add up to 2, but count is 5",
    ),
    ("histogram sum NaN", lambda now: _hist(now, count=0, sum=math.nan), "sum is NaN"),
    (
        "histogram max infinite",
        lambda now: _hist(now, count=1, max=math.inf, bucket_counts=[1]),
        "max is Infinity",
    ),
    ("count beyond int64", lambda now: _hist(now, count=2**63), f"count {2**63} is larger than {2**63 - 1}"),
    (
        "exponential buckets do not add up",
        lambda now: _expo(
            now, count=3, zero_count=1, positive=pb.ExponentialHistogramDataPoint.Buckets(bucket_counts=[1])
        ),
        "zero_count and the bucket counts add up to 2, but count is 3",
    ),
    (
        "exponential scale out of range",
        lambda now: _expo(
            now, count=1, scale=40, positive=pb.ExponentialHistogramDataPoint.Buckets(bucket_counts=[1])
        ),
        "scale 40 is outside the supported range -10 to 20",
    ),
    (
        "exponential bound beyond a double",
        lambda now: _expo(
            now,
            count=1,
            scale=0,
            positive=pb.ExponentialHistogramDataPoint.Buckets(offset=1100, bucket_counts=[1]),
        ),
        "beyond the range of a double",
    ),
    (
        "quantile above 1",
        lambda now: _summary(now, (0.5, 1.0), (1.5, 2.0)),
        "quantiles in [0, 1], strictly increasing",
    ),
    ("quantiles not increasing", lambda now: _summary(now, (0.9, 1.0), (0.5, 2.0)), "strictly increasing"),
    (
        "quantile value infinite",
        lambda now: _summary(now, (0.5, math.inf)),
        "quantile_values must hold finite values",
    ),
    ("summary sum infinite", lambda now: _summary(now, (0.5, 1.0), sum=math.inf), "sum is Infinity"),
]


@pytest.mark.parametrize(("case", "metric", "problem"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_points_are_counted_and_the_rest_stored(case: str, metric: Any, problem: str) -> None:
    now = now_ms()
    request = export(_gauge("fine", _good(now), _good(now - 1)), metric(now))
    translation = translate(request, ORG, now)
    assert (translation.stored, translation.rejected) == (2, 1)
    assert [r["metric"] for r in rows(translation)] == ["fine", "fine"]
    # A refused point leaves no series behind.
    assert [metric for metric, _ in translation.batch.series.values()] == ["fine"]
    (message,) = translation.problems
    assert problem in message
    assert translation.error_message() == f"1 data point refused: {message} (1 data point)"


def test_quantile_values_may_be_nan() -> None:
    now = now_ms()
    (row,) = rows(translate(export(_summary(now, (0.5, math.nan), count=0)), ORG, now))
    assert row["kind"] == "summary"
    assert row["samples"] is not None and math.isnan(row["samples"][0])


def test_unspecified_temporality_refuses_every_point_of_the_metric() -> None:
    now = now_ms()
    points = [pb.NumberDataPoint(time_unix_nano=now * NS, as_int=i) for i in range(3)]
    metric = pb.Metric(name="c", sum=pb.Sum(data_points=points, is_monotonic=True))
    translation = translate(export(metric, _gauge("g", _good(now))), ORG, now)
    assert (translation.stored, translation.rejected) == (1, 3)
    assert translation.error_message() == (
        "3 data points refused: metric 'c': aggregation_temporality 0 is not 1 (delta) or 2 (cumulative) "
        "(3 data points)"
    )


def test_metric_without_data_is_reported_without_a_count() -> None:
    now = now_ms()
    translation = translate(export(pb.Metric(name="empty"), _gauge("g", _good(now))), ORG, now)
    assert (translation.stored, translation.rejected) == (1, 0)
    assert translation.error_message() == (
        "0 data points refused: metric 'empty' has no data (gauge, sum, histogram, exponentialHistogram or "
        "summary); nothing was stored for it"
    )


def test_problems_are_grouped_and_capped() -> None:
    now = now_ms()
    metrics = [
        _gauge(f"m{i}", pb.NumberDataPoint(as_double=1), pb.NumberDataPoint(as_double=2)) for i in range(12)
    ]
    translation = translate(export(*metrics), ORG, now)
    assert translation.rejected == 24 and len(translation.problems) == 12
    message = translation.error_message()
    assert message.startswith(
        "24 data points refused: metric 'm0': time_unix_nano is missing (0) (2 data points); "
    )
    assert message.endswith("metric 'm9': time_unix_nano is missing (0) (2 data points); and 2 more problems")


def test_monotonic_and_delta_sums() -> None:
    now = now_ms()
    up_down = pb.Sum(
        aggregation_temporality=DELTA,
        is_monotonic=False,
        data_points=[
            pb.NumberDataPoint(
                start_time_unix_nano=(now - 5000) * NS, time_unix_nano=now * NS, as_double=-2.5
            )
        ],
    )
    counter = pb.Sum(
        aggregation_temporality=CUMULATIVE,
        is_monotonic=True,
        data_points=[pb.NumberDataPoint(time_unix_nano=now * NS, as_int=9)],
    )
    translation = translate(
        export(pb.Metric(name="ud", sum=up_down), pb.Metric(name="ctr", sum=counter)), ORG, now
    )
    by_metric = {r["metric"]: r for r in rows(translation)}
    ud, ctr = by_metric["ud"], by_metric["ctr"]
    assert (ud["kind"], ud["value"], ud["temporality"], ud["monotonic"]) == ("count", -2.5, "delta", False)
    assert (ud["start_time_ms"], ud["interval_ms"]) == (now - 5000, 5000)
    # No start time given: neither a start nor an interval.
    assert (ctr["temporality"], ctr["monotonic"], ctr["start_time_ms"], ctr["interval_ms"]) == (
        "cumulative",
        True,
        None,
        None,
    )


def test_service_tag_comes_from_the_resource_only() -> None:
    now = now_ms()
    point = pb.NumberDataPoint(
        time_unix_nano=now * NS,
        as_double=1,
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="p"))],
    )
    (row,) = rows(translate(export(_gauge("m", point), service="r"), ORG, now))
    assert row["tags"] == ("service.name:p", "service.name:r", "service:r")
