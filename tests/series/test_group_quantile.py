"""quantile_groups: a quantile across each group's series, bucket by bucket."""

from __future__ import annotations

import numpy as np
import pytest

from sextant.series.frame import SeriesFrame
from sextant.series.group_quantile import quantile_groups

NAN = np.nan


def test_quantile_across_the_series_of_each_group() -> None:
    frame = SeriesFrame(
        times=np.array([0, 60_000, 120_000]),
        values=np.array(
            [
                [1.0, 10.0, NAN],
                [2.0, NAN, NAN],
                [3.0, 30.0, NAN],
                [4.0, 40.0, 7.0],
                [5.0, 50.0, NAN],
            ]
        ),
        group_by=("shard",),
        labels=[("b",), ("b",), ("b",), ("a",), ("b",)],
        step_ms=60_000,
    )
    out = quantile_groups(frame, 0.95)
    assert out.labels == [("a",), ("b",)]
    assert list(out.values[0]) == [4.0, 40.0, 7.0]
    # Linear between the closest ranks, nulls left out: [1, 2, 3, 5] and [10, 30, 50].
    assert out.values[1, 0] == pytest.approx(np.percentile([1, 2, 3, 5], 95))
    assert out.values[1, 1] == pytest.approx(10 + (50 - 10) * 0.95)
    # No series of the group has a value: null.
    assert np.isnan(out.values[1, 2])
