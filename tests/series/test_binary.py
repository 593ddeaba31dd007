"""Formula arithmetic between series sets: group matching, null propagation, division by zero."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sextant.series.binary import GroupMatchError, combine
from sextant.series.frame import SeriesFrame

NAN = float("nan")
TIMES = np.array([0, 60_000, 120_000], dtype=np.int64)


def frame(rows: dict[tuple[str | None, ...], list[float]], group_by: tuple[str, ...]) -> SeriesFrame:
    labels = list(rows)
    return SeriesFrame(TIMES, np.array([rows[k] for k in labels], dtype=float), group_by, labels, 60_000)


def as_dict(result: object) -> dict[tuple[str | None, ...], list[float | None]]:
    assert isinstance(result, SeriesFrame)
    return {
        labels: [None if math.isnan(v) else v for v in result.values[i]]
        for i, labels in enumerate(result.labels)
    }


def test_numbers_apply_to_every_series_and_nulls_stay_null() -> None:
    a = frame({("x",): [1.0, NAN, 3.0], ("y",): [2.0, 4.0, 6.0]}, ("host",))
    assert as_dict(combine("*", 2.0, a)) == {("x",): [2.0, None, 6.0], ("y",): [4.0, 8.0, 12.0]}
    assert as_dict(combine("-", a, 1.0)) == {("x",): [0.0, None, 2.0], ("y",): [1.0, 3.0, 5.0]}
    assert combine("+", 1.0, 2.0) == 3.0 and math.isnan(combine("/", 1.0, 0.0))  # type: ignore[arg-type]


def test_division_by_zero_is_null_never_infinite() -> None:
    a = frame({(): [10.0, 10.0, 10.0]}, ())
    b = frame({(): [0.0, 1.0, NAN]}, ())
    assert as_dict(combine("/", a, b)) == {(): [None, 10.0, None]}
    assert as_dict(combine("/", a, 0.0)) == {(): [None, None, None]}


def test_same_groups_pair_up_and_unmatched_groups_are_dropped() -> None:
    a = frame({("x", "prod"): [1.0, 2.0, 3.0], ("y", "prod"): [1.0, 1.0, 1.0]}, ("host", "env"))
    # The same keys in another order.
    b = frame({("prod", "x"): [10.0, 10.0, 10.0], ("prod", "z"): [5.0, 5.0, 5.0]}, ("env", "host"))
    assert as_dict(combine("+", a, b)) == {("x", "prod"): [11.0, 12.0, 13.0]}


def test_an_ungrouped_series_broadcasts_to_every_group() -> None:
    per_host = frame({("x",): [1.0, 2.0, 3.0], ("y",): [3.0, 2.0, 1.0]}, ("host",))
    total = frame({(): [4.0, 4.0, 0.0]}, ())
    assert as_dict(combine("/", per_host, total)) == {("x",): [0.25, 0.5, None], ("y",): [0.75, 0.5, None]}
    assert as_dict(combine("-", total, per_host)) == {("x",): [3.0, 2.0, -3.0], ("y",): [1.0, 2.0, -1.0]}


def test_a_coarser_grouping_matches_on_the_shared_keys_keeping_the_finer_labels() -> None:
    fine = frame(
        {("x", "prod"): [1.0, 1.0, 1.0], ("y", "dev"): [2.0, 2.0, 2.0], ("z", "qa"): [1, 1, 1]},
        ("host", "env"),
    )
    coarse = frame({("prod",): [10.0, 20.0, 30.0], ("dev",): [1.0, 1.0, 1.0]}, ("env",))
    assert as_dict(combine("*", fine, coarse)) == {
        ("x", "prod"): [10.0, 20.0, 30.0],
        ("y", "dev"): [2.0, 2.0, 2.0],
    }
    # Order of operands is kept when the coarse side is on the left.
    assert as_dict(combine("-", coarse, fine)) == {
        ("x", "prod"): [9.0, 19.0, 29.0],
        ("y", "dev"): [-1.0, -1.0, -1.0],
    }


def test_unrelated_groupings_are_an_error_that_says_what_to_do() -> None:
    a = frame({("x",): [1.0, 1.0, 1.0]}, ("host",))
    b = frame({("prod",): [1.0, 1.0, 1.0]}, ("env",))
    with pytest.raises(GroupMatchError, match=r"grouped by \{host\}.*\{env\}.*same tags"):
        combine("+", a, b)
