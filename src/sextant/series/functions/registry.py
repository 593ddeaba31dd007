"""The function catalog: every Datadog function name, its arguments, its implementation and what it does to
the unit of its query, in one table. It is the single source of truth: the formula parser checks calls
against it (`sextant.query.metric_functions` is its view of the catalog), the evaluator binds and runs
them with it, and the Datadog face derives answer units from it.

An evaluator looks a name up (`lookup`), binds the call's arguments (`FunctionSpec.bind`: positional
values in order, named ones by name; a mistake raises `FunctionArgumentError` saying which argument of
which function, what was given and what is allowed), and then, for most functions, runs it
(`BoundCall.run`) on the query results. Two kinds of entries:

- `series`: computes on frames and returns a frame (or a number: `pow` of two numbers).
- `shift`: the timeshift family. They do not compute: `BoundCall.shifted_window(start, end)` says which
  window to query instead and by how much to move its points back (`timeshift.realign`).

While planning, before any query has run, a call can be bound with `DEFERRED` in place of its query
arguments, to learn `shifted_window` or `lookback_ms` — the history a function wants before the window
(anomalies, moving_rollup, forecast), which the evaluator queries too and trims afterwards with
`frames.trim_before`.

Family members are entries of their own, with the function they stand for in `base` and the arguments
their name fixes in `preset` (bound like any other argument): `ewma_3` … `ewma_20` (span), `median_3` …
`median_9`, `rollingavg_5` … `rollingavg_29`, `top5_mean` … `bottom20_sum` (`top` with limit, by and dir),
`hour_before` … `month_before` (`timeshift` by -3600 … -2419200 seconds, a month being 28 days). Aliases
have a `base` and no preset: `count_nonzero_finite`, and the historic `rate` and `derived` (`per_second`
and `derivative`).

Decisions where the docs are loose: `top()`'s limit is any whole number from 1 (Datadog's UI offers 5,
10, 25, 50, 100, and real queries use `top(q, 1, ...)`); `calendar_shift()`'s time zone is optional (UTC);
positional parameters cannot be given by name.

Units (`unit`): a function keeps its query's unit unless its entry says otherwise — rates (`per_second`,
`derivative`, `throughput`, `per_minute`, `per_hour`) make it per second / minute / hour, `integral` turns
a per-second rate back into its amount, `dt` is in seconds, and the counts (`count_nonzero`,
`count_not_null`, `moving_rollup(..., 'count')`), `log2`, `log10` and `pow` have none.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sextant.core.units import HOUR, MINUTE, SECOND, MetricUnit, Unit
from sextant.series.frame import SeriesFrame
from sextant.series.functions import (
    anomalies,
    arithmetic,
    counts,
    exclusion,
    forecast,
    interpolation,
    outliers,
    rank,
    rates,
    regression,
    rollups,
    seasonality,
    smoothing,
    timeshift,
)
from sextant.series.functions.arguments import DeferredSeries, Param, ordinal
from sextant.series.functions.errors import FunctionArgumentError, UnknownFunctionError, describe
from sextant.series.functions.reducers import REDUCERS, Reducer
from sextant.series.functions.timeshift import ShiftedWindow

Arguments = Mapping[str, Any]


@dataclass(frozen=True)
class FunctionContext:
    """What a function needs from the evaluator besides its arguments."""

    # How far past the window's end `forecast` looks (None: a quarter of the frame).
    forecast_horizon_ms: int | None = None
    # Whether the query interpolates (gauges do, unless `.fill(null)`, `.as_count()` or `.as_rate()`);
    # None lets `default_zero` decide from the frame's kind.
    interpolate: bool | None = None


Runner = Callable[[Arguments, FunctionContext], "SeriesFrame | float"]
Shifter = Callable[[Arguments, int, int], ShiftedWindow]
# (arguments, step_ms, window_ms) → milliseconds of history wanted before the window.
Lookback = Callable[[Arguments, int, int], int]
# (unit of the function's first query argument, bound arguments) → unit of its result.
UnitRule = Callable[[MetricUnit | None, Arguments], MetricUnit | None]


def keep_unit(unit: MetricUnit | None, _arguments: Arguments) -> MetricUnit | None:
    return unit


def no_unit(_unit: MetricUnit | None, _arguments: Arguments) -> MetricUnit | None:
    return None


def _per(time: Unit) -> UnitRule:
    return lambda unit, _a: None if unit is None else unit.per_time(time)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    summary: str
    positional: tuple[Param, ...]
    named: tuple[Param, ...] = ()
    run: Runner | None = None
    shift: Shifter | None = None
    lookback: Lookback | None = None
    # Family members and aliases: the function they stand for, and the arguments their name fixes.
    base: str | None = None
    preset: tuple[tuple[str, Any], ...] = ()
    unit: UnitRule = keep_unit

    @property
    def kind(self) -> Literal["series", "shift"]:
        return "shift" if self.shift is not None else "series"

    @property
    def implementation(self) -> str:
        """The function this name runs: `base` for family members and aliases, else the name itself."""
        return self.base or self.name

    @property
    def min_args(self) -> int:
        return sum(1 for p in self.positional if p.required)

    @property
    def max_args(self) -> int:
        return len(self.positional)

    def named_param(self, name: str) -> Param | None:
        return next((p for p in self.named if p.name == name), None)

    def signature(self) -> str:
        def show(param: Param) -> str:
            if param.required:
                return param.name
            return f"{param.name}=…" if param.default is None else f"{param.name}={describe(param.default)}"

        return f"{self.name}({', '.join(show(p) for p in (*self.positional, *self.named))})"

    def bind(self, args: Sequence[Any], named: Mapping[str, Any] | None = None) -> BoundCall:
        named = named or {}
        if len(args) > len(self.positional):
            most = len(self.positional)
            raise FunctionArgumentError(
                self.name,
                f"takes {'at most ' if any(not p.required for p in self.positional) else ''}{most} "
                f"argument{'s' if most != 1 else ''} and got {len(args)}: {self.signature()}",
                given=len(args),
                allowed=self.signature(),
            )
        bound: dict[str, Any] = {}
        for position, param in enumerate(self.positional, start=1):
            where = f"the {ordinal(position)} argument ({param.name})"
            if position <= len(args):
                bound[param.name] = param.check(self.name, where, args[position - 1])
            elif param.required:
                raise FunctionArgumentError(
                    self.name,
                    f"{where} is missing: {self.signature()}",
                    argument=param.name,
                    allowed=param.allowed(),
                )
            else:
                bound[param.name] = param.default
        for key, value in named.items():
            found = self.named_param(key)
            if found is None:
                known = ", ".join(p.name for p in self.named) if self.named else None
                raise FunctionArgumentError(
                    self.name,
                    f"has no named argument '{key}'"
                    + (f"; its named arguments are {known}" if known else "; it takes no named arguments"),
                    argument=key,
                    given=value,
                    allowed=known,
                )
            bound[key] = found.check(self.name, f"the named argument {key}", value)
        for param in self.named:
            bound.setdefault(param.name, param.default)
        bound.update(self.preset)
        return BoundCall(self, bound)


@dataclass(frozen=True)
class BoundCall:
    spec: FunctionSpec
    arguments: Arguments

    def run(self, context: FunctionContext | None = None) -> SeriesFrame | float:
        if self.spec.run is None:
            raise ValueError(f"{self.spec.name}() shifts the query's window: use shifted_window()")
        deferred = [k for k, v in self.arguments.items() if isinstance(v, DeferredSeries)]
        if deferred:
            raise ValueError(
                f"{self.spec.name}(): bind query results for {', '.join(deferred)} before running"
            )
        return self.spec.run(self.arguments, context or FunctionContext())

    def lookback_ms(self, step_ms: int, window_ms: int) -> int:
        return 0 if self.spec.lookback is None else self.spec.lookback(self.arguments, step_ms, window_ms)

    def shifted_window(self, start_ms: int, end_ms: int) -> ShiftedWindow:
        if self.spec.shift is None:
            raise ValueError(f"{self.spec.name}() does not shift the query's window")
        return self.spec.shift(self.arguments, start_ms, end_ms)

    def unit(self, query_unit: MetricUnit | None) -> MetricUnit | None:
        """The unit of the result, given the unit of the function's query argument."""
        return self.spec.unit(query_unit, self.arguments)


