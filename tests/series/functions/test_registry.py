import math

import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.functions import (
    DEFERRED,
    FUNCTIONS,
    FunctionArgumentError,
    FunctionContext,
    UnknownFunctionError,
    call,
    lookup,
)
from tests.series.functions.builders import frame

CATALOG = [
    "abs", "log2", "log10", "pow", "cumsum", "integral",
    "fill", "default_zero",
    "timeshift", "hour_before", "day_before", "week_before", "month_before", "calendar_shift",
    "per_second", "per_minute", "per_hour", "dt", "diff", "monotonic_diff", "derivative", "throughput",
    "autosmooth", "moving_rollup",
    "top", "bottom", "top_offset",
    "trend_line", "robust_trend", "piecewise_constant",
    "count_nonzero", "count_nonzero_finite", "count_not_null", "rate", "derived",
    "exclude_null", "clamp_min", "clamp_max", "cutoff_min", "cutoff_max",
    "anomalies", "outliers", "forecast",
]  # fmt: skip
EXPANDED = (
    [f"ewma_{n}" for n in (3, 5, 7, 10, 20)]
    + [f"median_{n}" for n in (3, 5, 7, 9)]
    + [f"rollingavg_{n}" for n in (5, 13, 21, 29)]
    + [f"{side}{n}_{by}" for side in ("top", "bottom") for n in (5, 10, 15, 20)
       for by in ("mean", "min", "max", "last", "area", "l2norm", "sum")]
)  # fmt: skip
# Arguments after the query for the entries that need some.
EXTRA: dict[str, list[object]] = {
    "fill": ["linear", 120],
    "timeshift": [-60],
    "calendar_shift": ["-1d"],
    "moving_rollup": [180, "max"],
    "clamp_min": [2],
    "clamp_max": [2],
    "cutoff_min": [2],
    "cutoff_max": [2],
    "anomalies": ["basic", 2],
    "outliers": ["MAD", 1, 10],
    "forecast": ["linear", 1],
}


def test_every_datadog_function_and_expanded_name_is_registered() -> None:
    assert set(CATALOG + EXPANDED) == set(FUNCTIONS)
    shifts = {name for name, spec in FUNCTIONS.items() if spec.kind == "shift"}
    assert shifts == {
        "timeshift",
        "hour_before",
        "day_before",
        "week_before",
        "month_before",
        "calendar_shift",
    }


def sample() -> SeriesFrame:
    rng = np.random.default_rng(0)
    values = rng.normal(5, 2, (4, 40))
    values[1, 3:9] = np.nan
    values[2] = np.nan
    return SeriesFrame(
        np.arange(40, dtype=np.int64) * 60_000, values, ("host",), [("a",), ("b",), (None,), ("d",)], 60_000
    )


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"pow"}))
def test_every_series_function_leaves_its_input_alone_and_takes_empty_input(name: str) -> None:
    spec = FUNCTIONS[name]
    if spec.kind == "shift":
        return
    f = sample()
    before = f.values.copy()
    context = FunctionContext(forecast_horizon_ms=300_000)
    out = spec.bind([f, *EXTRA.get(name, [])]).run(context)
    assert isinstance(out, SeriesFrame) and out is not f
    np.testing.assert_array_equal(f.values, before)
    assert not np.isinf(out.values).any()
    empty = SeriesFrame(f.times, np.empty((0, 40)), ("host",), [], 60_000)
    assert len(spec.bind([empty, *EXTRA.get(name, [])]).run(context)) == 0
    no_buckets = SeriesFrame(
        np.zeros(0, dtype=np.int64), np.empty((2, 0)), ("host",), [("a",), ("b",)], 60_000
    )
    spec.bind([no_buckets, *EXTRA.get(name, [])]).run(context)


def test_pow_of_numbers_through_the_registry() -> None:
    assert call("pow", [2, 3]) == 8.0
    out = call("pow", [frame([[3.0]]), 2])
    assert isinstance(out, SeriesFrame) and out.values[0, 0] == 9.0


def test_unknown_functions_say_what_exists() -> None:
    with pytest.raises(
        UnknownFunctionError,
        match=r"^unknown function 'ewma_4'; the ewma functions are ewma_3, ewma_5, ewma_7, ewma_10, ewma_20$",
    ):
        lookup("ewma_4")
    with pytest.raises(UnknownFunctionError, match=r"unknown function 'trendline'; did you mean trend_line"):
        lookup("trendline")
    with pytest.raises(
        UnknownFunctionError, match=r"the median functions are median_3, median_5, median_7, median_9"
    ):
        lookup("median_4")
    with pytest.raises(FunctionArgumentError, match=r"unknown function 'zzz'$"):
        lookup("zzz")


