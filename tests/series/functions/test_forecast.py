import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.functions import FunctionContext, InsufficientHistoryError, forecast, lookup
from tests.series.functions.builders import cells

STEP_MS = 3_600_000
HORIZON = 48


def hourly(rows: list[np.ndarray]) -> SeriesFrame:
    return SeriesFrame(
        times=np.arange(len(rows[0]), dtype=np.int64) * STEP_MS,
        values=np.vstack(rows),
        group_by=("host",),
        labels=[(f"h{i}",) for i in range(len(rows))],
        step_ms=STEP_MS,
    )


def check_band(result: SeriesFrame, row: int, truth: np.ndarray, noisy_future: np.ndarray, past: int) -> None:
    lower, upper = result.lower[row, past:], result.upper[row, past:]
    assert np.all((truth >= lower) & (truth <= upper))
    # deviations=2: most noisy outcomes fall inside too (a band from few points is itself uncertain, so
    # not quite the 95% of two standard deviations).
    assert np.mean((noisy_future >= lower) & (noisy_future <= upper)) >= 0.75


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("model", ["simple", "default", "reactive"])
def test_linear_forecast_of_a_known_trend(model: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 24 * 7
    t = np.arange(n + HORIZON)
    truth = 5 + 0.5 * t
    history = truth[:n] + rng.normal(0, 2, n)
    history[[10, 11, 100]] = np.nan
    f = hourly([history])
    result = forecast.forecast(f, "linear", 2, horizon_ms=HORIZON * STEP_MS, model=model)
    assert len(result.times) == n + HORIZON
    np.testing.assert_array_equal(result.times[n:], f.times[-1] + STEP_MS * np.arange(1, HORIZON + 1))
    # The past is the series as it was, without a band.
    assert cells(result.values[:, :n]) == cells(f.values)
    assert np.isnan(result.lower[:, :n]).all() and np.isnan(result.upper[:, :n]).all()
    check_band(result, 0, truth[n:], truth[n:] + rng.normal(0, 2, HORIZON), n)
    # The band widens the further ahead it looks.
    width = result.upper[0, n:] - result.lower[0, n:]
    assert np.all(np.diff(width) >= 0)


def test_linear_models_differ_in_how_much_history_they_follow() -> None:
    # A slope change two thirds of the way: `reactive` follows the new slope, `simple` averages both.
    t = np.arange(150, dtype=np.float64)
    history = np.where(t < 100, t, 100 + 3 * (t - 100))
    f = hourly([history])
    reactive = forecast.forecast(f, "linear", 1, horizon_ms=10 * STEP_MS, model="reactive")
    simple = forecast.forecast(f, "linear", 1, horizon_ms=10 * STEP_MS, model="simple")
    truth_next = 100 + 3 * 59
    assert reactive.values[0, 159] == pytest.approx(truth_next, rel=1e-6)
    assert simple.values[0, 159] < truth_next - 20


@pytest.mark.parametrize("seed", range(5))
def test_seasonal_forecast_of_a_daily_pattern(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 24 * 14
    t = np.arange(n + HORIZON)
    truth = 50 + 10 * np.sin(2 * np.pi * t / 24) + 0.05 * t
    history = truth[:n] + rng.normal(0, 1, n)
    history[200:204] = np.nan
    flat = np.full(n, 7.0)
    result = forecast.forecast(
        hourly([history, flat]), "seasonal", 2, horizon_ms=HORIZON * STEP_MS, seasonality="daily"
    )
    check_band(result, 0, truth[n:], truth[n:] + rng.normal(0, 1, HORIZON), n)
    # The forecast keeps the daily swing (a straight line could not stay inside the band).
    assert np.ptp(result.values[0, n:]) > 15
    np.testing.assert_allclose(result.values[1, n:], 7.0)


def test_seasonal_needs_two_seasons_of_history() -> None:
    f = hourly([np.ones(24 * 10)])
    with pytest.raises(
        InsufficientHistoryError,
        match=r"forecast\(\): 'seasonal' with seasonality 'weekly' needs two weeks of history and the query "
        r"covers 10 days",
    ):
        forecast.forecast(f, "seasonal", 1, horizon_ms=STEP_MS)
    # A series that starts late in the window gets no forecast, the others do.
    late = np.full(24 * 10, np.nan)
    late[-30:] = 1.0
    result = forecast.forecast(
        hourly([late, np.ones(24 * 10)]), "seasonal", 1, horizon_ms=STEP_MS, seasonality="daily"
    )
    assert np.isnan(result.values[0, -1]) and result.values[1, -1] == pytest.approx(1.0)


def test_edge_cases() -> None:
    single = hourly([np.array([np.nan, 4.0, np.nan])])
    result = forecast.forecast(single, "linear", 1, horizon_ms=2 * STEP_MS)
    assert cells(result.values) == [[None, 4.0, None, 4.0, 4.0]]
    assert np.isnan(result.lower[0, 3:]).all()
    empty = hourly([np.full(5, np.nan)])
    assert np.isnan(forecast.forecast(empty, "linear", 1, horizon_ms=STEP_MS).values[0, 5])
    no_series = SeriesFrame(np.arange(4, dtype=np.int64) * STEP_MS, np.empty((0, 4)), (), [], STEP_MS)
    assert forecast.forecast(no_series, "linear", 1, horizon_ms=2 * STEP_MS).values.shape == (0, 6)
    # Without a horizon from the caller: a quarter of the frame.
    assert len(forecast.forecast(hourly([np.arange(40.0)]), "linear").times) == 50


def test_registry_entry() -> None:
    spec = lookup("forecast")
    f = hourly([np.arange(100.0)])
    bound = spec.bind([f, "linear", 2], {"model": "reactive", "history": "2w"})
    assert bound.arguments["history"] == 14 * 86_400_000
    out = bound.run(FunctionContext(forecast_horizon_ms=3 * STEP_MS))
    assert isinstance(out, SeriesFrame) and len(out.times) == 103
    assert bound.lookback_ms(STEP_MS, 7 * 86_400_000) == 7 * 86_400_000
    seasonal = spec.bind([f, "seasonal"], {"seasonality": "daily"})
    assert seasonal.lookback_ms(STEP_MS, 86_400_000) == 86_400_000
    from sextant.series.functions import FunctionArgumentError

    with pytest.raises(
        FunctionArgumentError,
        match=r"the named argument history must be a duration such as '12h', '3d', '2w' or '1mo'; "
        r"got 'forever'",
    ):
        spec.bind([f, "linear"], {"history": "forever"})
    with pytest.raises(
        FunctionArgumentError,
        match=r"the named argument model must be one of 'default', 'simple', 'reactive'",
    ):
        spec.bind([f, "linear"], {"model": "fancy"})
