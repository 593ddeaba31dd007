import pytest

from sextant.series.functions import rates
from tests.series.functions.builders import STEP_MS, assert_cells_close, cells, frame

# A counter with a gap and a reset, a gauge that goes down, an all-null series and a single point.
ROWS = [
    [10.0, 20.0, None, 50.0, 5.0, 15.0, None, None, 45.0],
    [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0],
    [None] * 9,
    [None, None, None, None, 7.0, None, None, None, None],
]


def pairs(row):
    """(index, value, value before, seconds since it) for every point that has a previous point."""
    previous = None
    for j, v in enumerate(row):
        if v is None:
            continue
        if previous is not None:
            yield j, v, row[previous], (j - previous) * STEP_MS / 1000
        previous = j


def reference(rows, per_pair):
    out = []
    for row in rows:
        new = [None] * len(row)
        for j, v, before, seconds in pairs(row):
            new[j] = per_pair(v, before, seconds)
        out.append(new)
    return out


def test_diff() -> None:
    assert_cells_close(rates.diff(frame(ROWS)).values, reference(ROWS, lambda v, b, s: v - b))


def test_monotonic_diff_drops_negative_deltas_and_keeps_zero() -> None:
    want = reference(ROWS, lambda v, b, s: v - b if v >= b else None)
    assert_cells_close(rates.monotonic_diff(frame(ROWS)).values, want)
    assert cells(rates.monotonic_diff(frame([[4.0, 4.0, 3.0]])).values) == [[None, 0.0, None]]


def test_derivative_is_diff_over_seconds_including_drops() -> None:
    assert_cells_close(rates.derivative(frame(ROWS)).values, reference(ROWS, lambda v, b, s: (v - b) / s))


@pytest.mark.parametrize(
    ("fn", "scale"), [(rates.per_second, 1), (rates.per_minute, 60), (rates.per_hour, 3600)]
)
def test_rates_skip_counter_resets(fn, scale) -> None:
    want = reference(ROWS, lambda v, b, s: (v - b) / s * scale if v >= b else None)
    assert_cells_close(fn(frame(ROWS)).values, want)
    # The counter: 10 → 20 in 60 s, 20 → 50 over 120 s (across the gap), the reset to 5 is no rate.
    assert cells(rates.per_second(frame(ROWS[:1])).values)[0][:5] == [None, 10 / 60, None, 30 / 120, None]


def test_throughput_divides_by_the_bucket_length() -> None:
    want = [[None if v is None else v / 60 for v in row] for row in ROWS]
    assert_cells_close(rates.throughput(frame(ROWS)).values, want)


def test_dt_is_one_series_over_the_union_of_points() -> None:
    f = frame([[1.0, None, None, 4.0, None], [None, None, 3.0, None, None], [None] * 5])
    out = rates.dt(f)
    assert out.labels == [()] and out.group_by == ()
    # Points exist at buckets 0, 2 and 3 (any group): 120 s, then 60 s.
    assert cells(out.values) == [[None, None, 120.0, 60.0, None]]


def test_empty_frame_and_all_null() -> None:
    empty = frame([], width=3)
    for fn in (rates.diff, rates.per_second, rates.derivative, rates.throughput, rates.dt):
        assert fn(empty).values.shape[0] == 0
    assert cells(rates.dt(frame([[None, None]])).values) == [[None, None]]