# Parameters used by many entries.
QUERY = Param("query", "series", description="the query (or expression) the function applies to")
THRESHOLD = Param("threshold", "number")


def _unary(
    name: str,
    summary: str,
    compute: Callable[[SeriesFrame], SeriesFrame],
    unit: UnitRule = keep_unit,
) -> FunctionSpec:
    return FunctionSpec(name, summary, (QUERY,), run=lambda a, _c: compute(a["query"]), unit=unit)


def _threshold(name: str, summary: str, compute: Callable[[SeriesFrame, float], SeriesFrame]) -> FunctionSpec:
    return FunctionSpec(
        name, summary, (QUERY, THRESHOLD), run=lambda a, _c: compute(a["query"], a["threshold"])
    )


def _member(base: FunctionSpec, name: str, summary: str, **preset: Any) -> FunctionSpec:
    """A name that stands for `base` called on its query with the arguments `preset`."""
    return dataclasses.replace(
        base,
        name=name,
        summary=summary,
        positional=(QUERY,),
        named=(),
        base=base.name,
        preset=tuple(preset.items()),
    )


def _alias(base: FunctionSpec, name: str, summary: str) -> FunctionSpec:
    return dataclasses.replace(base, name=name, summary=summary, base=base.name)


def _parse_alert_window(text: str) -> str:
    if re.fullmatch(r"last_\d+(m|h|d|w)", text) is None:
        raise ValueError(text)
    return text


