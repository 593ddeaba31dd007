import math
import statistics

import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.functions import frames, trim_before
from tests.series.functions.builders import T0_MS, cells, frame


def test_row_medians_match_statistics_median() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(0, 1, (50, 7))
    rows[rng.random(rows.shape) < 0.3] = np.nan
    rows[0] = np.nan
    got = frames.row_medians(rows)
    for value, row in zip(got, rows, strict=True):
        present = [v for v in row if not math.isnan(v)]
        assert (math.isnan(value) and not present) or value == pytest.approx(statistics.median(present))
    assert frames.row_medians(np.empty((3, 0))).shape == (3,)


def test_previous_and_next_present() -> None:
    values = frame([[None, 1.0, None, None, 2.0, None]]).values
    assert frames.previous_present(values).tolist() == [[-1, -1, 1, 1, 1, 4]]
    assert frames.next_present(values).tolist() == [[1, 4, 4, 4, -1, -1]]


def test_take_rows_keeps_labels_tags_and_bands_together() -> None:
    f = frame([[1.0], [2.0], [3.0]])
    f = SeriesFrame(
        f.times, f.values, f.group_by, f.labels, f.step_ms, tags=[("a:1",), ("a:2",), ("a:3",)],
        lower=f.values - 1, upper=f.values + 1,
    )  # fmt: skip
    out = frames.take_rows(f, [2, 0])
    assert out.labels == [("h2",), ("h0",)] and out.tags == [("a:3",), ("a:1",)]
    assert cells(out.values) == [[3.0], [1.0]] and cells(out.lower) == [[2.0], [0.0]]
    assert frames.take_rows(f, []).values.shape == (0, 1)


def test_trim_before_drops_history_buckets() -> None:
    f = frame([[1.0, 2.0, 3.0]])
    out = trim_before(f, T0_MS + 60_000)
    assert out.times.tolist() == [T0_MS + 60_000, T0_MS + 120_000]
    assert cells(out.values) == [[2.0, 3.0]]
    assert trim_before(f, T0_MS) is f


def test_robust_sd_of_normal_data_and_without_data() -> None:
    values = np.random.default_rng(1).normal(0, 2, 20_000)
    values[:50] = 1e6
    assert frames.robust_sd(values) == pytest.approx(2, rel=0.05)
    assert math.isnan(frames.robust_sd(np.full(3, np.nan)))
