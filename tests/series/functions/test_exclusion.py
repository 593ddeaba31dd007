import pytest

from sextant.series.functions import FunctionArgumentError, exclusion, lookup
from tests.series.functions.builders import cells, frame

ROWS = [[1.0, 5.0, None, 10.0], [5.0, 4.99, 5.01, None]]


def test_exclude_null_drops_groups_missing_a_tag_value() -> None:
    f = frame(
        [[1.0], [2.0], [3.0], [4.0]],
        labels=[("prod", "a"), ("prod", None), (None, "c"), ("dev", "d")],
        group_by=("env", "host"),
    )
    out = exclusion.exclude_null(f)
    assert out.labels == [("prod", "a"), ("dev", "d")]
    assert cells(out.values) == [[1.0], [4.0]]
    assert exclusion.exclude_null(frame([], width=2)).values.shape == (0, 2)


@pytest.mark.parametrize(
    ("fn", "keep"),
    [
        (exclusion.clamp_min, lambda v, t: max(v, t)),
        (exclusion.clamp_max, lambda v, t: min(v, t)),
        (exclusion.cutoff_min, lambda v, t: None if v < t else v),
        (exclusion.cutoff_max, lambda v, t: None if v > t else v),
    ],
)
def test_thresholds_keep_equal_values_and_nulls(fn, keep) -> None:
    want = [[None if v is None else keep(v, 5.0) for v in row] for row in ROWS]
    assert cells(fn(frame(ROWS), 5.0).values) == want


def test_cutoff_keeps_a_value_equal_to_the_threshold() -> None:
    assert cells(exclusion.cutoff_max(frame([[4.0, 5.0, 6.0]]), 5).values) == [[4.0, 5.0, None]]
    assert cells(exclusion.cutoff_min(frame([[4.0, 5.0, 6.0]]), 5).values) == [[None, 5.0, 6.0]]


def test_threshold_must_be_a_number() -> None:
    with pytest.raises(
        FunctionArgumentError,
        match=r"clamp_min\(\): the 2nd argument \(threshold\) must be a number; got 'high'",
    ):
        lookup("clamp_min").bind([frame(ROWS), "high"])
    with pytest.raises(
        FunctionArgumentError,
        match=r"the 2nd argument \(threshold\) is missing: cutoff_max\(query, threshold\)",
    ):
        lookup("cutoff_max").bind([frame(ROWS)])