def test_argument_errors_name_the_function_the_argument_and_what_is_allowed() -> None:
    f = frame([[1.0]])
    with pytest.raises(FunctionArgumentError) as caught:
        lookup("top").bind([f, 0])
    error = caught.value
    assert str(error) == "top(): the 2nd argument (limit) must be a whole number at least 1; got 0"
    assert (error.function, error.argument, error.given) == ("top", "limit", 0)
    assert error.allowed == "a whole number at least 1"
    with pytest.raises(
        FunctionArgumentError,
        match=r"^top\(\): the 3rd argument \(by\) must be one of 'max', 'mean', 'min', 'sum', 'last', "
        r"'l2norm', 'area'; got 'avg'$",
    ):
        lookup("top").bind([f, 5, "avg"])
    with pytest.raises(FunctionArgumentError, match=r"^abs\(\): takes 1 argument and got 2: abs\(query\)$"):
        lookup("abs").bind([f, 2])
    with pytest.raises(
        FunctionArgumentError,
        match=r"^top\(\): takes at most 4 arguments and got 5: "
        r"top\(query, limit=10, by='mean', dir='desc'\)$",
    ):
        lookup("top").bind([f, 5, "max", "desc", 1])
    with pytest.raises(
        FunctionArgumentError, match=r"^ewma_3\(\): the 1st argument \(query\) must be a query; got 5$"
    ):
        lookup("ewma_3").bind([5])
    with pytest.raises(
        FunctionArgumentError, match=r"^abs\(\): the 1st argument \(query\) is missing: abs\(query\)$"
    ):
        lookup("abs").bind([])
    with pytest.raises(
        FunctionArgumentError,
        match=r"^cumsum\(\): has no named argument 'span'; it takes no named arguments$",
    ):
        lookup("cumsum").bind([f], {"span": 3})
    with pytest.raises(FunctionArgumentError, match=r"must be a whole number at least 0; got 1.5"):
        lookup("top_offset").bind([f, 5, "max", "desc", 1.5])
    with pytest.raises(FunctionArgumentError, match=r"must be a number; got true"):
        lookup("clamp_min").bind([f, True])
    with pytest.raises(FunctionArgumentError, match=r"must be a number; got nan"):
        lookup("clamp_min").bind([f, math.nan])
    with pytest.raises(
        FunctionArgumentError, match=r"the named argument count_default_zero must be true or false; got 'yes'"
    ):
        lookup("anomalies").bind([f, "basic"], {"count_default_zero": "yes"})


def test_signatures() -> None:
    assert lookup("anomalies").signature() == (
        "anomalies(query, algorithm, bounds=2, direction='both', alert_window=…, interval=…, "
        "count_default_zero=false, seasonality='weekly', timezone='UTC')"
    )
    assert lookup("fill").signature() == "fill(query, method, limit=300)"


def test_planning_with_deferred_queries() -> None:
    bound = lookup("anomalies").bind([DEFERRED, "agile", 2], {"seasonality": "daily"})
    assert bound.lookback_ms(300_000, 86_400_000) == 3 * 86_400_000
    assert lookup("abs").bind([DEFERRED]).lookback_ms(60_000, 3_600_000) == 0
    with pytest.raises(ValueError, match="bind query results for query before running"):
        bound.run()
    with pytest.raises(ValueError, match="shifts the query's window"):
        lookup("hour_before").bind([DEFERRED]).run()
    with pytest.raises(ValueError, match="does not shift"):
        lookup("abs").bind([DEFERRED]).shifted_window(0, 1)


def test_call_runs_a_function_in_one_step() -> None:
    out = call("cutoff_max", [frame([[1.0, 3.0]]), 2])
    assert isinstance(out, SeriesFrame)
    assert np.isnan(out.values[0, 1]) and out.values[0, 0] == 1.0


def test_aliases_and_family_members_run_what_they_stand_for() -> None:
    f = sample()
    for alias, base in (
        ("rate", "per_second"),
        ("derived", "derivative"),
        ("count_nonzero_finite", "count_nonzero"),
    ):
        np.testing.assert_array_equal(call(alias, [f]).values, call(base, [f]).values)  # type: ignore[union-attr]
    np.testing.assert_array_equal(
        call("top5_max", [f]).values,  # type: ignore[union-attr]
        call("top", [f, 5, "max", "desc"]).values,  # type: ignore[union-attr]
    )
    np.testing.assert_array_equal(
        call("bottom10_l2norm", [f]).values,  # type: ignore[union-attr]
        call("top", [f, 10, "l2norm", "asc"]).values,  # type: ignore[union-attr]
    )
    hour = lookup("hour_before").bind([DEFERRED]).shifted_window(0, 60_000)
    assert hour == lookup("timeshift").bind([DEFERRED, -3600]).shifted_window(0, 60_000)
    # Any whole number from 1 is a top() limit, not only the UI's 5, 10, 25, 50, 100.
    assert len(call("top", [f, 3])) == 3  # type: ignore[arg-type]
