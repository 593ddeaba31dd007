import pytest

from sextant.series.functions import FunctionArgumentError, interpolation, lookup
from tests.series.functions.builders import STEP_MS, assert_cells_close, cells, frame

# Gaps of 1, 4, 5 and 6 missing buckets (60 s each), a trailing run, and an all-null series.
ROWS = [
    [None, 1.0, None, 3.0, None, None, None, None, 8.0, None, None, None, None, None, 2.0],
    [5.0, None, None, None, None, None, None, 12.0, None, None, None, None, None, None, None],
    [None] * 15,
]


def reference_fill(rows, method, limit_s):
    """The rule, bucket by bucket: a null is filled when a value precedes it by at most `limit_s`; linear
    interpolates when the next value is also within `limit_s` of that preceding one, else holds it."""
    step_s = STEP_MS / 1000
    out = []
    for row in rows:
        new = list(row)
        for j, v in enumerate(row):
            if v is not None:
                continue
            before = next((i for i in range(j - 1, -1, -1) if row[i] is not None), None)
            if before is None or (j - before) * step_s > limit_s:
                continue
            after = next((i for i in range(j + 1, len(row)) if row[i] is not None), None)
            if method == "zero":
                new[j] = 0.0
            elif method == "last":
                new[j] = row[before]
            elif after is not None and (after - before) * step_s <= limit_s:
                new[j] = row[before] + (row[after] - row[before]) * (j - before) / (after - before)
            else:
                new[j] = row[before]
        out.append(new)
    return out


@pytest.mark.parametrize("method", ["zero", "last", "linear"])
@pytest.mark.parametrize("limit", [60, 120, 300, 360, 600])
def test_fill_matches_the_bucket_by_bucket_rule(method: str, limit: int) -> None:
    out = interpolation.fill(frame(ROWS), method, limit)
    assert_cells_close(out.values, reference_fill(ROWS, method, limit))


def test_fill_linear_bridges_a_gap_within_the_limit_and_holds_past_it() -> None:
    out = interpolation.fill(
        frame([[0.0, None, None, 3.0, None, None, None, None, None, None, 9.0]]), "linear", 300
    )
    # 0 → 3 over 180 s is bridged; 3 → 9 over 420 s is not: 3 is held for 300 s, then the gap stays.
    assert cells(out.values) == [[0.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, None, 9.0]]


def test_fill_null_changes_nothing_and_leading_nulls_are_never_filled() -> None:
    f = frame(ROWS)
    assert cells(interpolation.fill(f, "null").values) == cells(f.values)
    for method in ("zero", "last", "linear"):
        assert cells(interpolation.fill(f, method, 600).values)[0][0] is None


def test_default_zero_reproduces_datadogs_single_point_example() -> None:
    # One gauge point at 17:45 in 1-minute buckets: 0 before, 1 at 17:45 and for five minutes after
    # (interpolation), 0 again from 17:51.
    row = [None] * 10 + [1.0] + [None] * 10
    out = interpolation.default_zero(frame([row], kind="gauge"))
    assert cells(out.values) == [[0.0] * 10 + [1.0] * 6 + [0.0] * 5]


def test_default_zero_without_interpolation_is_plain_zeros() -> None:
    row = [None, 2.0, None, None, 4.0, None]
    assert cells(interpolation.default_zero(frame([row], kind="count")).values) == [
        [0.0, 2.0, 0.0, 0.0, 4.0, 0.0]
    ]
    gauge = frame([row], kind="gauge")
    assert cells(interpolation.default_zero(gauge, interpolate=False).values) == [
        [0.0, 2.0, 0.0, 0.0, 4.0, 0.0]
    ]
    assert cells(interpolation.default_zero(gauge).values) == [[0.0, 2.0, 2.0 + 2 / 3, 2.0 + 4 / 3, 4.0, 4.0]]


def test_default_zero_leaves_a_series_without_data_empty() -> None:
    out = interpolation.default_zero(frame([[None, None], [None, 1.0]]))
    assert cells(out.values) == [[None, None], [0.0, 1.0]]


def test_empty_frame() -> None:
    assert interpolation.fill(frame([], width=3), "linear").values.shape == (0, 3)
    assert interpolation.default_zero(frame([], width=3)).values.shape == (0, 3)


def test_fill_arguments_are_checked() -> None:
    spec = lookup("fill")
    assert spec.bind([frame(ROWS), "linear"]).arguments["limit"] == 300
    assert spec.bind([frame(ROWS), "LAST", 60]).arguments["method"] == "last"
    with pytest.raises(
        FunctionArgumentError,
        match=r"fill\(\): the 3rd argument \(limit\) must be a whole number at least 1 and at most 600; "
        r"got 900",
    ):
        spec.bind([frame(ROWS), "linear", 900])
    with pytest.raises(
        FunctionArgumentError, match=r"method\) must be one of 'null', 'zero', 'linear', 'last'; got 'cubic'"
    ):
        spec.bind([frame(ROWS), "cubic"])
    with pytest.raises(FunctionArgumentError, match=r"the 2nd argument \(method\) is missing"):
        spec.bind([frame(ROWS)])
