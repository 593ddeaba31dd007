"""The formula parser's view of the function catalog. The catalog itself is
`sextant.series.functions.registry`, the one source of truth for names, arities, argument rules, defaults,
family presets and implementations; this module only says how the parser sees each parameter:

- `SERIES`: a formula expression (a query name, a metric query in legacy strings, arithmetic, another
  call). `pow` takes numbers too (`pow(2, 3)`, as the docs graph `pow(C, C)`); the other functions refuse
  an expression without any query in it, as the evaluator would.
- `NUMBER`: a numeric literal, optionally negative (`timeshift(q, -3600)`).
- `STRING`: a quoted literal (booleans such as `count_default_zero='true'` are written as strings).

The values of literal arguments are checked by the catalog's own rules (`Param.check`: whole numbers,
ranges, choices, time zones, shifts), so that a call the parser accepts is one the evaluator can bind,
and the parser reports the same rule, positioned in the text.
"""

from __future__ import annotations

from enum import Enum

from sextant.series.functions.arguments import Param
from sextant.series.functions.registry import FUNCTIONS, FunctionSpec, unknown_hint
from sextant.series.functions.rollups import ROLLUP_AGGREGATORS

__all__ = ["FUNCTIONS", "ROLLUP_AGGREGATORS", "ArgKind", "FunctionSpec", "Param", "arg_kind", "unknown_hint"]


class ArgKind(Enum):
    SERIES = "a query or an expression"
    NUMBER = "a number"
    STRING = "a quoted string"


def arg_kind(param: Param) -> ArgKind:
    if param.type in ("series", "series_or_number"):
        return ArgKind.SERIES
    if param.type in ("number", "integer"):
        return ArgKind.NUMBER
    return ArgKind.STRING
