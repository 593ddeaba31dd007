"""Evaluating a formula tree over a time window: operands fetched from storage, arithmetic with group
matching, functions from the catalog.

The evaluator knows nothing of where series come from: `fetch(operand, window)` gives the frame of a query
name (v2 formulas) or of an inline metric query (legacy `q` strings) over a window. Functions that need
history before the window (anomalies, moving_rollup, forecast) get their operands over a longer window and
their result is trimmed back; the timeshift family evaluates its operand over the shifted window and moves
the points back onto the asked buckets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sextant.query.formula_syntax import (
    BinOp,
    Call,
    FormulaAst,
    MetricOperand,
    Neg,
    Number,
    QueryRef,
    StringLit,
)
from sextant.series.binary import Operand, combine
from sextant.series.buckets import bucket_times
from sextant.series.frame import SeriesFrame
from sextant.series.functions import DEFERRED, FunctionContext, lookup, realign, trim_before


@dataclass(frozen=True)
class Window:
    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def times(self) -> npt.NDArray[np.int64]:
        return bucket_times(self.start_ms, self.end_ms, self.step_ms)


Fetch = Callable[[QueryRef | MetricOperand, Window], SeriesFrame]


class FormulaError(ValueError):
    """A formula that cannot be evaluated as written (its message says why)."""


def evaluate(
    node: FormulaAst, window: Window, fetch: Fetch, context: FunctionContext | None = None
) -> Operand:
    """The value of `node` over `window`: a frame, or a number for a constant expression."""
    return _Evaluation(fetch, context or FunctionContext()).value(node, window)


class _Evaluation:
    def __init__(self, fetch: Fetch, context: FunctionContext) -> None:
        self._fetch = fetch
        self._context = context

    def value(self, node: FormulaAst | StringLit, window: Window) -> Operand:
        if isinstance(node, Number):
            return float(node.value)
        if isinstance(node, QueryRef | MetricOperand):
            return self._fetch(node, window)
        if isinstance(node, Neg):
            return combine("*", -1.0, self.value(node.operand, window))
        if isinstance(node, BinOp):
            return combine(node.op, self.value(node.left, window), self.value(node.right, window))
        if isinstance(node, Call):
            return self._call(node, window)
        raise FormulaError(f"a string ({node.value!r}) can only be a function argument")

    def _call(self, node: Call, window: Window) -> Operand:
        spec = lookup(node.name)
        positional = [DEFERRED if self._is_series(a) else self._plain(a) for a in node.args]
        named = {k: DEFERRED if self._is_series(v) else self._plain(v) for k, v in node.kwargs}
        planning = spec.bind(positional, named)
        if spec.kind == "shift":
            shifted = planning.shifted_window(window.start_ms, window.end_ms)
            inner = Window(shifted.start_ms, shifted.end_ms, window.step_ms)
            operand = self.value(node.args[0], inner)
            if not isinstance(operand, SeriesFrame):
                return operand
            return realign(operand, shifted, window.times)
        lookback = planning.lookback_ms(window.step_ms, window.end_ms - window.start_ms)
        reach = Window(window.start_ms - lookback, window.end_ms, window.step_ms) if lookback else window
        args = [self.value(a, reach) if self._is_series(a) else self._plain(a) for a in node.args]
        kwargs = {k: self.value(v, reach) if self._is_series(v) else self._plain(v) for k, v in node.kwargs}
        result = spec.bind(args, kwargs).run(self._context)
        if lookback and isinstance(result, SeriesFrame):
            result = trim_before(result, window.start_ms)
        return result

    @staticmethod
    def _is_series(node: FormulaAst | StringLit) -> bool:
        return not isinstance(node, Number | StringLit) and not (
            isinstance(node, Neg) and isinstance(node.operand, Number)
        )

    @staticmethod
    def _plain(node: FormulaAst | StringLit) -> float | int | str:
        if isinstance(node, StringLit):
            return node.value
        if isinstance(node, Neg) and isinstance(node.operand, Number):
            number = -float(node.operand.value)
        elif isinstance(node, Number):
            number = float(node.value)
        else:
            raise FormulaError("expected a number or a string")
        # Counts (top's limit, ewma spans) are written as integers: keep them integers.
        return int(number) if number.is_integer() else number
