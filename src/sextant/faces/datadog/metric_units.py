"""Units in Datadog's query answers: the unit objects (`series[].unit` of `/api/v2/query/timeseries`,
`meta.unit` of a scalar column, `series[].unit` of `/api/v1/query`), each a 2-element array
`[unit, per_unit | null]` or `null`, and which unit a formula's result has.

A metric's unit is the one its metadata sets (`PUT /api/v1/metrics/{name}`: `unit`, `per_unit`), else the
one the intake stored with its points (a Datadog name, or OTLP's UCUM code mapped onto the catalog of
`sextant.core.units`). Query modifiers then change it (`sextant.query.datadog_metrics.MetricPlan.unit`):
`.as_rate()` is per second, `.as_count()` of a rate drops its per-unit, and counts (`count:`,
`.rollup(count)`, `count(v: ...)`) have none. Functions change it as the catalog says
(`sextant.series.functions.registry`: `per_second` makes it per second, `log10` drops it ...).

Arithmetic (decisions; Datadog documents none):
- With a number: `a * 2`, `a / 100`, `a + 1` and `-a` keep `a`'s unit; `2 / a` has none.
- `a + b`, `a - b`: the unit when both have the same, else none.
- `a * b`: the unit of the side that has one when the other has none, else none (a product of units is
  not in the catalog).
- `a / b`: none for the same unit on both sides (a ratio); `a`'s unit when `b` has none; `a` per `b`
  (bytes / requests → byte per request) when both have a plain unit and they differ; else none.
"""

from __future__ import annotations

from collections.abc import Callable

from sextant.control.directory import Directory
from sextant.control.metric_metadata import get_metric_metadata
from sextant.core.units import UNITS, MetricUnit, Unit, parse_metric_unit, resolve_unit
from sextant.faces.datadog.metric_query_request import UnitField, UnitObject
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
from sextant.query.metric_functions import ArgKind, arg_kind

DATADOG_IDS: dict[str, int] = {unit.name: position for position, unit in enumerate(UNITS, start=1)}


def unit_object(unit: Unit) -> UnitObject:
    return UnitObject(
        unit.family, unit.name, unit.plural, unit.scale_factor, unit.short_name, DATADOG_IDS[unit.name]
    )


def unit_field(unit: MetricUnit | None) -> UnitField | None:
    """The `unit` of an answer: `[unit, per_unit or null]`, or null."""
    if unit is None:
        return None
    return [unit_object(unit.unit), None if unit.per is None else unit_object(unit.per)]


class MetricUnits:
    """The unit of each metric for one organization: its metadata's, else the stored one (cached for the
    request)."""

    def __init__(self, directory: Directory | None, org_id: int) -> None:
        self._directory = directory
        self._org_id = org_id
        self._set: dict[str, tuple[str | None, str | None]] = {}

    def __call__(self, metric: str, stored: str | None) -> MetricUnit | None:
        unit_text, per_text = self._metadata(metric)
        per = resolve_unit(per_text) if per_text else None
        if unit_text:
            unit = resolve_unit(unit_text)
            return None if unit is None else MetricUnit(unit, per)
        base = parse_metric_unit(stored)
        return base if base is None or per is None else MetricUnit(base.unit, per)

    def _metadata(self, metric: str) -> tuple[str | None, str | None]:
        if self._directory is None:
            return None, None
        found = self._set.get(metric)
        if found is None:
            with self._directory.engine.connect() as conn:
                stored = get_metric_metadata(conn, self._org_id, metric)
            found = self._set[metric] = (None, None) if stored is None else (stored.unit, stored.per_unit)
        return found


OperandUnit = Callable[[QueryRef | MetricOperand], MetricUnit | None]


def formula_unit(ast: FormulaAst, operand_unit: OperandUnit) -> MetricUnit | None:
    """The unit of a formula's result, from the units of its queries (a constant formula has none)."""
    found = _unit(ast, operand_unit)
    return found if isinstance(found, MetricUnit) else None


class _Constant:
    """A number in a formula: no unit of its own, and scaling by it keeps the other side's."""


_NUMBER = _Constant()
_Found = MetricUnit | None | _Constant


def _unit(ast: FormulaAst, operand_unit: OperandUnit) -> _Found:
    if isinstance(ast, Number):
        return _NUMBER
    if isinstance(ast, QueryRef | MetricOperand):
        return operand_unit(ast)
    if isinstance(ast, Neg):
        return _unit(ast.operand, operand_unit)
    if isinstance(ast, Call):
        spec = ast.spec
        query_unit: MetricUnit | None = None
        for param, arg in zip(spec.positional, ast.args, strict=False):
            if arg_kind(param) is ArgKind.SERIES and not isinstance(arg, Number | StringLit):
                found = _unit(arg, operand_unit)
                query_unit = found if isinstance(found, MetricUnit) else None
                break
        return spec.unit(query_unit, ast.arguments())
    assert isinstance(ast, BinOp)
    return _binary(ast.op, _unit(ast.left, operand_unit), _unit(ast.right, operand_unit))


def _binary(op: str, left: _Found, right: _Found) -> _Found:
    if left is _NUMBER and right is _NUMBER:
        return _NUMBER
    if right is _NUMBER:
        return left
    if left is _NUMBER:
        return None if op == "/" else right
    a = left if isinstance(left, MetricUnit) else None
    b = right if isinstance(right, MetricUnit) else None
    if op in "+-":
        return a if a == b else None
    if op == "*":
        if a is None or b is None:
            return a or b
        return None
    if a is None:
        return None
    if b is None:
        return a
    if a == b:
        return None
    if a.per is None and b.per is None:
        return MetricUnit(a.unit, b.unit)
    return None
