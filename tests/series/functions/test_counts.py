from sextant.series.functions import counts, lookup
from tests.series.functions.builders import cells, frame

ROWS = [
    [0.0, 1.0, None, 2.0, None],
    [3.0, 0.0, None, -1.0, None],
    [None, None, None, 5.0, None],
    [None, None, None, None, None],
]


def reference(rows, counted):
    out = []
    for j in range(len(rows[0])):
        column = [row[j] for row in rows if row[j] is not None]
        out.append(float(sum(1 for v in column if counted(v))) if column else None)
    return [out]


def test_count_not_null_is_one_series_counting_groups_with_a_value() -> None:
    out = counts.count_not_null(frame(ROWS))
    assert out.group_by == () and out.labels == [()]
    assert cells(out.values) == reference(ROWS, lambda v: True) == [[2.0, 2.0, None, 3.0, None]]


def test_count_nonzero_leaves_out_zeros() -> None:
    out = counts.count_nonzero(frame(ROWS))
    assert cells(out.values) == reference(ROWS, lambda v: v != 0) == [[1.0, 1.0, None, 3.0, None]]
    alias = lookup("count_nonzero_finite").bind([frame(ROWS)]).run()
    assert cells(alias.values) == cells(out.values)


def test_no_series_gives_no_series() -> None:
    for fn in (counts.count_nonzero, counts.count_not_null):
        out = fn(frame([], width=5))
        assert out.values.shape == (0, 5)
        assert out.group_by == ()
