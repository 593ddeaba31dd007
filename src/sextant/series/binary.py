"""Arithmetic between series sets, with Datadog's group matching.

- A number and a set: the number applies to every series.
- An ungrouped single series and a grouped set: the single series applies to every group (the "share of
  the total" pattern, `a by {host} / b`).
- Two sets grouped by the same keys: series with the same labels are paired; a group on one side only is
  dropped.
- One set's keys a subset of the other's (`by {env}` and `by {env,host}`): each series of the finer set
  pairs with the series of the coarser set that has its values for the shared keys; the result keeps the
  finer labels.
- Any other combination of keys cannot be matched: `GroupMatchError`.

A null on either side gives null; so does division by zero (never an infinity or NaN in a response).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

from sextant.series.frame import Labels, SeriesFrame

Operator = Literal["+", "-", "*", "/"]
Operand = float | SeriesFrame


class GroupMatchError(ValueError):
    """Two series sets whose group keys cannot be matched."""


def _apply(op: Operator, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if op == "+":
            out = a + b
        elif op == "-":
            out = a - b
        elif op == "*":
            out = a * b
        else:
            out = np.where(b == 0, np.nan, a / np.where(b == 0, 1.0, b))
    result: npt.NDArray[np.float64] = np.where(np.isfinite(out), out, np.nan)
    return result


def combine(op: Operator, left: Operand, right: Operand) -> Operand:
    """`left op right`, elementwise after matching groups."""
    if not isinstance(left, SeriesFrame) and not isinstance(right, SeriesFrame):
        if op == "/" and right == 0:
            return float("nan")
        return float(_apply(op, np.array([left]), np.array([right]))[0])
    if not isinstance(left, SeriesFrame):
        assert isinstance(right, SeriesFrame)
        return right.with_values(_apply(op, np.full_like(right.values, left), right.values))
    if not isinstance(right, SeriesFrame):
        return left.with_values(_apply(op, left.values, np.full_like(left.values, right)))
    if not np.array_equal(left.times, right.times):
        raise ValueError("series sets over different buckets cannot be combined")
    return _combine_frames(op, left, right)


def _combine_frames(op: Operator, left: SeriesFrame, right: SeriesFrame) -> SeriesFrame:
    if len(left) == 1 and not left.group_by and right.group_by:
        return right.with_values(_apply(op, np.broadcast_to(left.values, right.values.shape), right.values))
    if len(right) == 1 and not right.group_by and left.group_by:
        return left.with_values(_apply(op, left.values, np.broadcast_to(right.values, left.values.shape)))
    lkeys, rkeys = set(left.group_by), set(right.group_by)
    if lkeys == rkeys:
        order = [right.group_by.index(k) for k in left.group_by]
        index = {tuple(labels[i] for i in order): row for row, labels in enumerate(right.labels)}
        return _paired(op, left, right, lambda labels: index.get(labels), finer_is_left=True)
    if rkeys < lkeys:
        return _paired(op, left, right, _coarse_lookup(left, right), finer_is_left=True)
    if lkeys < rkeys:
        return _paired(op, right, left, _coarse_lookup(right, left), finer_is_left=False)
    raise GroupMatchError(
        f"cannot match series grouped by {{{','.join(left.group_by)}}} with series grouped by "
        f"{{{','.join(right.group_by)}}}: group both by the same tags, or one by a subset of the other's"
    )


def _coarse_lookup(fine: SeriesFrame, coarse: SeriesFrame) -> Callable[[Labels], int | None]:
    positions = [fine.group_by.index(k) for k in coarse.group_by]
    index = {labels: row for row, labels in enumerate(coarse.labels)}
    return lambda labels: index.get(tuple(labels[p] for p in positions))


def _paired(
    op: Operator,
    fine: SeriesFrame,
    coarse: SeriesFrame,
    partner: Callable[[Labels], int | None],
    *,
    finer_is_left: bool,
) -> SeriesFrame:
    rows, partners = [], []
    for row, labels in enumerate(fine.labels):
        match = partner(labels)
        if match is not None:
            rows.append(row)
            partners.append(match)
    a, b = fine.values[rows], coarse.values[partners]
    values = _apply(op, a, b) if finer_is_left else _apply(op, b, a)
    return SeriesFrame(
        times=fine.times,
        values=values.reshape(len(rows), len(fine.times)),
        group_by=fine.group_by,
        labels=[fine.labels[r] for r in rows],
        step_ms=fine.step_ms,
        kind=fine.kind,
        unit=fine.unit,
    )