def _moving_rollup_unit(unit: MetricUnit | None, arguments: Arguments) -> MetricUnit | None:
    return None if arguments.get("aggregator") == "count" else unit


def _integral_unit(unit: MetricUnit | None, _arguments: Arguments) -> MetricUnit | None:
    return None if unit is None else unit.times_seconds()


SEASONALITY = Param("seasonality", "string", "weekly", choices=seasonality.SEASONALITIES)
TIMEZONE = Param(
    "timezone",
    "string",
    "UTC",
    parse=seasonality.parse_timezone,
    allowed_text="an IANA time zone name or 'UTC'",
)
INTERVAL = Param(
    "interval", "integer", None, minimum=1, description="rollup interval in seconds (query level)"
)
RANK_LIMIT = Param("limit", "integer", 10, minimum=1, description="how many series to keep")


def _entries() -> list[FunctionSpec]:
    timeshift_spec = FunctionSpec(
        "timeshift",
        "the query `seconds` earlier (negative) or later (positive)",
        (QUERY, Param("seconds", "integer")),
        shift=lambda a, start, end: timeshift.shift_by_seconds(a["seconds"], start, end),
    )
    top_spec = FunctionSpec(
        "top",
        "the first `limit` series ranked by `by`",
        (
            QUERY,
            RANK_LIMIT,
            Param("by", "string", "mean", choices=REDUCERS),
            Param("dir", "string", "desc", choices=rank.DIRECTIONS),
        ),
        run=lambda a, _c: rank.top(a["query"], a["limit"], a["by"], a["dir"]),
    )
    per_second = _unary(
        "per_second", "rate of increase per second (null at counter resets)", rates.per_second, _per(SECOND)
    )
    derivative = _unary(
        "derivative", "change per second since the previous point", rates.derivative, _per(SECOND)
    )
    count_nonzero = _unary(
        "count_nonzero", "number of groups with a non-zero value, one series", counts.count_nonzero, no_unit
    )
    entries = [
        _unary("abs", "absolute value of each point", arithmetic.absolute),
        _unary("log2", "base-2 logarithm of each point (null where not positive)", arithmetic.log2, no_unit),
        _unary(
            "log10", "base-10 logarithm of each point (null where not positive)", arithmetic.log10, no_unit
        ),
        _unary("cumsum", "running total over the window", arithmetic.cumsum),
        _unary(
            "integral",
            "running total of value * seconds since the previous point",
            arithmetic.integral,
            _integral_unit,
        ),
        FunctionSpec(
            "pow",
            "x to the power y, each a query or a number",
            (Param("base", "series_or_number"), Param("exponent", "series_or_number")),
            run=lambda a, _c: arithmetic.power(a["base"], a["exponent"]),
            unit=no_unit,
        ),
        FunctionSpec(
            "fill",
            "fill empty buckets up to `limit` seconds after a value",
            (
                QUERY,
                Param("method", "string", choices=interpolation.FILL_METHODS),
                Param(
                    "limit",
                    "integer",
                    interpolation.DEFAULT_LIMIT_S,
                    minimum=1,
                    maximum=interpolation.MAX_LIMIT_S,
                    description="seconds",
                ),
            ),
            run=lambda a, _c: interpolation.fill(a["query"], a["method"], a["limit"]),
        ),
        FunctionSpec(
            "default_zero",
            "empty buckets as 0 (after gauge interpolation)",
            (QUERY,),
            run=lambda a, c: interpolation.default_zero(a["query"], interpolate=c.interpolate),
        ),
        timeshift_spec,
        _member(timeshift_spec, "hour_before", "the query one hour earlier", seconds=-timeshift.HOUR_S),
        _member(timeshift_spec, "day_before", "the query one day earlier", seconds=-timeshift.DAY_S),
        _member(timeshift_spec, "week_before", "the query one week earlier", seconds=-timeshift.WEEK_S),
        _member(
            timeshift_spec, "month_before", "the query 28 days earlier", seconds=-timeshift.MONTH_BEFORE_S
        ),
        FunctionSpec(
            "calendar_shift",
            "the query calendar days, weeks or months earlier in a time zone",
            (
                QUERY,
                Param(
                    "shift",
                    "string",
                    parse=timeshift.parse_calendar_shift,
                    allowed_text="a negative number of days, weeks or months such as '-1d', '-2w' or '-1mo'",
                ),
                TIMEZONE,
            ),
            shift=lambda a, start, end: timeshift.calendar_shift_window(
                a["shift"], a["timezone"], start, end
            ),
        ),
        per_second,
        _alias(per_second, "rate", "historic synonym of per_second"),
        _unary(
            "per_minute",
            "rate of increase per minute (null at counter resets)",
            rates.per_minute,
            _per(MINUTE),
        ),
        _unary("per_hour", "rate of increase per hour (null at counter resets)", rates.per_hour, _per(HOUR)),
        _unary(
            "dt",
            "seconds between points, one series for all groups",
            rates.dt,
            lambda _u, _a: MetricUnit(SECOND),
        ),
        _unary("diff", "change since the previous point", rates.diff),
        _unary("monotonic_diff", "change since the previous point where not negative", rates.monotonic_diff),
        derivative,
        _alias(derivative, "derived", "historic synonym of derivative"),
        _unary("throughput", "each value divided by the bucket's seconds", rates.throughput, _per(SECOND)),
        _unary("autosmooth", "moving average with an automatically chosen span (ASAP)", smoothing.autosmooth),
        FunctionSpec(
            "moving_rollup",
            "each bucket aggregated with the `seconds` before it",
            (
                QUERY,
                Param("seconds", "integer", minimum=1),
                Param("aggregator", "string", "avg", choices=rollups.ROLLUP_AGGREGATORS),
            ),
            run=lambda a, _c: rollups.moving_rollup(a["query"], a["seconds"], a["aggregator"]),
            lookback=lambda a, _s, _w: int(a["seconds"]) * 1000,
            unit=_moving_rollup_unit,
        ),
        top_spec,
        FunctionSpec(
            "bottom",
            "the last `limit` series ranked by `by` (ascending ranking)",
            (QUERY, RANK_LIMIT, Param("by", "string", "mean", choices=REDUCERS)),
            run=lambda a, _c: rank.bottom(a["query"], a["limit"], a["by"]),
        ),
        FunctionSpec(
            "top_offset",
            "`limit` series ranked by `by`, after the first `offset`",
            (
                QUERY,
                RANK_LIMIT,
                Param("by", "string", "mean", choices=REDUCERS),
                Param("dir", "string", "desc", choices=rank.DIRECTIONS),
                Param("offset", "integer", 0, minimum=0),
            ),
            run=lambda a, _c: rank.top(a["query"], a["limit"], a["by"], a["dir"], a["offset"]),
        ),
        _unary("trend_line", "least-squares line", regression.trend_line),
        _unary("robust_trend", "Huber-loss regression line", regression.robust_trend),
        _unary(
            "piecewise_constant", "constant segments between change points", regression.piecewise_constant
        ),
        count_nonzero,
        _alias(count_nonzero, "count_nonzero_finite", "number of groups with a non-zero value, one series"),
        _unary("count_not_null", "number of groups with a value, one series", counts.count_not_null, no_unit),
        _unary("exclude_null", "groups with every group-by tag present", exclusion.exclude_null),
        _threshold("clamp_min", "values below the threshold raised to it", exclusion.clamp_min),
        _threshold("clamp_max", "values above the threshold lowered to it", exclusion.clamp_max),
        _threshold("cutoff_min", "values below the threshold removed", exclusion.cutoff_min),
        _threshold("cutoff_max", "values above the threshold removed", exclusion.cutoff_max),
        FunctionSpec(
            "anomalies",
            "the series with the band of values expected from its past",
            (
                QUERY,
                Param("algorithm", "string", choices=anomalies.ALGORITHMS),
                Param("bounds", "number", 2.0, minimum=0, exclusive_minimum=True),
            ),
            named=(
                Param("direction", "string", "both", choices=anomalies.DIRECTIONS),
                Param(
                    "alert_window",
                    "string",
                    None,
                    parse=_parse_alert_window,
                    allowed_text="a window such as 'last_15m', 'last_1h' or 'last_1d'",
                ),
                INTERVAL,
                Param("count_default_zero", "boolean", False),
                SEASONALITY,
                TIMEZONE,
            ),
            run=lambda a, _c: anomalies.anomalies(
                a["query"],
                a["algorithm"],
                a["bounds"],
                seasonality=a["seasonality"],
                count_default_zero=a["count_default_zero"],
            ),
            lookback=lambda a, step, _w: anomalies.anomalies_lookback_ms(
                a["algorithm"], a["seasonality"], step
            ),
        ),
        FunctionSpec(
            "outliers",
            "the series that behave differently from the other groups",
            (
                QUERY,
                Param("algorithm", "string", choices=outliers.ALGORITHMS),
                Param("tolerance", "number", 3.0, minimum=0, exclusive_minimum=True),
                Param("pct", "number", 20.0, minimum=0, maximum=100),
            ),
            run=lambda a, _c: outliers.outliers(a["query"], a["algorithm"], a["tolerance"], a["pct"]),
        ),
        FunctionSpec(
            "forecast",
            "the series followed by its forecast and band",
            (
                QUERY,
                Param("algorithm", "string", choices=forecast.ALGORITHMS),
                Param("deviations", "number", 1.0, minimum=0, exclusive_minimum=True),
            ),
            named=(
                Param("model", "string", "default", choices=forecast.LINEAR_MODELS),
                SEASONALITY,
                Param(
                    "history",
                    "string",
                    None,
                    parse=forecast.parse_duration_ms,
                    allowed_text="a duration such as '12h', '3d', '2w' or '1mo'",
                ),
                INTERVAL,
                TIMEZONE,
            ),
            run=lambda a, c: forecast.forecast(
                a["query"],
                a["algorithm"],
                a["deviations"],
                horizon_ms=c.forecast_horizon_ms,
                model=a["model"],
                seasonality=a["seasonality"],
            ),
            lookback=lambda a, _s, window: forecast.forecast_lookback_ms(
                a["algorithm"], a["seasonality"], a["history"], window
            ),
        ),
    ]
    spans: tuple[tuple[str, tuple[int, ...], Callable[[SeriesFrame, int], SeriesFrame], str], ...] = (
        ("ewma", smoothing.EWMA_SPANS, smoothing.ewma, "exponentially weighted average, span {n}"),
        ("median", smoothing.MEDIAN_SPANS, smoothing.rolling_median, "rolling median of {n} points"),
        (
            "rollingavg",
            smoothing.ROLLINGAVG_SPANS,
            smoothing.rolling_average,
            "rolling average of {n} points",
        ),
    )
    for family, sizes, compute, summary in spans:
        for span in sizes:
            entries.append(_span_entry(family, span, summary.format(n=span), compute))
    sides: tuple[tuple[str, rank.Direction], ...] = (("top", "desc"), ("bottom", "asc"))
    for side, direction in sides:
        for limit in rank.SHORTHAND_LIMITS:
            for by in rank.SHORTHAND_REDUCERS:
                entries.append(_rank_entry(top_spec, side, limit, by, direction))
    return entries


