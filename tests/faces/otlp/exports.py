"""OTLP exports built as protobuf messages, for the tests of the translation and of OTLP/JSON."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

NS = 1_000_000
DELTA = pb.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = pb.AGGREGATION_TEMPORALITY_CUMULATIVE


def attrs(**values: Any) -> list[KeyValue]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=value)
        out.append(KeyValue(key=key, value=any_value))
    return out


def export(*metrics: pb.Metric, service: str = "checkout", **resource: Any) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(
        resource_metrics=[
            pb.ResourceMetrics(
                resource=Resource(attributes=attrs(**{"service.name": service}, **resource)),
                scope_metrics=[
                    pb.ScopeMetrics(scope=InstrumentationScope(name="tests", version="1"), metrics=metrics)
                ],
            )
        ]
    )


def every_kind(now_ms: int) -> ExportMetricsServiceRequest:
    """One metric of each kind, a point each, at `now_ms` (started a minute earlier)."""
    t, start = now_ms * NS, (now_ms - 60_000) * NS
    return export(
        pb.Metric(
            name="t.gauge",
            unit="Cel",
            gauge=pb.Gauge(
                data_points=[
                    pb.NumberDataPoint(time_unix_nano=t, as_double=21.5, attributes=attrs(room="lab"))
                ]
            ),
        ),
        pb.Metric(
            name="t.sum",
            unit="{request}",
            sum=pb.Sum(
                aggregation_temporality=CUMULATIVE,
                is_monotonic=True,
                data_points=[pb.NumberDataPoint(start_time_unix_nano=start, time_unix_nano=t, as_int=42)],
            ),
        ),
        pb.Metric(
            name="t.histogram",
            unit="ms",
            histogram=pb.Histogram(
                aggregation_temporality=DELTA,
                data_points=[
                    pb.HistogramDataPoint(
                        start_time_unix_nano=start,
                        time_unix_nano=t,
                        count=4,
                        sum=55.5,
                        min=0.5,
                        max=40.0,
                        explicit_bounds=[1.0, 10.0],
                        bucket_counts=[1, 2, 1],
                    )
                ],
            ),
        ),
        pb.Metric(
            name="t.exponential",
            unit="By",
            exponential_histogram=pb.ExponentialHistogram(
                aggregation_temporality=DELTA,
                data_points=[
                    pb.ExponentialHistogramDataPoint(
                        start_time_unix_nano=start,
                        time_unix_nano=t,
                        count=6,
                        sum=20.0,
                        scale=0,
                        zero_count=1,
                        positive=pb.ExponentialHistogramDataPoint.Buckets(offset=1, bucket_counts=[2, 3]),
                        min=0.0,
                        max=7.5,
                    )
                ],
            ),
        ),
        pb.Metric(
            name="t.summary",
            unit="s",
            summary=pb.Summary(
                data_points=[
                    pb.SummaryDataPoint(
                        start_time_unix_nano=start,
                        time_unix_nano=t,
                        count=10,
                        sum=12.5,
                        quantile_values=[
                            pb.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0),
                            pb.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=3.0),
                        ],
                    )
                ]
            ),
        ),
    )
