"""Exponential histogram buckets as explicit bounds: the boundary formula, the layout, and the buckets the
OpenTelemetry SDK itself fills."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

from sextant.core.timeutil import now_ms
from sextant.faces.otlp.exponential import BoundsOutOfRange, bucket_bound, flatten
from sextant.faces.otlp.translate import translate


def reference_bound(scale: int, index: int) -> float:
    """base^index with base = 2^(2^-scale), in 60-digit decimal arithmetic, rounded once to a double."""
    getcontext().prec = 60
    base = Decimal(2) ** (Decimal(2) ** -scale)
    return float(base**index)


@pytest.mark.parametrize("scale", [-10, -4, -1, 0, 1, 2, 3, 8, 14, 20])
@pytest.mark.parametrize("index", [-1075 // 2, -300, -7, -1, 0, 1, 2, 5, 63, 511])
def test_bound_is_base_to_the_index(scale: int, index: int) -> None:
    try:
        expected = reference_bound(scale, index)
    except OverflowError:
        expected = math.inf
    if expected == 0.0 or math.isinf(expected):
        with pytest.raises(BoundsOutOfRange, match="beyond the range of a double"):
            bucket_bound(scale, index)
        return
    assert bucket_bound(scale, index) == pytest.approx(expected, rel=4e-16)


def test_bounds_at_scale_zero_and_below_are_exact_powers_of_two() -> None:
    assert [bucket_bound(0, i) for i in range(-2, 4)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    # scale -1: base 4; scale -2: base 16.
    assert [bucket_bound(-1, i) for i in range(3)] == [1.0, 4.0, 16.0]
    assert bucket_bound(-2, -1) == 1 / 16
    # scale 1: base sqrt(2); every second boundary is a power of two.
    assert bucket_bound(1, 1) == pytest.approx(math.sqrt(2), rel=1e-16)
    assert bucket_bound(1, 6) == 8.0
    assert bucket_bound(3, -8) == 0.5


def test_scale_outside_the_data_model_is_refused() -> None:
    for scale in (-11, 21, 2**31 - 1):
        with pytest.raises(BoundsOutOfRange, match="outside the supported range -10 to 20"):
            flatten(scale, 0, 0, [1], 0, [])


def test_layout_with_negative_zero_and_positive_buckets() -> None:
    # scale 0: positive buckets 1..2 are (2, 4], (4, 8]; negative buckets 0..1 hold |v| in (1, 2], (2, 4].
    bounds, counts = flatten(0, 5, 1, [3, 4], 0, [1, 2])
    assert bounds == [-4.0, -2.0, -1.0, 2.0, 4.0, 8.0]
    assert counts == [0, 2, 1, 5, 3, 4, 0]
    assert len(counts) == len(bounds) + 1


def test_layout_with_one_side_only() -> None:
    assert flatten(0, 2, -1, [7], 0, []) == ([0.5, 1.0], [2, 7, 0])
    assert flatten(0, 2, 0, [], 3, [7]) == ([-16.0, -8.0], [0, 7, 2])
    assert flatten(0, 4, 0, [], 0, []) == ([], [4])


def _sdk_histogram(values: list[float], max_size: int = 160) -> tuple[list[float], list[int], object]:
    """Record `values` with the SDK's exponential histogram aggregation; the stored bounds and counts."""
    reader = InMemoryMetricReader(
        preferred_temporality={Histogram: AggregationTemporality.DELTA},
        preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation(max_size=max_size)},
    )
    provider = MeterProvider(metric_readers=[reader])
    histogram = provider.get_meter("test").create_histogram("h")
    for value in values:
        histogram.record(value)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    request = encode_metrics(data)
    point = request.resource_metrics[0].scope_metrics[0].metrics[0].exponential_histogram.data_points[0]
    translation = translate(request, 1, now_ms())
    assert translation.rejected == 0
    batch = translation.batch
    bounds, counts = batch.bounds[0], batch.bucket_counts[0]
    assert bounds is not None and counts is not None
    return bounds, counts, point


def _bucket_of(bounds: list[float], value: float) -> int:
    """The index of the explicit bucket (b[i-1], b[i]] holding `value`."""
    return next((i for i, b in enumerate(bounds) if value <= b), len(bounds))


@pytest.mark.parametrize(
    ("values", "max_size"),
    [
        ([0.5, 1.5, 3.0, 3.1, 100.0, 1e6, 1e-3], 160),
        ([0.0, 0.0, 7.0, 12.5, 7.25], 160),
        ([1.0 + i / 1000 for i in range(1000)], 160),
        ([2.0**i + 0.5 for i in range(40)], 8),
    ],
)
def test_values_the_sdk_records_land_in_their_flattened_bucket(values: list[float], max_size: int) -> None:
    bounds, counts, point = _sdk_histogram(values, max_size)
    expected = [0] * (len(bounds) + 1)
    for value in values:
        expected[_bucket_of(bounds, value)] += 1
    assert counts == expected
    assert sum(counts) == len(values)
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
    assert point.scale <= 20  # the SDK rescaled to fit max_size where it had to


def test_without_negative_buckets_the_zero_bucket_comes_first() -> None:
    # The SDK's histograms take no negative values (it logs and drops them).
    bounds, counts, point = _sdk_histogram([0.0, 0.0, 5.0])
    assert point.zero_count == 2 and not any(point.negative.bucket_counts)
    assert counts[0] == 2 and 0.0 < bounds[0] < 5.0


def test_empty_buckets_at_the_ends_of_a_range_are_left_out() -> None:
    assert flatten(0, 1, 0, [0, 0, 3, 0, 2, 0], 5, [0]) == ([4.0, 8.0, 16.0, 32.0], [1, 3, 0, 2, 0])


def test_negative_values_land_in_their_flattened_bucket() -> None:
    # At scale 0, |-3| is in (2, 4]: index 1; |-0.3| is in (0.25, 0.5]: index -2.
    values = [-3.0, -0.3]
    bounds, counts = flatten(0, 0, 0, [], -2, [1, 0, 0, 1])
    expected = [0] * (len(bounds) + 1)
    for value in values:
        expected[_bucket_of(bounds, value)] += 1
    assert counts == expected == [0, 1, 0, 0, 1, 0]
    assert bounds == [-4.0, -2.0, -1.0, -0.5, -0.25]
