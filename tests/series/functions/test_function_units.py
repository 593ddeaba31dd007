"""What every function of the catalog does to the unit of its query."""

from __future__ import annotations

import pytest

from sextant.core.units import BY_NAME, MetricUnit
from sextant.series.functions import DEFERRED, FUNCTIONS

BYTES = MetricUnit(BY_NAME["byte"])
BYTES_PER_SECOND = MetricUnit(BY_NAME["byte"], BY_NAME["second"])
PER = {
    "per_second": "second",
    "rate": "second",
    "derivative": "second",
    "derived": "second",
    "throughput": "second",
    "per_minute": "minute",
    "per_hour": "hour",
}
NO_UNIT = {"log2", "log10", "pow", "count_nonzero", "count_nonzero_finite", "count_not_null"}
# Arguments after the query for the entries that need some.
EXTRA: dict[str, list[object]] = {
    "fill": ["linear"],
    "timeshift": [-60],
    "calendar_shift": ["-1d"],
    "moving_rollup": [180],
    "clamp_min": [2],
    "clamp_max": [2],
    "cutoff_min": [2],
    "cutoff_max": [2],
    "anomalies": ["basic"],
    "outliers": ["MAD"],
    "forecast": ["linear"],
    "pow": [2],
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_keeps_changes_or_drops_the_unit(name: str) -> None:
    bound = FUNCTIONS[name].bind([DEFERRED, *EXTRA.get(name, [])])
    if name in PER:
        assert bound.unit(BYTES) == MetricUnit(BY_NAME["byte"], BY_NAME[PER[name]])
        assert bound.unit(BYTES_PER_SECOND) is None  # a rate of a rate
    elif name in NO_UNIT:
        assert bound.unit(BYTES) is None
    elif name == "integral":
        assert bound.unit(BYTES_PER_SECOND) == BYTES
        assert bound.unit(BYTES) is None
    elif name == "dt":
        assert bound.unit(BYTES) == MetricUnit(BY_NAME["second"])
    else:
        assert bound.unit(BYTES) == BYTES
        assert bound.unit(BYTES_PER_SECOND) == BYTES_PER_SECOND
    if name != "dt":
        assert bound.unit(None) is None


def test_moving_rollup_counts_have_no_unit() -> None:
    spec = FUNCTIONS["moving_rollup"]
    assert spec.bind([DEFERRED, 60, "max"]).unit(BYTES) == BYTES
    assert spec.bind([DEFERRED, 60, "count"]).unit(BYTES) is None
