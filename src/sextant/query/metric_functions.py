"""The Datadog graphing function catalog as data: every function a formula or a legacy query string may call,
with the shape of its arguments. The formula parser checks calls against it and the series engine binds
arguments with it, so both read one source of truth.

Argument kinds:
- `SERIES`: any formula expression (a query name, a metric query in legacy strings, a number, arithmetic,
  another call); `pow(2, 3)` is allowed because the docs graph `pow(C, C)`.
- `NUMBER`: a numeric literal, optionally negative (`timeshift(q, -3600)`); `integer` ones must be whole.
- `STRING`: a quoted literal. With `choices` it must be one of them, compared case-insensitively and
  rewritten by the parser to the catalog's spelling (`'MAD'` and `'mad'` both become `'MAD'`); with
  `pattern` it must match that regular expression in full.

Families are expanded to one entry per name, each pointing at the function it stands for in `base`, with the
arguments its name fixes in `preset`: `top5_mean` is `top` with limit 5, by `mean`, dir `desc`; `bottom10_min`
is `top` with dir `asc`; `ewma_3` is `ewma` with span 3 (likewise `median_N`, `rollingavg_N`);
`hour_before`/`day_before`/`week_before`/`month_before` are `timeshift` by -3600/-86400/-604800/-2419200
seconds (a month is 28 days, as documented). Aliases have a `base` and no preset: `count_nonzero_finite` is
`count_nonzero`, and the historic `rate` and `derived` are `per_second` and `derivative`.

Decisions where the docs are silent or loose:
- `top()` limit, by and dir are optional (10, 'mean', 'desc', the UI's defaults); the limit is any positive
  integer, not only the documented 5/10/25/50/100, because real queries use `top(q, 1, ...)`.
- `calendar_shift()` takes an optional time zone, UTC by default.
- Named arguments are only those listed per function (`anomalies`, `forecast`); positional parameters
  cannot be given by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

ArgValue = float | str


class ArgKind(Enum):
    SERIES = "a query or an expression"
    NUMBER = "a number"
    STRING = "a quoted string"


@dataclass(frozen=True, slots=True)
class Param:
    """One argument: `default` stands in for an optional one left out; `integer`/`positive` constrain a
    number, `choices`/`pattern` a string (`example` shows a valid one in error messages)."""

    name: str
    kind: ArgKind
    required: bool = True
    default: ArgValue | None = None
    choices: tuple[str, ...] = ()
    integer: bool = False
    positive: bool = False
    pattern: str | None = None
    example: str = ""

    def canonical_choice(self, value: str) -> str | None:
        """The catalog's spelling of `value` among `choices`, or None when it is not one of them."""
        folded = value.casefold()
        return next((c for c in self.choices if c.casefold() == folded), None)

    def matches_pattern(self, value: str) -> bool:
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A callable name: positional `params` in order (required ones first), named-only `keywords`, and for
    family members and aliases the `base` function with the arguments the name fixes (`preset`)."""

    name: str
    params: tuple[Param, ...]
    doc: str
    keywords: tuple[Param, ...] = ()
    base: str | None = None
    preset: tuple[tuple[str, ArgValue], ...] = field(default=())

    @property
    def min_args(self) -> int:
        return sum(1 for p in self.params if p.required)

    @property
    def max_args(self) -> int:
        return len(self.params)

    @property
    def implementation(self) -> str:
        """The function the evaluator runs: `base` for family members and aliases, else the name."""
        return self.base or self.name

    def keyword(self, name: str) -> Param | None:
        return next((p for p in self.keywords if p.name == name), None)

    def signature(self) -> str:
        """`top(q, [limit], [by], [dir])`, `anomalies(q, algorithm, bounds, [direction=...], ...)`."""
        parts = [p.name if p.required else f"[{p.name}]" for p in self.params]
        parts += [f"[{p.name}=...]" for p in self.keywords]
        return f"{self.name}({', '.join(parts)})"

    def bind(self, positional: Sequence[T], keywords: Mapping[str, T]) -> dict[str, T | ArgValue]:
        """Arguments by parameter name: the ones given, then the defaults of the optional ones that were
        not, then what the name itself fixes (`preset`). The parser has already checked the call."""
        bound: dict[str, T | ArgValue] = {}
        for i, param in enumerate(self.params):
            if i < len(positional):
                bound[param.name] = positional[i]
            elif param.default is not None:
                bound[param.name] = param.default
        for param in self.keywords:
            if param.name in keywords:
                bound[param.name] = keywords[param.name]
            elif param.default is not None:
                bound[param.name] = param.default
        bound.update(self.preset)
        return bound


def _series(name: str = "q") -> Param:
    return Param(name, ArgKind.SERIES)


def _number(
    name: str,
    *,
    required: bool = True,
    default: float | None = None,
    integer: bool = False,
    positive: bool = False,
) -> Param:
    return Param(name, ArgKind.NUMBER, required, default, integer=integer, positive=positive)


def _string(
    name: str,
    *,
    required: bool = True,
    default: str | None = None,
    choices: tuple[str, ...] = (),
    pattern: str | None = None,
    example: str = "",
) -> Param:
    return Param(name, ArgKind.STRING, required, default, choices=choices, pattern=pattern, example=example)


RANK_BY = ("max", "mean", "min", "sum", "last", "l2norm", "area")
RANK_DIR = ("asc", "desc")
ROLLUP_AGGREGATORS = ("avg", "sum", "min", "max", "count")
EWMA_SPANS = (3, 5, 7, 10, 20)
MEDIAN_SPANS = (3, 5, 7, 9)
ROLLINGAVG_SPANS = (5, 13, 21, 29)
TOP_SIZES = (5, 10, 15, 20)
TOP_SHORTHAND_BY = ("mean", "min", "max", "last", "area", "l2norm")
CALENDAR_SHIFT_PATTERN = r"-[0-9]+(?:d|w|mo)"
ALERT_WINDOW_PATTERN = r"last_[0-9]+(?:m|h|d|w)"
SHIFT_SECONDS = {"hour_before": 3600, "day_before": 86400, "week_before": 604800, "month_before": 2419200}

_SEASONALITY = ("hourly", "daily", "weekly")

_single: dict[str, str] = {
    "abs": "absolute value of each point",
    "log2": "base-2 logarithm of each point",
    "log10": "base-10 logarithm of each point",
    "cumsum": "cumulative sum over the visible window",
    "integral": "running sum of value times seconds since the previous point",
    "default_zero": "fill empty intervals with 0 (or interpolation where enabled)",
    "per_second": "rate of change per second",
    "per_minute": "rate of change per minute",
    "per_hour": "rate of change per hour",
    "dt": "seconds between submitted points (one series for all groups)",
    "diff": "difference between consecutive intervals",
    "monotonic_diff": "difference between consecutive intervals, positive deltas only",
    "derivative": "diff divided by dt",
    "throughput": "value divided by the seconds of its bucket",
    "autosmooth": "moving average with an automatically chosen span",
    "robust_trend": "robust (Huber) regression line",
    "trend_line": "least-squares regression line",
    "piecewise_constant": "piecewise constant approximation",
    "count_nonzero": "number of groups with a non-zero value at each point",
    "count_not_null": "number of groups with a non-null value at each point",
    "exclude_null": "drop groups with an N/A group tag value",
}

_entries: list[FunctionSpec] = [FunctionSpec(name, (_series(),), doc) for name, doc in _single.items()]
_entries += [
    FunctionSpec("count_nonzero_finite", (_series(),), _single["count_nonzero"], base="count_nonzero"),
    FunctionSpec("rate", (_series(),), "historic synonym of per_second", base="per_second"),
    FunctionSpec("derived", (_series(),), "historic synonym of derivative", base="derivative"),
    FunctionSpec("pow", (_series("base"), _series("exponent")), "base raised to exponent, pointwise"),
    FunctionSpec("clamp_min", (_series(), _number("threshold")), "values under threshold set to it"),
    FunctionSpec("clamp_max", (_series(), _number("threshold")), "values over threshold set to it"),
    FunctionSpec("cutoff_min", (_series(), _number("threshold")), "values under threshold removed"),
    FunctionSpec("cutoff_max", (_series(), _number("threshold")), "values over threshold removed"),
    FunctionSpec("timeshift", (_series(), _number("seconds", integer=True)), "values from N seconds away"),
    FunctionSpec(
        "calendar_shift",
        (
            _series(),
            _string("shift", pattern=CALENDAR_SHIFT_PATTERN, example="'-1d', '-2w' or '-1mo'"),
            _string("timezone", required=False, default="UTC"),
        ),
        "values from a calendar period before ('-1d', '-2w', '-1mo') in a time zone",
    ),
    FunctionSpec(
        "moving_rollup",
        (
            _series(),
            _number("seconds", integer=True, positive=True),
            _string("aggregator", choices=ROLLUP_AGGREGATORS),
        ),
        "aggregate of the points of the last N seconds",
    ),
    FunctionSpec(
        "top",
        (
            _series(),
            _number("limit", required=False, default=10, integer=True, positive=True),
            _string("by", required=False, default="mean", choices=RANK_BY),
            _string("dir", required=False, default="desc", choices=RANK_DIR),
        ),
        "the first groups ranked by a reduction of each series",
    ),
    FunctionSpec(
        "top_offset",
        (
            _series(),
            _number("limit", integer=True, positive=True),
            _string("by", choices=RANK_BY),
            _string("dir", choices=RANK_DIR),
            _number("offset", integer=True),
        ),
        "like top, after skipping the first offset groups",
    ),
    FunctionSpec(
        "anomalies",
        (
            _series(),
            _string("algorithm", choices=("basic", "agile", "robust")),
            _number("bounds", positive=True),
        ),
        "the series with the band of expected values",
        keywords=(
            _string("direction", required=False, choices=("both", "above", "below")),
            _string("alert_window", required=False, pattern=ALERT_WINDOW_PATTERN, example="'last_15m'"),
            _number("interval", required=False, integer=True, positive=True),
            _string("count_default_zero", required=False, choices=("true", "false")),
            _string("seasonality", required=False, choices=_SEASONALITY),
            _string("timezone", required=False),
        ),
    ),
    FunctionSpec(
        "outliers",
        (
            _series(),
            _string("algorithm", choices=("DBSCAN", "scaledDBSCAN", "MAD", "scaledMAD")),
            _number("tolerance", positive=True),
            _number("percentage", required=False, positive=True),
        ),
        "groups that behave differently from the others",
    ),
    FunctionSpec(
        "forecast",
        (
            _series(),
            _string("algorithm", choices=("linear", "seasonal")),
            _number("deviations", positive=True),
        ),
        "the series extended into the future with a band of deviations",
        keywords=(
            _string("interval", required=False),
            _string("history", required=False),
            _string("model", required=False),
            _string("seasonality", required=False, choices=_SEASONALITY),
            _string("timezone", required=False),
        ),
    ),
]
_entries += [
    FunctionSpec(
        name,
        (_series(),),
        f"timeshift by -{seconds} seconds",
        base="timeshift",
        preset=(("seconds", -seconds),),
    )
    for name, seconds in SHIFT_SECONDS.items()
]
for _family, _spans, _doc in (
    ("ewma", EWMA_SPANS, "exponentially weighted moving average, span {n}"),
    ("median", MEDIAN_SPANS, "rolling median of the last {n} points"),
    ("rollingavg", ROLLINGAVG_SPANS, "rolling average of the last {n} points"),
):
    _entries += [
        FunctionSpec(f"{_family}_{n}", (_series(),), _doc.format(n=n), base=_family, preset=(("span", n),))
        for n in _spans
    ]
for _side, _dir in (("top", "desc"), ("bottom", "asc")):
    _entries += [
        FunctionSpec(
            f"{_side}{n}_{by}",
            (_series(),),
            f"{'first' if _side == 'top' else 'last'} {n} groups by {by}",
            base="top",
            preset=(("limit", n), ("by", by), ("dir", _dir)),
        )
        for n in TOP_SIZES
        for by in TOP_SHORTHAND_BY
    ]

FUNCTIONS: Mapping[str, FunctionSpec] = {spec.name: spec for spec in _entries}
"""Every callable name, family members and aliases included."""


def lookup_function(name: str) -> FunctionSpec | None:
    return FUNCTIONS.get(name)
