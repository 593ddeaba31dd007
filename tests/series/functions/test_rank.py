import math

import pytest

from sextant.series.functions import lookup, rank
from sextant.series.functions.reducers import REDUCERS, reduce_rows
from tests.series.functions.builders import STEP_MS, cells, frame

ROWS = [
    [1.0, 9.0, None, 2.0],
    [4.0, 4.0, 4.0, 4.0],
    [None, None, None, None],
    [-5.0, None, 20.0, -3.0],
    [3.0, 3.0, 6.0, 4.0],
    [2.0, 2.0, 2.0, 3.0],
    [4.0, 4.0, 4.0, 4.0],
]
LABELS = [("e",), ("b",), ("a",), ("d",), ("c",), ("f",), ("a2",)]


def reduce(row, how):
    points = [v for v in row if v is not None]
    if not points:
        return None
    return {
        "max": max(points),
        "min": min(points),
        "mean": sum(points) / len(points),
        "avg": sum(points) / len(points),
        "sum": sum(points),
        "last": points[-1],
        "l2norm": math.sqrt(sum(p * p for p in points)),
        "area": sum(points) * STEP_MS / 1000,
    }[how]


def reference_ranking(rows, labels, by, direction):
    scored = [(reduce(row, by), label) for row, label in zip(rows, labels, strict=True)]
    present = [s for s in scored if s[0] is not None]
    missing = sorted(s[1] for s in scored if s[0] is None)
    ordered = sorted(present, key=lambda s: (-s[0] if direction == "desc" else s[0], s[1]))
    return [s[1] for s in ordered] + missing


@pytest.mark.parametrize("how", [*REDUCERS, "avg"])
def test_reducers_ignore_nulls(how: str) -> None:
    got = reduce_rows(frame(ROWS, LABELS), how)
    for value, row in zip(got, ROWS, strict=True):
        want = reduce(row, how)
        assert (math.isnan(value) and want is None) or math.isclose(value, want)


@pytest.mark.parametrize("by", REDUCERS)
@pytest.mark.parametrize("direction", rank.DIRECTIONS)
def test_top_ranks_by_reducer_with_ties_broken_by_labels(by: str, direction: str) -> None:
    f = frame(ROWS, LABELS)
    want = reference_ranking(ROWS, LABELS, by, direction)
    out = rank.top(f, 5, by, direction)
    assert out.labels == want[:5]
    for label, row in zip(out.labels, cells(out.values), strict=True):
        assert row == cells(f.values)[LABELS.index(label)]


def test_ties_are_stable_and_nulls_come_last_in_both_directions() -> None:
    f = frame(ROWS, LABELS)
    # Rows "b" and "a2" tie on every reducer: "a2" sorts first by label, whatever the direction.
    assert rank.top(f, 10, "max", "desc").labels == [("d",), ("e",), ("c",), ("a2",), ("b",), ("f",), ("a",)]
    assert rank.top(f, 10, "max", "asc").labels == [("f",), ("a2",), ("b",), ("c",), ("e",), ("d",), ("a",)]
    # Every series with a value has mean 4: the labels alone order them.
    assert rank.top(f, 10, "mean", "desc").labels == [("a2",), ("b",), ("c",), ("d",), ("e",), ("f",), ("a",)]


def test_top_offset_returns_the_next_ranks() -> None:
    f = frame(ROWS, LABELS)
    ranking = reference_ranking(ROWS, LABELS, "max", "desc")
    assert rank.top(f, 2, "max", "desc", 2).labels == ranking[2:4]
    assert rank.top(f, 5, "max", "desc", 10).labels == []


def test_bottom_is_the_ascending_ranking() -> None:
    f = frame(ROWS, LABELS)
    assert rank.bottom(f, 5, "min").labels == reference_ranking(ROWS, LABELS, "min", "asc")[:5]


def test_shorthands_are_registered_for_every_size_and_reducer() -> None:
    f = frame(ROWS, LABELS)
    for side, direction in (("top", "desc"), ("bottom", "asc")):
        for size in (5, 10, 15, 20):
            for by in ("mean", "min", "max", "last", "area", "l2norm"):
                out = lookup(f"{side}{size}_{by}").bind([f]).run()
                assert out.labels == reference_ranking(ROWS, LABELS, by, direction)[:size]


def test_registry_top_defaults_and_allowed_limits() -> None:
    spec = lookup("top")
    bound = spec.bind([frame(ROWS, LABELS)])
    assert (bound.arguments["limit"], bound.arguments["by"], bound.arguments["dir"]) == (10, "mean", "desc")
    assert spec.bind([frame(ROWS, LABELS), 5.0, "MAX", "ASC"]).arguments["dir"] == "asc"


def test_empty_frame_and_single_series() -> None:
    assert rank.top(frame([], width=3), 5).values.shape == (0, 3)
    assert rank.top(frame([[1.0]]), 5).labels == [("h0",)]
