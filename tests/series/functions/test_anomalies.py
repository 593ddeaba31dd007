import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.functions import FunctionArgumentError, anomalies, lookup
from tests.series.functions.builders import cells, frame

STEP_MS = 600_000  # 10-minute buckets: 144 per day
DAY = 144


def daily_pattern(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    truth = 100 + 20 * np.sin(2 * np.pi * t / DAY) + 0.01 * t
    return truth, truth + rng.uniform(-1, 1, n)


def seasonal_frame(rows: list[np.ndarray]) -> SeriesFrame:
    return SeriesFrame(
        times=np.arange(len(rows[0]), dtype=np.int64) * STEP_MS,
        values=np.vstack(rows),
        group_by=("host",),
        labels=[(f"h{i}",) for i in range(len(rows))],
        step_ms=STEP_MS,
    )


def check_spike(result: SeriesFrame, truth: np.ndarray, spike: int) -> None:
    lower, upper = result.lower[0], result.upper[0]
    banded = ~np.isnan(lower)
    assert banded[spike]
    assert result.values[0, spike] > upper[spike]
    # The expected values lie inside the band everywhere it is drawn, and at most 1% of the normal
    # (noisy) points fall outside it (bounds=3 is "three standard deviations").
    assert np.all((truth[banded] >= lower[banded]) & (truth[banded] <= upper[banded]))
    flagged = anomalies.anomaly_mask(result)[0]
    assert flagged[spike]
    normal = banded.copy()
    normal[spike] = False
    assert flagged[normal].mean() <= 0.01


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("algorithm", ["agile", "robust"])
def test_seasonal_algorithms_put_a_spike_outside_and_normal_points_inside(algorithm: str, seed: int) -> None:
    truth, noisy = daily_pattern(4 * DAY, seed)
    spike = 3 * DAY + 50
    noisy[spike] += 15
    noisy[[40, 41, 2 * DAY + 7]] = np.nan  # gaps
    result = anomalies.anomalies(seasonal_frame([noisy]), algorithm, 3, seasonality="daily")
    check_spike(result, truth, spike)
    np.testing.assert_array_equal(cells(result.values), cells(seasonal_frame([noisy]).values))


@pytest.mark.parametrize("seed", range(5))
def test_basic_puts_a_spike_outside_and_normal_points_inside(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = np.full(300, 50.0)
    noisy = truth + rng.uniform(-1, 1, 300)
    noisy[200] += 8
    f = SeriesFrame(np.arange(300, dtype=np.int64) * 60_000, noisy[None, :], (), [()], 60_000)
    result = anomalies.anomalies(f, "basic", 3)
    check_spike(result, truth, 200)
    # Lagging: a point's band comes from the points before it only, so the first 10 have none.
    assert np.isnan(result.lower[0, :10]).all() and not np.isnan(result.lower[0, 10:]).any()


def test_basic_band_is_the_median_and_iqr_of_the_previous_points() -> None:
    rng = np.random.default_rng(1)
    row = [float(v) for v in rng.normal(0, 1, 60)]
    result = anomalies.anomalies(frame([row]), "basic", 2)
    for j in (10, 31, 59):
        window = np.array(row[max(0, j - 30) : j])
        q25, q50, q75 = np.quantile(window, [0.25, 0.5, 0.75])
        sigma = (q75 - q25) / 1.349
        assert result.lower[0, j] == pytest.approx(q50 - 2 * sigma)
        assert result.upper[0, j] == pytest.approx(q50 + 2 * sigma)


def test_bounds_scale_the_band_around_the_same_center() -> None:
    _, noisy = daily_pattern(4 * DAY, 0)
    f = seasonal_frame([noisy])
    narrow = anomalies.anomalies(f, "robust", 1, seasonality="daily")
    wide = anomalies.anomalies(f, "robust", 3, seasonality="daily")
    np.testing.assert_allclose(wide.upper - wide.lower, 3 * (narrow.upper - narrow.lower), equal_nan=True)
    np.testing.assert_allclose(wide.upper + wide.lower, narrow.upper + narrow.lower, equal_nan=True)


def test_agile_follows_a_level_shift_and_robust_holds_its_level() -> None:
    _, noisy = daily_pattern(4 * DAY, 2)
    shift = int(2.5 * DAY)
    noisy[shift:] += 15
    f = seasonal_frame([noisy])
    agile = anomalies.anomaly_mask(anomalies.anomalies(f, "agile", 3, seasonality="daily"))[0]
    robust = anomalies.anomaly_mask(anomalies.anomalies(f, "robust", 3, seasonality="daily"))[0]
    # Agile flags the first points of the new level, then takes it as the norm.
    assert agile[shift] and agile[shift + 5 : shift + 60].sum() == 0
    # Robust keeps expecting the old level for a while: the shift stays anomalous.
    assert robust[shift : shift + 60].all()


def test_direction_picks_which_side_counts() -> None:
    _, noisy = daily_pattern(4 * DAY, 3)
    noisy[3 * DAY + 10] += 15
    noisy[3 * DAY + 90] -= 15
    result = anomalies.anomalies(seasonal_frame([noisy]), "agile", 3, seasonality="daily")
    above = set(np.flatnonzero(anomalies.anomaly_mask(result, "above")[0]))
    below = set(np.flatnonzero(anomalies.anomaly_mask(result, "below")[0]))
    both = set(np.flatnonzero(anomalies.anomaly_mask(result, "both")[0]))
    assert 3 * DAY + 10 in above and 3 * DAY + 10 not in below
    assert 3 * DAY + 90 in below and 3 * DAY + 90 not in above
    assert both == above | below


def test_too_little_history_has_no_band_and_too_coarse_buckets_are_refused() -> None:
    _, noisy = daily_pattern(DAY + 20, 0)
    result = anomalies.anomalies(seasonal_frame([noisy]), "robust", 2, seasonality="daily")
    assert np.isnan(result.lower).all() and np.isnan(result.upper).all()
    coarse = SeriesFrame(np.arange(48, dtype=np.int64) * 3_600_000, np.ones((1, 48)), (), [()], 3_600_000)
    with pytest.raises(
        FunctionArgumentError, match="seasonality 'hourly' needs at least 4 buckets per season"
    ):
        anomalies.anomalies(coarse, "agile", 2, seasonality="hourly")


def test_all_null_series_empty_frame_and_count_default_zero() -> None:
    result = anomalies.anomalies(frame([[None] * 40, [1.0] * 40]), "basic", 2)
    assert np.isnan(result.lower[0]).all()
    assert anomalies.anomalies(frame([], width=5), "robust").values.shape == (0, 5)
    sparse = [1.0 if j % 7 == 0 else None for j in range(60)]
    zeroed = anomalies.anomalies(frame([sparse]), "basic", 2, count_default_zero=True)
    assert cells(zeroed.values)[0][1] == 0.0


def test_registry_arguments_and_history() -> None:
    spec = lookup("anomalies")
    bound = spec.bind([frame([[1.0]]), "Robust", 3], {"direction": "above", "count_default_zero": "true"})
    assert bound.arguments["algorithm"] == "robust"
    assert bound.arguments["seasonality"] == "weekly"
    assert bound.arguments["count_default_zero"] is True
    # Three weeks before the window for weekly seasonality; 30 buckets for basic.
    assert bound.lookback_ms(3_600_000, 86_400_000) == 3 * 604_800_000
    assert spec.bind([frame([[1.0]]), "basic"]).lookback_ms(60_000, 3_600_000) == 30 * 60_000
    with pytest.raises(
        FunctionArgumentError,
        match=r"anomalies\(\): the 2nd argument \(algorithm\) must be one of 'basic', 'agile', 'robust'; "
        r"got 'adaptive'",
    ):
        spec.bind([frame([[1.0]]), "adaptive", 2])
    with pytest.raises(
        FunctionArgumentError, match=r"the 3rd argument \(bounds\) must be a number above 0; got -1"
    ):
        spec.bind([frame([[1.0]]), "basic", -1])
    with pytest.raises(
        FunctionArgumentError,
        match=r"the named argument direction must be one of 'both', 'above', 'below'; got 'up'",
    ):
        spec.bind([frame([[1.0]]), "basic", 2], {"direction": "up"})
    with pytest.raises(
        FunctionArgumentError,
        match=r"the named argument timezone must be an IANA time zone name or 'UTC'; got 'Mars/Olympus'",
    ):
        spec.bind([frame([[1.0]]), "agile", 2], {"timezone": "Mars/Olympus"})
    with pytest.raises(
        FunctionArgumentError,
        match=r"has no named argument 'window'; its named arguments are direction, alert_window",
    ):
        spec.bind([frame([[1.0]]), "agile", 2], {"window": "1h"})
    assert (
        spec.bind([frame([[1.0]]), "agile"], {"alert_window": "last_15m", "interval": 60}).arguments[
            "interval"
        ]
        == 60
    )
