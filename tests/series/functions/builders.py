"""Frames for the function tests, written as nested lists with None for a null."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sextant.series.frame import Labels, SeriesFrame

STEP_MS = 60_000
# An hour boundary, so that hourly and daily alignments are easy to read.
T0_MS = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000

Cell = float | None


def frame(
    rows: Sequence[Sequence[Cell]],
    labels: Sequence[Labels] | None = None,
    group_by: tuple[str, ...] = ("host",),
    step_ms: int = STEP_MS,
    t0_ms: int = T0_MS,
    kind: str | None = None,
    width: int | None = None,
) -> SeriesFrame:
    m = len(rows[0]) if rows else (width or 0)
    values = np.array([[math.nan if v is None else float(v) for v in row] for row in rows], dtype=np.float64)
    values = values.reshape(len(rows), m)
    if labels is None:
        labels = [(f"h{i}",) for i in range(len(rows))] if group_by else [() for _ in rows]
    times = t0_ms + step_ms * np.arange(m, dtype=np.int64)
    return SeriesFrame(times, values, group_by, list(labels), step_ms, kind=kind)


def cells(values: np.ndarray) -> list[list[Cell]]:
    """A matrix back as lists, NaN as None (so that tests compare nulls exactly)."""
    return [[None if math.isnan(v) else float(v) for v in row] for row in values.tolist()]


def assert_cells_close(got: np.ndarray, want: Sequence[Sequence[Cell]], rel: float = 1e-9) -> None:
    got_cells = cells(got)
    assert len(got_cells) == len(want), (got_cells, want)
    for got_row, want_row in zip(got_cells, want, strict=True):
        assert len(got_row) == len(want_row), (got_row, want_row)
        for g, w in zip(got_row, want_row, strict=True):
            if w is None or g is None:
                assert g is w, (got_row, want_row)
            else:
                assert math.isclose(g, w, rel_tol=rel, abs_tol=1e-9), (got_row, want_row)
