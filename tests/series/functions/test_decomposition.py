import math
import statistics

import numpy as np

from sextant.series.functions import decomposition

PERIOD = 24


def reference_level(row, period):
    out = []
    first = next(i for i, v in enumerate(row) if v is not None)
    for j in range(len(row)):
        window = [v for v in row[max(0, j - period + 1) : j + 1] if v is not None]
        if j < first + period - 1 or 2 * len(window) < period:
            out.append(None)
        else:
            out.append(statistics.median(window))
    return out


def reference_shape(row, level, period, reach):
    shape = []
    for phase in range(period):
        pooled = [
            v - lv
            for j, (v, lv) in enumerate(zip(row, level, strict=True))
            if v is not None and lv is not None
            and min((j - phase) % period, (phase - j) % period) <= reach
        ]  # fmt: skip
        shape.append(statistics.median(pooled))
    return shape


def test_level_and_shape_match_their_definitions() -> None:
    rng = np.random.default_rng(2)
    n = PERIOD * 5 + 7
    t = np.arange(n)
    row = [float(v) for v in 10 + 4 * np.sin(2 * np.pi * t / PERIOD) + 0.1 * t + rng.normal(0, 0.5, n)]
    for j in (3, 30, 31, 77):
        row[j] = None
    values = np.array([math.nan if v is None else v for v in row])
    parts = decomposition.decompose(values, PERIOD)
    assert parts is not None
    level = reference_level(row, PERIOD)
    got = [None if math.isnan(v) else v for v in parts.level]
    assert got == level
    seasons = sum(1 for v, lv in zip(row, level, strict=True) if v is not None and lv is not None) / PERIOD
    reach = min(PERIOD // 8, math.ceil(max(0.0, 21 / seasons - 1) / 2))
    np.testing.assert_allclose(parts.shape, reference_shape(row, level, PERIOD, reach))
    np.testing.assert_array_equal(parts.seasonal(np.array([0, 25, 47])), parts.shape[[0, 1, 23]])


def test_a_spike_moves_neither_level_nor_shape() -> None:
    t = np.arange(PERIOD * 4)
    clean = 10 + 4 * np.sin(2 * np.pi * t / PERIOD)
    spiked = clean.copy()
    spiked[PERIOD * 3 + 5] += 100
    a, b = decomposition.decompose(clean, PERIOD), decomposition.decompose(spiked, PERIOD)
    assert a is not None and b is not None
    np.testing.assert_allclose(b.shape, a.shape, atol=0.5)
    assert np.nanmax(np.abs(b.level - a.level)) < 0.5


def test_less_than_two_seasons_is_no_decomposition() -> None:
    assert decomposition.decompose(np.ones(2 * PERIOD - 1), PERIOD) is None
    assert decomposition.decompose(np.full(3 * PERIOD, np.nan), PERIOD) is None
    assert decomposition.decompose(np.ones(2 * PERIOD), PERIOD) is not None
