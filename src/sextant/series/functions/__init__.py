"""Datadog's function catalog over `SeriesFrame`s: one module per family, one table (`registry`) from
every function name to its argument spec and implementation."""

from sextant.series.functions.arguments import DEFERRED, DeferredSeries, Param
from sextant.series.functions.errors import (
    FunctionArgumentError,
    InsufficientHistoryError,
    UnknownFunctionError,
)
from sextant.series.functions.frames import trim_before
from sextant.series.functions.registry import (
    FUNCTIONS,
    BoundCall,
    FunctionContext,
    FunctionSpec,
    call,
    lookup,
    shifted_window,
)
from sextant.series.functions.timeshift import ShiftedWindow, realign

__all__ = [
    "DEFERRED",
    "FUNCTIONS",
    "BoundCall",
    "DeferredSeries",
    "FunctionArgumentError",
    "FunctionContext",
    "FunctionSpec",
    "InsufficientHistoryError",
    "Param",
    "ShiftedWindow",
    "UnknownFunctionError",
    "call",
    "lookup",
    "realign",
    "shifted_window",
    "trim_before",
]
