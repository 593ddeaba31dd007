"""The characterize algorithm on aligned arrays: windows, statistics, onset, movers, candidate keys."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from sextant.series.characterize import (
    MAX_TOP_MOVERS,
    Mover,
    Windows,
    combined_interval,
    discover_candidate_keys,
    movers_of_key,
    resolve_windows,
    top_movers,
    window_statistics,
)

M = 60_000
START = 1_700_000_040_000 // M * M
LADDER = [("second", 1000), ("minute", M), ("minute_5", 5 * M), ("hour", 60 * M)]


def minutes(n: int) -> np.ndarray:
    return START + np.arange(n, dtype=np.int64) * M


def queue_depth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference scenario: shard a is 10 for minutes 0-11 and 100 for 12-19, shard b 5 throughout."""
    a = np.array([10.0] * 12 + [100.0] * 8)
    b = np.full(20, 5.0)
    return minutes(20), a, b


def default_windows() -> Windows:
    return resolve_windows(START + 10 * M, START + 20 * M, None, None)


def test_windows_defaults_and_errors() -> None:
    w = default_windows()
    assert (w.baseline_from, w.baseline_to) == (START, START + 10 * M)
    assert resolve_windows(100, 200, None, 50) == Windows(-50, 50, 100, 200)
    with pytest.raises(ValueError, match=r"^anomaly_to must be after anomaly_from$"):
        resolve_windows(200, 200, None, None)
    with pytest.raises(ValueError, match=r"^the baseline window must end at or before anomaly_from$"):
        resolve_windows(100, 200, None, 150)
    with pytest.raises(ValueError, match=r"^baseline_to must be after baseline_from$"):
        resolve_windows(100, 200, 60, 50)


def test_combined_interval_follows_the_anomaly_window_unless_the_span_is_too_long() -> None:
    assert combined_interval(LADDER, "minute", default_windows()) == "minute"
    # A baseline 3 days back: 4320+ minutes is more than 2000 buckets, 5-minute buckets are fewer.
    far = Windows(START - 3 * 1440 * M, START - 1440 * M, START, START + 10 * M)
    assert combined_interval(LADDER, "minute", far) == "minute_5"


def test_queue_depth_statistics_and_onset() -> None:
    times, a, b = queue_depth()
    average = (a + b) / 2
    stats = window_statistics(times, average, np.ones(20, dtype=bool), default_windows())
    assert stats.baseline_mean == pytest.approx(7.5)
    assert stats.baseline_stddev == 0.0
    assert stats.anomaly_mean == pytest.approx((2 * 7.5 + 8 * 52.5) / 10)
    assert stats.anomaly_peak == pytest.approx(52.5)
    assert stats.change_ratio == pytest.approx(stats.anomaly_mean / 7.5)
    assert stats.direction == "up"
    assert stats.onset == 12


def test_gap_between_windows_is_left_out() -> None:
    times = minutes(20)
    values = np.array([10.0] * 5 + [100000.0] * 5 + [100.0] * 10)
    windows = resolve_windows(START + 10 * M, START + 20 * M, START, START + 5 * M)
    stats = window_statistics(times, values, np.ones(20, dtype=bool), windows)
    assert (stats.baseline_mean, stats.anomaly_mean, stats.direction) == (10.0, 100.0, "up")


def test_population_stddev_threshold_and_down_direction() -> None:
    times = minutes(8)
    values = np.array([10.0, 12.0, 8.0, 10.0, 9.0, 2.0, 1.0, 9.5])
    windows = resolve_windows(START + 4 * M, START + 8 * M, None, None)
    stats = window_statistics(times, values, np.ones(8, dtype=bool), windows)
    assert stats.baseline_stddev == pytest.approx(statistics.pstdev([10.0, 12.0, 8.0, 10.0]))
    assert stats.direction == "down"
    # The peak is the maximum even when the metric went down.
    assert stats.anomaly_peak == 9.5
    # Threshold max(3 * 1.414, 5): 2.0 is 8 below the mean, the first bucket beyond it.
    assert stats.onset == 5


def test_no_data_is_flat_with_zeros() -> None:
    empty = np.empty(0)
    stats = window_statistics(np.empty(0, dtype=np.int64), empty, np.empty(0, dtype=bool), default_windows())
    assert (stats.baseline_mean, stats.baseline_stddev, stats.anomaly_mean, stats.anomaly_peak) == (
        0,
        0,
        0,
        0,
    )
    assert (stats.change_ratio, stats.direction, stats.onset) == (0.0, "flat", None)


