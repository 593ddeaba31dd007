"""Datadog's default rollup intervals and the 1500-point limit."""

from __future__ import annotations

import pytest

from sextant.series.intervals import MAX_POINTS, choose_step_ms, default_step_ms, points_in

H = 3_600_000
D = 24 * H


@pytest.mark.parametrize(
    ("window", "step_s"),
    [
        (H, 20),
        (4 * H, 60),
        (D, 300),
        (2 * D, 600),
        (7 * D, 3600),
        (30 * D, 14400),
        (3 * H, 60),
        (90 * D, 28800),
    ],
)
def test_defaults_follow_the_documented_table(window: int, step_s: int) -> None:
    assert default_step_ms(window) == step_s * 1000


def test_a_requested_interval_is_kept_unless_it_passes_1500_points() -> None:
    assert choose_step_ms(H, 5_000) == 5_000  # 720 points
    step = choose_step_ms(30 * D, 10_000)  # 259,200 points asked for
    assert points_in(30 * D, step) <= MAX_POINTS and step == 1800_000
    assert choose_step_ms(D, 60_000) == 60_000  # "one point per minute over a day": exactly 1440
    assert choose_step_ms(3 * 365 * D, 1000) == D  # 1095 days
    assert choose_step_ms(5 * 365 * D, 1000) == 7 * D  # past the ladder: whole weeks
