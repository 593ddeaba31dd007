import math

import pytest

from sextant.series.functions import lookup, rollups
from tests.series.functions.builders import STEP_MS, assert_cells_close, cells, frame

ROWS = [
    [1.0, None, 3.0, -2.0, None, None, None, 7.0, 4.0, None],
    [None] * 10,
    [None, None, None, None, None, 6.0, None, None, None, None],
]


def reference(rows, seconds, aggregator):
    """Bucket by bucket: the non-null values of the buckets that start within `seconds` before it."""
    out = []
    for row in rows:
        new = []
        for j in range(len(row)):
            window = [
                row[i]
                for i in range(len(row))
                if i <= j and (j - i) * STEP_MS < seconds * 1000 and row[i] is not None
            ]
            if not window:
                new.append(None)
            elif aggregator == "avg":
                new.append(sum(window) / len(window))
            elif aggregator == "sum":
                new.append(sum(window))
            elif aggregator == "min":
                new.append(min(window))
            elif aggregator == "max":
                new.append(max(window))
            else:
                new.append(float(len(window)))
        out.append(new)
    return out


@pytest.mark.parametrize("aggregator", rollups.ROLLUP_AGGREGATORS)
@pytest.mark.parametrize("seconds", [1, 60, 90, 180, 300, 3600])
def test_moving_rollup_matches_trailing_windows(aggregator: str, seconds: int) -> None:
    out = rollups.moving_rollup(frame(ROWS), seconds, aggregator)
    assert_cells_close(out.values, reference(ROWS, seconds, aggregator))


def test_window_of_one_bucket_is_the_series_itself() -> None:
    assert cells(rollups.moving_rollup(frame(ROWS), 60, "avg").values) == cells(frame(ROWS).values)


def test_large_values_do_not_lose_precision() -> None:
    out = rollups.moving_rollup(frame([[1e15, 1.0, 2.0, 3.0]]), 120, "sum").values
    assert cells(out) == [[1e15, 1e15 + 1.0, 3.0, 5.0]]


def test_empty_frame() -> None:
    assert rollups.moving_rollup(frame([], width=4), 300, "max").values.shape == (0, 4)


def test_registry_entry_asks_for_the_window_as_history() -> None:
    bound = lookup("moving_rollup").bind([frame(ROWS), 600])
    assert bound.arguments["aggregator"] == "avg"
    assert bound.lookback_ms(STEP_MS, 3_600_000) == 600_000
    assert not math.isnan(bound.run().values[0, 0])