def test_zero_baseline_ratio_is_the_anomaly_mean_and_first_positive_bucket_is_the_onset() -> None:
    times = minutes(6)
    values = np.array([0.0, 0.0, 0.0, 0.0, 3.0, 5.0])
    windows = resolve_windows(START + 3 * M, START + 6 * M, None, None)
    stats = window_statistics(times, values, np.ones(6, dtype=bool), windows)
    assert stats.change_ratio == pytest.approx(8 / 3)
    assert (stats.direction, stats.onset) == ("up", 4)


def test_single_baseline_bucket_and_null_values() -> None:
    times = minutes(4)
    values = np.array([10.0, np.nan, 14.0, 16.0])
    present = np.array([True, True, True, False])
    windows = resolve_windows(START + 2 * M, START + 4 * M, START, START + 2 * M)
    stats = window_statistics(times, values, present, windows)
    # The null bucket counts for neither window; the absent one neither.
    assert (stats.baseline_mean, stats.baseline_stddev, stats.anomaly_mean) == (10.0, 0.0, 14.0)
    # Threshold 0.5 * 10: 14 is 4 above, no onset although the direction is up.
    assert (stats.direction, stats.onset) == ("up", None)


def test_movers_blame_the_label_that_moved() -> None:
    times, a, b = queue_depth()
    values = np.vstack([a, b])
    movers = movers_of_key(
        "shard", ["a", "b"], times, values, np.ones_like(values, dtype=bool), default_windows()
    )
    assert [(m.key, m.label) for m in movers] == [("shard", "a")]
    (mover,) = movers
    assert mover.baseline_value == 10.0
    assert mover.anomaly_value == pytest.approx(82.0)
    assert mover.change_ratio == pytest.approx(8.2)
    assert mover.magnitude == pytest.approx(math.log(8.2) * 82.0)


def test_new_label_and_labels_outside_both_windows() -> None:
    times = minutes(20)
    new = np.array([np.nan] * 10 + [4.0] * 10)
    gap_only = np.full(20, np.nan)
    values = np.vstack([new, gap_only])
    present = ~np.isnan(values)
    movers = movers_of_key("route", ["new", "never"], times, values, present, default_windows())
    # A label that was not there before: its ratio is its anomaly value; magnitude the plain difference.
    assert [(m.label, m.baseline_value, m.anomaly_value, m.change_ratio) for m in movers] == [
        ("new", 0.0, 4.0, 4.0)
    ]
    assert movers[0].magnitude == 4.0


def test_ranking_is_log_ratio_weighted_by_scale_then_key_and_label() -> None:
    small_tripled = Mover("k", "small", 1.0, 3.0, 3.0)
    large_moved = Mover("k", "large", 1000.0, 1200.0, 1.2)
    went_negative = Mover("k", "neg", 10.0, -5.0, -0.5)
    tie_b = Mover("b", "x", 1.0, 2.0, 2.0)
    tie_a = Mover("a", "x", 1.0, 2.0, 2.0)
    ranked = top_movers([small_tripled, tie_b, went_negative, large_moved, tie_a])
    assert [m.label for m in ranked][:2] == ["large", "neg"]
    assert went_negative.magnitude == 15.0
    assert [(m.key, m.label) for m in ranked[-2:]] == [("a", "x"), ("b", "x")]
    many = [Mover("k", str(i), 1.0, 1.0 + i, 1.0 + i) for i in range(1, 12)]
    assert [m.label for m in top_movers(many)] == [str(i) for i in range(11, 11 - MAX_TOP_MOVERS, -1)]


def test_candidate_keys() -> None:
    series = [
        ["service.name", "shard", "host", "zone"],
        ["service.name", "shard", "host"],
        ["service.name", "shard", "alpha"],
    ]
    # Top 4 by series, ties by name; service.name read as service_name.
    assert discover_candidate_keys(series) == ("service_name", "shard", "host", "alpha")
    # Without service.name, service_name is put first and the list kept at 4.
    assert discover_candidate_keys([["d", "c", "b", "a"], ["d"]]) == ("service_name", "d", "a", "b")
    assert discover_candidate_keys([]) == ("service_name",)
    # A service_name key (from a Datadog tag, say) and service.name are one key.
    assert discover_candidate_keys([["service_name", "service.name"]]) == ("service_name",)