def _span_entry(
    family: str, span: int, summary: str, compute: Callable[[SeriesFrame, int], SeriesFrame]
) -> FunctionSpec:
    return FunctionSpec(
        f"{family}_{span}",
        summary,
        (QUERY,),
        run=lambda a, _c: compute(a["query"], a["span"]),
        base=family,
        preset=(("span", span),),
    )


def _rank_entry(
    top_spec: FunctionSpec, side: str, limit: int, by: Reducer, direction: rank.Direction
) -> FunctionSpec:
    summary = f"the {'first' if direction == 'desc' else 'last'} {limit} series by {by}"
    return _member(top_spec, f"{side}{limit}_{by}", summary, limit=limit, by=by, dir=direction)


FUNCTIONS: Mapping[str, FunctionSpec] = {spec.name: spec for spec in _entries()}


def lookup(name: str) -> FunctionSpec:
    spec = FUNCTIONS.get(name)
    if spec is not None:
        return spec
    hint = unknown_hint(name)
    raise UnknownFunctionError(name, f"; {hint}" if hint else "", given=name)


def unknown_hint(name: str) -> str:
    """What to say about a name that is not in the catalog: its family's members, or close names."""
    close = difflib.get_close_matches(name, FUNCTIONS, n=3, cutoff=0.6)
    family = name.rsplit("_", 1)[0] if "_" in name else ""
    relatives = sorted((n for n in FUNCTIONS if family and n.startswith(family + "_")), key=_natural)
    if relatives:
        return f"the {family} functions are {', '.join(relatives)}"
    if close:
        return f"did you mean {' or '.join(close)}?"
    return ""


def _natural(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


def call(
    name: str,
    args: Sequence[Any],
    named: Mapping[str, Any] | None = None,
    context: FunctionContext | None = None,
) -> SeriesFrame | float:
    """Look up, bind and run in one step (for `series` functions)."""
    return lookup(name).bind(args, named).run(context)


def shifted_window(
    name: str, args: Sequence[Any], start_ms: int, end_ms: int, named: Mapping[str, Any] | None = None
) -> ShiftedWindow:
    """For a `shift` function (timeshift, hour_before … calendar_shift): the window to query instead of
    [start_ms, end_ms), and the offset that `timeshift.realign` adds to its timestamps."""
    return lookup(name).bind(args, named).shifted_window(start_ms, end_ms)
