"""The formula, legacy query and monitor query parsers: exact trees for the reference's and the seeds'
formulas and for every line of the ddqp test vectors, the function catalog (every entry callable, arities,
kinds, presets), errors with positions and messages, round trips through the renderers, and properties
over arbitrary and generated input."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.query.formula_syntax import (
    MAX_FORMULA_LENGTH,
    MAX_NESTING_DEPTH,
    Argument,
    BinOp,
    Call,
    FormulaAst,
    FormulaSyntaxError,
    LegacyQuerySyntaxError,
    MetricOperand,
    MonitorQueryAst,
    Neg,
    Number,
    QueryRef,
    StringLit,
    parse_formula,
    parse_legacy_query,
    parse_monitor_query,
    render_formula,
    render_legacy_query,
    render_monitor_query,
    window_seconds,
)
from sextant.query.metric_functions import FUNCTIONS, ArgKind, FunctionSpec, arg_kind
from sextant.query.metric_syntax import (
    Fill,
    MetricQueryAst,
    MetricQuerySyntaxError,
    QuerySyntaxError,
    Rollup,
    ScopeAll,
    TagIn,
    ValueFilter,
)
from tests.query.test_metric_syntax import AND, METRIC_VECTORS, NOT, metric_queries, t, vector_lines

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "seeds"

a, b, c = QueryRef("a"), QueryRef("b"), QueryRef("c")
q1, q2 = QueryRef("query1"), QueryRef("query2")


def N(value: float) -> Number:
    return Number(value)


def S(value: str) -> StringLit:
    return StringLit(value)


def call(name: str, *args: Argument, **kwargs: Argument) -> Call:
    return Call(name, args, tuple(kwargs.items()))


def op(symbol: str, left: FormulaAst, right: FormulaAst) -> BinOp:
    return BinOp(symbol, left, right)  # type: ignore[arg-type]


def M(metric: str, scope: object = ScopeAll(), agg: str | None = None, **kw: object) -> MetricOperand:
    return MetricOperand(MetricQueryAst(metric, scope, agg, **kw))  # type: ignore[arg-type]


def formula_error(text: str, names: list[str] | None = None) -> FormulaSyntaxError:
    with pytest.raises(FormulaSyntaxError) as info:
        parse_formula(text, names)
    return info.value


def legacy_error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as info:
        parse_legacy_query(text)
    return info.value


# --- v2 formulas: the reference's and the seeds' ------------------------------------------------------------

FORMULAS: list[tuple[str, FormulaAst]] = [
    ("query1", q1),
    ("query1 - query2", op("-", q1, q2)),
    ("query2/query1", op("/", q2, q1)),
    ("a+b", op("+", a, b)),
    ("a * 100", op("*", a, N(100))),
    ("query1 * 100 / query2", op("/", op("*", q1, N(100)), q2)),
    ("(1000 * 1000 * 10)", op("*", op("*", N(1000), N(1000)), N(10))),
    ("hour_before(query1)", call("hour_before", q1)),
    ("count_nonzero(query1)", call("count_nonzero", q1)),
    ("anomalies(query1, 'basic', 2)", call("anomalies", q1, S("basic"), N(2))),
    (
        "anomalies(query1, 'basic', 2, direction='above')",
        call("anomalies", q1, S("basic"), N(2), direction=S("above")),
    ),
    ("top(query1, 5, 'mean', 'asc')", call("top", q1, N(5), S("mean"), S("asc"))),
    ("timeshift(query1, 40)", call("timeshift", q1, N(40))),
    ("timeshift(query1, -1209600)", call("timeshift", q1, N(-1209600))),
    ("forecast(query1, 'linear', 1)", call("forecast", q1, S("linear"), N(1))),
    ("cumsum(query1)", call("cumsum", q1)),
    ("per_second(query1)", call("per_second", q1)),
    (
        'calendar_shift(query1, "-1d", "America/New_York")',
        call("calendar_shift", q1, S("-1d"), S("America/New_York")),
    ),
    ("calendar_shift(query1, '-1mo')", call("calendar_shift", q1, S("-1mo"))),
    ("top_offset(a, 5, 'max', 'desc', 5)", call("top_offset", a, N(5), S("max"), S("desc"), N(5))),
    ("pow(a, 2)", call("pow", a, N(2))),
    ("pow(2, 3)", call("pow", N(2), N(3))),
    ("outliers(a, 'MAD', 3, 20)", call("outliers", a, S("MAD"), N(3), N(20))),
    ("outliers(a, 'dbscan', 0.33)", call("outliers", a, S("DBSCAN"), N(0.33))),
    ("top5_mean(a)", call("top5_mean", a)),
    ("bottom10_min(a)", call("bottom10_min", a)),
    ("ewma_10(a) + median_3(b)", op("+", call("ewma_10", a), call("median_3", b))),
    ("rollingavg_29(a)", call("rollingavg_29", a)),
    ("abs(a - b) / a * 100", op("*", op("/", call("abs", op("-", a, b)), a), N(100))),
    # the seed page (graphing JSON)
    ("per_hour(query)", call("per_hour", QueryRef("query"))),
    ("query1 / 100", op("/", q1, N(100))),
    ("2 * query1", op("*", N(2), q1)),
    ("per_hour(query1)", call("per_hour", q1)),
    ("week_before(query1)", call("week_before", q1)),
    ("query1 / query2", op("/", q1, q2)),
    ("week_before(query1 / query2)", call("week_before", op("/", q1, q2))),
    # precedence and unary minus
    ("a + b * c", op("+", a, op("*", b, c))),
    ("(a + b) * c", op("*", op("+", a, b), c)),
    ("a - b - c", op("-", op("-", a, b), c)),
    ("a - (b - c)", op("-", a, op("-", b, c))),
    ("a / b / c", op("/", op("/", a, b), c)),
    ("a / (b * c)", op("/", a, op("*", b, c))),
    ("-a * b", op("*", Neg(a), b)),
    ("-(a + b)", Neg(op("+", a, b))),
    ("- -a", Neg(Neg(a))),
    ("-5", N(-5)),
    ("--5", N(5)),
    ("2 - -3", op("-", N(2), N(-3))),
    ("a*-1", op("*", a, N(-1))),
    ("1.5e3 + .5 + 2.", op("+", op("+", N(1500), N(0.5)), N(2))),
    ("  a  ", a),
    ("((a))", a),
]


@pytest.mark.parametrize(("text", "expected"), FORMULAS)
def test_formulas_give_their_tree(text: str, expected: FormulaAst) -> None:
    assert parse_formula(text) == expected


@pytest.mark.parametrize(("text", "expected"), FORMULAS)
def test_formulas_round_trip(text: str, expected: FormulaAst) -> None:
    assert parse_formula(render_formula(expected)) == expected


def test_seed_formulas_all_parse() -> None:
    """Every `"formula": ...` of the seed pages parses, against the query names of its request."""
    found = []
    for seed in SEEDS.iterdir():
        for formula in re.findall(r'"formula":\s*"([^"]*)"', seed.read_text()):
            found.append(formula)
            if formula != "u":  # the audience formula of the product analytics page is another language
                parse_formula(formula, ["query", "query1", "query2"])
    assert "per_hour(query)" in found
    assert "week_before(query1 / query2)" in found


def test_seed_legacy_q_strings_parse() -> None:
    found = [q for seed in SEEDS.iterdir() for q in re.findall(r'"q":\s*"([^"]*)"', seed.read_text())]
    assert found == ["metric{apples} / metric{oranges}"]
    assert parse_legacy_query(found[0]) == [op("/", M("metric", t("apples")), M("metric", t("oranges")))]


def test_query_names_are_checked_when_given() -> None:
    assert parse_formula("a / b", ["a", "b"]) == op("/", a, b)
    err = formula_error("a / query3", ["a", "b"])
    assert (err.position, err.found) == (4, "'query3'")
    assert err.expected == "the name of a query of this request (a, b)"


def test_positions_are_kept_but_not_compared() -> None:
    ast = parse_formula("a + abs(b)")
    assert isinstance(ast, BinOp) and isinstance(ast.right, Call)
    assert (ast.pos, ast.left.pos, ast.right.pos, ast.right.args[0].pos) == (0, 0, 4, 8)
    assert ast == op("+", QueryRef("a", 99), call("abs", b))


# --- the catalog ------------------------------------------------------------------------------------------

SAMPLE_STRINGS = {"shift": "-2w", "timezone": "UTC", "alert_window": "last_5m"}


def sample_call(spec: FunctionSpec, count: int) -> str:
    args = []
    for param in spec.positional[:count]:
        if arg_kind(param) is ArgKind.SERIES:
            args.append("q")
        elif arg_kind(param) is ArgKind.NUMBER:
            args.append("3")
        else:
            args.append(repr(param.choices[0] if param.choices else SAMPLE_STRINGS.get(param.name, "x")))
    return f"{spec.name}({', '.join(args)})"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_catalog_function_parses_with_each_accepted_arity(name: str) -> None:
    spec = FUNCTIONS[name]
    for count in range(spec.min_args, spec.max_args + 1):
        ast = parse_formula(sample_call(spec, count))
        assert isinstance(ast, Call) and ast.name == name and len(ast.args) == count
    if spec.min_args > 0:
        with pytest.raises(FormulaSyntaxError, match="argument"):
            parse_formula(sample_call(spec, spec.min_args - 1))
    too_many = sample_call(spec, spec.max_args)[:-1] + (", q)" if spec.max_args else "q, q)")
    with pytest.raises(FormulaSyntaxError, match="argument"):
        parse_formula(too_many)


def test_catalog_covers_the_reference_function_list() -> None:
    documented = [
        "abs",
        "pow",
        "log2",
        "log10",
        "cumsum",
        "integral",
        "default_zero",
        "timeshift",
        "hour_before",
        "day_before",
        "week_before",
        "month_before",
        "calendar_shift",
        "per_second",
        "per_minute",
        "per_hour",
        "dt",
        "diff",
        "monotonic_diff",
        "derivative",
        "throughput",
        "autosmooth",
        "ewma_3",
        "ewma_5",
        "ewma_7",
        "ewma_10",
        "ewma_20",
        "median_3",
        "median_5",
        "median_7",
        "median_9",
        "rollingavg_5",
        "rollingavg_13",
        "rollingavg_21",
        "rollingavg_29",
        "moving_rollup",
        "top",
        "top_offset",
        "robust_trend",
        "trend_line",
        "piecewise_constant",
        "count_nonzero",
        "count_nonzero_finite",
        "count_not_null",
        "exclude_null",
        "clamp_min",
        "clamp_max",
        "cutoff_min",
        "cutoff_max",
        "anomalies",
        "outliers",
        "forecast",
    ]
    assert set(documented) <= set(FUNCTIONS)
    shorthand = {
        f"{side}{n}_{by}"
        for side in ("top", "bottom")
        for n in (5, 10, 15, 20)
        for by in ("mean", "min", "max", "last", "area", "l2norm")
    }
    assert shorthand <= set(FUNCTIONS)


def test_bound_arguments_include_defaults_and_presets() -> None:
    def args_of(text: str) -> dict[str, object]:
        ast = parse_formula(text)
        assert isinstance(ast, Call)
        return dict(ast.arguments())

    assert args_of("top5_mean(a)") == {"query": a, "limit": 5, "by": "mean", "dir": "desc"}
    assert args_of("bottom10_min(a)") == {"query": a, "limit": 10, "by": "min", "dir": "asc"}
    assert args_of("top(a)") == {"query": a, "limit": 10, "by": "mean", "dir": "desc"}
    assert args_of("top(a, 3, 'MAX')") == {"query": a, "limit": 3, "by": "max", "dir": "desc"}
    assert args_of("ewma_3(a)") == {"query": a, "span": 3}
    assert args_of("pow(2, a)") == {"base": N(2), "exponent": a}
    assert args_of("median_9(a)") == {"query": a, "span": 9}
    assert args_of("hour_before(a)") == {"query": a, "seconds": -3600}
    assert args_of("month_before(a)") == {"query": a, "seconds": -2419200}
    assert args_of("calendar_shift(a, '-1d')") == {"query": a, "shift": "-1d", "timezone": "UTC"}
    assert args_of("anomalies(a, 'basic', 2, interval=60, direction='above')") == {
        "query": a,
        "algorithm": "basic",
        "bounds": 2,
        "interval": 60,
        "direction": "above",
        "count_default_zero": False,
        "seasonality": "weekly",
        "timezone": "UTC",
    }
    assert FUNCTIONS["top5_mean"].implementation == "top"
    assert FUNCTIONS["rate"].implementation == "per_second"
    assert FUNCTIONS["count_nonzero_finite"].implementation == "count_nonzero"
    assert FUNCTIONS["abs"].implementation == "abs"


# --- legacy query strings: every line of the vectors ------------------------------------------------------

SVC_H = AND(
    t("service", "svc-h"), NOT(t("deployment", "svc-h-sandbox")), t("region", "region-2"), t("env", "dev")
)
ALPHA = M("metric.alpha", t("team", "core"), "avg")
BETA = M("metric.beta", t("team", "core"), "avg")
ANOMALY_KWARGS = {
    "direction": S("both"),
    "alert_window": S("last_15m"),
    "interval": N(60),
    "count_default_zero": S("true"),
}

LEGACY_VECTORS: dict[str, list[FormulaAst]] = {
    "default_zero(avg:metric.alpha{team:core} + avg:metric.beta{team:core})": [
        call("default_zero", op("+", ALPHA, BETA))
    ],
    "default_zero(avg:metric.alpha{team:core}) + avg:metric.beta{team:core}": [
        op("+", call("default_zero", ALPHA), BETA)
    ],
    "moving_rollup(default_zero(sum:app.http.requests{service:svc-a,!grpc_service:statushandler,env:dev}"
    ".as_rate()),60,'avg')": [
        call(
            "moving_rollup",
            call(
                "default_zero",
                M(
                    "app.http.requests",
                    AND(t("service", "svc-a"), NOT(t("grpc_service", "statushandler")), t("env", "dev")),
                    "sum",
                    type_modifier="as_rate",
                ),
            ),
            N(60),
            S("avg"),
        )
    ],
    "sum:app.http.responses{env:dev, region:region-2, deployment:api}.as_rate() / "
    "sum:container.hpa.current_replicas{env:dev, region:region-2, hpa:api}": [
        op(
            "/",
            M(
                "app.http.responses",
                AND(t("env", "dev"), t("region", "region-2"), t("deployment", "api")),
                "sum",
                type_modifier="as_rate",
            ),
            M(
                "container.hpa.current_replicas",
                AND(t("env", "dev"), t("region", "region-2"), t("hpa", "api")),
                "sum",
            ),
        )
    ],
    "default_zero(sum:queue.size{env:dev,service:svc-d}.rollup(max))": [
        call(
            "default_zero",
            M("queue.size", AND(t("env", "dev"), t("service", "svc-d")), "sum", rollup=Rollup("max")),
        )
    ],
    "default_zero(sum:auth.validate.response_codes{ service:auth,env:dev,deployment:auth,region:region-2 }"
    ".as_rate())": [
        call(
            "default_zero",
            M(
                "auth.validate.response_codes",
                AND(t("service", "auth"), t("env", "dev"), t("deployment", "auth"), t("region", "region-2")),
                "sum",
                type_modifier="as_rate",
            ),
        )
    ],
    "moving_rollup(sum:http.downstream_rq_completed{env:dev,region:region-2,service:svc-e,deployment:svc-e-go}"
    ".as_rate(), 300, 'max')": [
        call(
            "moving_rollup",
            M(
                "http.downstream_rq_completed",
                AND(
                    t("env", "dev"),
                    t("region", "region-2"),
                    t("service", "svc-e"),
                    t("deployment", "svc-e-go"),
                ),
                "sum",
                type_modifier="as_rate",
            ),
            N(300),
            S("max"),
        )
    ],
    "default_zero(timeshift(sum:trace.server.hits{env:dev,service:gateway}.as_rate(), -15))": [
        call(
            "default_zero",
            call(
                "timeshift",
                M(
                    "trace.server.hits",
                    AND(t("env", "dev"), t("service", "gateway")),
                    "sum",
                    type_modifier="as_rate",
                ),
                N(-15),
            ),
        )
    ],
    "default_zero(max:service.api.response_times.histogram{service:svc-g AND env:dev AND region:region-2 AND "
    "distribution:95percentile AND ((api:list_items AND grpc_service:*))})": [
        call(
            "default_zero",
            M(
                "service.api.response_times.histogram",
                AND(
                    t("service", "svc-g"),
                    t("env", "dev"),
                    t("region", "region-2"),
                    t("distribution", "95percentile"),
                    t("api", "list_items"),
                    t("grpc_service", "*"),
                ),
                "max",
            ),
        )
    ],
    "default_zero(sum:http.downstream_rq_5xx{env:dev,region:region-2,service:svc-g*} by {service}"
    ".as_rate())": [
        call(
            "default_zero",
            M(
                "http.downstream_rq_5xx",
                AND(t("env", "dev"), t("region", "region-2"), t("service", "svc-g*")),
                "sum",
                group_by=("service",),
                type_modifier="as_rate",
            ),
        )
    ],
    " top(moving_rollup(max:kubernetes.cpu.usage.total{service:svc-h, !deployment:svc-h-sandbox, "
    "region:region-2, env:dev} by {container} / max:kubernetes.cpu.limits{service:svc-h, "
    "!deployment:svc-h-sandbox, region:region-2, env:dev} by {container} / (1000 * 1000 * 10), 300, 'max'), "
    "1, 'max', 'desc')": [
        call(
            "top",
            call(
                "moving_rollup",
                op(
                    "/",
                    op(
                        "/",
                        M("kubernetes.cpu.usage.total", SVC_H, "max", group_by=("container",)),
                        M("kubernetes.cpu.limits", SVC_H, "max", group_by=("container",)),
                    ),
                    op("*", op("*", N(1000), N(1000)), N(10)),
                ),
                N(300),
                S("max"),
            ),
            N(1),
            S("max"),
            S("desc"),
        )
    ],
    "piecewise_constant(moving_rollup(sum:consumer.commit.num_records{consumer_name:consumer-a,env:dev,"
    "region:region-2,topic:*audit_trail}.as_rate(), 600, 'avg'))": [
        call(
            "piecewise_constant",
            call(
                "moving_rollup",
                M(
                    "consumer.commit.num_records",
                    AND(
                        t("consumer_name", "consumer-a"),
                        t("env", "dev"),
                        t("region", "region-2"),
                        t("topic", "*audit_trail"),
                    ),
                    "sum",
                    type_modifier="as_rate",
                ),
                N(600),
                S("avg"),
            ),
        )
    ],
    "moving_rollup(default_zero(sum:consumer.commit.num_records{consumer_name:consumer-b,env:dev,"
    "region:region-2,topic:*load_test_topic_*}), 600, 'max')": [
        call(
            "moving_rollup",
            call(
                "default_zero",
                M(
                    "consumer.commit.num_records",
                    AND(
                        t("consumer_name", "consumer-b"),
                        t("env", "dev"),
                        t("region", "region-2"),
                        t("topic", "*load_test_topic_*"),
                    ),
                    "sum",
                ),
            ),
            N(600),
            S("max"),
        )
    ],
    "timeshift(sum:http.upstream_rq_total{env:dev,service:svc-j,region:region-2}.as_rate(), -85500)": [
        call(
            "timeshift",
            M(
                "http.upstream_rq_total",
                AND(t("env", "dev"), t("service", "svc-j"), t("region", "region-2")),
                "sum",
                type_modifier="as_rate",
            ),
            N(-85500),
        )
    ],
    "timeshift(sum:http.upstream_rq_total{env:test,service:svc-j}.rollup(sum, 60), -84200)": [
        call(
            "timeshift",
            M(
                "http.upstream_rq_total",
                AND(t("env", "test"), t("service", "svc-j")),
                "sum",
                rollup=Rollup("sum", 60),
            ),
            N(-84200),
        )
    ],
    "default_zero(avg:jobqueue.queue_size{env:dev,service:svc-m}.as_count())": [
        call(
            "default_zero",
            M(
                "jobqueue.queue_size",
                AND(t("env", "dev"), t("service", "svc-m")),
                "avg",
                type_modifier="as_count",
            ),
        )
    ],
    "default_zero(avg:http.downstream_rq_total{service:observability,listener:ingress,region:region-2,env:dev}"
    ".as_rate().rollup(avg, 60))": [
        call(
            "default_zero",
            M(
                "http.downstream_rq_total",
                AND(
                    t("service", "observability"),
                    t("listener", "ingress"),
                    t("region", "region-2"),
                    t("env", "dev"),
                ),
                "avg",
                type_modifier="as_rate",
                rollup=Rollup("avg", 60),
            ),
        )
    ],
    "default_zero(sum:jobqueue.queue_size{cluster:cluster-dev , service:svc-o}.weighted())": [
        call(
            "default_zero",
            M(
                "jobqueue.queue_size",
                AND(t("cluster", "cluster-dev"), t("service", "svc-o")),
                "sum",
                weighted=True,
            ),
        )
    ],
    "ewma_20(sum:processor.events.consumed{env:dev}.as_rate())": [
        call("ewma_20", M("processor.events.consumed", t("env", "dev"), "sum", type_modifier="as_rate"))
    ],
    "moving_rollup(avg:trace.request.hits{env:dev,region:region-2,service:svc-q}.as_count(), 3600, 'max')": [
        call(
            "moving_rollup",
            M(
                "trace.request.hits",
                AND(t("env", "dev"), t("region", "region-2"), t("service", "svc-q")),
                "avg",
                type_modifier="as_count",
            ),
            N(3600),
            S("max"),
        )
    ],
    "anomalies(avg:system.cpu.idle{*}, 'agile', 2, direction='both', alert_window='last_15m', interval=60, "
    "count_default_zero='true', seasonality='hourly')": [
        call(
            "anomalies",
            M("system.cpu.idle", ScopeAll(), "avg"),
            S("agile"),
            N(2),
            **ANOMALY_KWARGS,
            seasonality=S("hourly"),
        )
    ],
}

MONITOR_VECTORS: dict[str, MonitorQueryAst] = {
    "avg(last_4h):anomalies(avg:system.cpu.user{role:trace-cassandra} by {host}, 'basic', 2, "
    "direction='both', alert_window='last_15m', interval=60, count_default_zero='true', "
    "timezone='America/New_York') >= 1": (
        MonitorQueryAst(
            "avg",
            "last_4h",
            call(
                "anomalies",
                M("system.cpu.user", t("role", "trace-cassandra"), "avg", group_by=("host",)),
                S("basic"),
                N(2),
                **ANOMALY_KWARGS,
                timezone=S("America/New_York"),
            ),
            ">=",
            1,
        )
    ),
}


def test_every_vector_line_has_an_expected_tree() -> None:
    expected = set(LEGACY_VECTORS) | set(METRIC_VECTORS) | set(MONITOR_VECTORS)
    assert sorted(vector_lines()) == sorted(expected)


@pytest.mark.parametrize("text", list(LEGACY_VECTORS))
def test_legacy_vectors_give_their_tree(text: str) -> None:
    assert parse_legacy_query(text) == LEGACY_VECTORS[text]


@pytest.mark.parametrize("text", list(METRIC_VECTORS))
def test_plain_metric_vectors_are_legacy_queries_of_one_operand(text: str) -> None:
    assert parse_legacy_query(text) == [MetricOperand(METRIC_VECTORS[text])]


@pytest.mark.parametrize("text", list(MONITOR_VECTORS))
def test_monitor_vectors_give_their_tree(text: str) -> None:
    ast = parse_monitor_query(text)
    assert ast == MONITOR_VECTORS[text]
    assert ast.window_seconds == 4 * 3600


@pytest.mark.parametrize("text", [*LEGACY_VECTORS, *METRIC_VECTORS])
def test_legacy_vectors_round_trip(text: str) -> None:
    ast = parse_legacy_query(text)
    assert parse_legacy_query(render_legacy_query(ast)) == ast


def test_monitor_vectors_round_trip() -> None:
    for text in MONITOR_VECTORS:
        ast = parse_monitor_query(text)
        assert parse_monitor_query(render_monitor_query(ast)) == ast


# --- legacy query strings: commas, operands --------------------------------------------------------------


def test_top_level_commas_separate_expressions_and_nested_ones_do_not() -> None:
    x = M("x", AND(t("a", "1"), t("b", "2")), "avg")
    y = M("y", TagIn("env", ("p", "q")), "sum", group_by=("host", "dc"))
    assert parse_legacy_query("avg:x{a:1,b:2}, sum:y{env IN (p, q)} by {host,dc}") == [x, y]
    assert parse_legacy_query("top(avg:x{a:1,b:2}, 5, 'max', 'desc'), 2 * avg:x{a:1,b:2}") == [
        call("top", x, N(5), S("max"), S("desc")),
        op("*", N(2), x),
    ]
    assert len(parse_legacy_query("a{*}, b{*}, c{*}")) == 3
    assert parse_legacy_query("metric{apples} / metric{oranges}") == [
        op("/", M("metric", t("apples")), M("metric", t("oranges")))
    ]


def test_the_reference_legacy_examples() -> None:
    x = M("x", agg="avg", group_by=("host",))
    y = M("y", agg="avg", group_by=("host",))
    assert parse_legacy_query("top(avg:x{*} by {host} / avg:y{*} by {host}, 5, 'max', 'desc')") == [
        call("top", op("/", x, y), N(5), S("max"), S("desc"))
    ]
    assert parse_legacy_query("timeshift(avg:system.load.1{*}, -1209600)") == [
        call("timeshift", M("system.load.1", agg="avg"), N(-1209600))
    ]
    assert parse_legacy_query("top_offset(avg:system.cpu.iowait{*}, 5, 'max', 'desc', 5)") == [
        call("top_offset", M("system.cpu.iowait", agg="avg"), N(5), S("max"), S("desc"), N(5))
    ]
    assert parse_legacy_query("default_zero(system.load.1{*})") == [call("default_zero", M("system.load.1"))]
    assert parse_legacy_query("abs{*} + count:c{*}.fill(zero)") == [
        op("+", M("abs"), M("c", agg="count", fill=Fill("zero")))
    ]
    assert parse_legacy_query("count(v: v<=1):m{*} * 2") == [
        op(
            "*",
            MetricOperand(MetricQueryAst("m", space_aggregator="count", value_filter=ValueFilter("<=", 1))),
            N(2),
        )
    ]


def test_errors_inside_an_embedded_metric_query_are_positioned_in_the_whole_string() -> None:
    err = legacy_error("abs(avg:x{*}) + avg:y{env:prod AND !a}")
    assert isinstance(err, MetricQuerySyntaxError)
    assert (err.position, err.found) == (35, "'!'")
    err = legacy_error("avg:x{*}, avg:y{a")
    assert isinstance(err, MetricQuerySyntaxError)
    assert err.position == 17


# --- monitor queries --------------------------------------------------------------------------------------


def test_monitor_forms() -> None:
    cpu = M("system.cpu.user", agg="avg")
    assert parse_monitor_query("avg(last_5m):avg:system.cpu.user{*} > 90") == MonitorQueryAst(
        "avg", "last_5m", cpu, ">", 90
    )
    ast = parse_monitor_query("pct_change(avg(last_5m),last_1h):avg:system.cpu.user{*} <= -50.5")
    assert ast == MonitorQueryAst("avg", "last_5m", cpu, "<=", -50.5, "pct_change", "last_1h")
    assert (ast.window_seconds, ast.change_shift_seconds) == (300, 3600)
    assert parse_monitor_query(" max(last_1d): avg:a{*} / avg:b{*} != 0 ").expression == op(
        "/", M("a", agg="avg"), M("b", agg="avg")
    )
    assert window_seconds("last_2w") == 2 * 604800
    assert window_seconds("last_1mo") == 2592000
    for text in ("avg(last_5m):a{*} > 1", "change(sum(last_1h),last_5m):a{*} == 3"):
        assert render_monitor_query(parse_monitor_query(text)) == text


MONITOR_ERRORS: list[tuple[str, int, str, str]] = [
    ("median(last_5m):a{*} > 1", 0, "a time aggregation: avg, sum, min or max", "'median'"),
    ("avg(5m):a{*} > 1", 4, "a window like last_5m", "'5m'"),
    ("avg(last_5x):a{*} > 1", 4, "a window like last_5m", "'last_5x'"),
    ("avg(last_5m)a{*} > 1", 12, "':' and the query after the time aggregation", "'a'"),
    (
        "avg(last_5m):a{*}",
        17,
        "a comparison (>, >=, <, <=, ==, !=) and the threshold",
        "the end of the query",
    ),
    ("avg(last_5m):a{*} > high", 20, "a number after '>'", "'high'"),
    ("avg(last_5m):a{*} > 1 or 2", 22, "the end of the monitor query after the threshold", "'or'"),
    ("change(avg(last_5m)):a{*} > 1", 19, "',' and the shift window", "')'"),
]


@pytest.mark.parametrize(("text", "position", "expected", "found"), MONITOR_ERRORS)
def test_monitor_errors(text: str, position: int, expected: str, found: str) -> None:
    with pytest.raises(LegacyQuerySyntaxError) as info:
        parse_monitor_query(text)
    err = info.value
    assert (err.position, err.found) == (position, found), str(err)
    assert expected in err.expected
    assert str(err).startswith(f"invalid query at position {position}: expected ")


# --- errors -----------------------------------------------------------------------------------------------

FORMULA_ERRORS: list[tuple[str, int, str, str]] = [
    # empty, trailing garbage, unbalanced
    ("", 0, "a formula, like query1 or query1 * 100 / query2", "the end of the formula"),
    ("   ", 3, "a formula", "the end of the formula"),
    ("query1 query2", 7, "an operator (+, -, *, /) or the end of the formula", "'query2'"),
    ("query1 +", 8, "a query name, a number, a function call or '('", "the end of the formula"),
    ("(query1", 7, "an operator or ')' to close the '(' at position 0", "the end of the formula"),
    ("query1)", 6, "an operator (+, -, *, /) or the end of the formula", "')'"),
    ("a * (b + )", 9, "a query name, a number", "')'"),
    ("a, b", 1, "one expression per formula", "','"),
    ("a % b", 2, "an operator (+, -, *, /) or the end of the formula", "'%'"),
    ("5m", 1, "an operator after the number", "'m'"),
    ("'basic' + a", 0, "quoted strings are only function arguments", "'''"),
    ("avg:system.cpu{*}", 3, "metric query strings go in the request's queries", "':'"),
    ("query1.rollup(sum)", 6, "metric query strings go in the request's queries", "'.rollup'"),
    # unknown functions
    ("cumsm(query1)", 0, "a known function (did you mean cumsum?)", "'cumsm'"),
    ("func(a) + b", 0, "a known function", "'func'"),
    ("ewma_4(a)", 0, "a known function (the ewma functions are ewma_3, ewma_5", "'ewma_4'"),
    # arity
    ("abs()", 4, "1 argument for abs(query)", "0 arguments"),
    ("abs(a, b)", 7, "1 argument for abs(query)", "2 arguments"),
    (
        "anomalies(a)",
        11,
        "at least 2 arguments for anomalies(query, algorithm, bounds=2, direction='both'",
        "1 argument",
    ),
    (
        "top(a, 5, 'max', 'desc', 1)",
        25,
        "at most 4 arguments for top(query, limit=10, by='mean', dir='desc')",
        "5 arguments",
    ),
    (
        "moving_rollup(a)",
        15,
        "at least 2 arguments for moving_rollup(query, seconds, aggregator='avg')",
        "1 argument",
    ),
    ("abs(a,)", 6, "a query name, a number, a function call or '(' or a quoted string", "')'"),
    ("abs(a b)", 6, "an operator, ',' or ')' to close the call of abs() at position 3", "'b'"),
    ("abs(a", 5, "an operator, ',' or ')' to close the call of abs()", "the end of the formula"),
    # kinds and values
    ("abs('a')", 4, "a query or an expression for query (first argument) of abs()", "a quoted string"),
    ("abs(5)", 4, "a query or an expression over queries for query (first argument) of abs()", "a number"),
    ("abs(2 * 3)", 4, "a query or an expression over queries for query", "an expression without a query"),
    ("timeshift(a, b)", 13, "a number for seconds (second argument) of timeshift()", "a query"),
    ("timeshift(a, 1.5)", 13, "a whole number for seconds (second argument) of timeshift()", "'1.5'"),
    ("top(a, 0)", 7, "a whole number at least 1 for limit (second argument) of top()", "'0'"),
    ("top(a, 2.5)", 7, "a whole number at least 1 for limit (second argument) of top()", "'2.5'"),
    (
        "top_offset(a, 5, 'max', 'desc', -1)",
        32,
        "a whole number at least 0 for offset (fifth argument)",
        "'-1'",
    ),
    (
        "fill(a, 'linear', 900)",
        18,
        "a whole number at least 1 and at most 600 for limit (third argument)",
        "'900'",
    ),
    (
        "outliers(a, 'MAD', 3, 120)",
        22,
        "a number at least 0 and at most 100 for pct (fourth argument)",
        "'120'",
    ),
    ("top(a, 5, max)", 10, "a quoted string for by (third argument) of top()", "a query"),
    (
        "top(a, 5, 'median')",
        10,
        "one of 'max', 'mean', 'min', 'sum', 'last', 'l2norm', 'area' for by",
        "'median'",
    ),
    ("top(a, 5, 'max', 'up')", 17, "one of 'asc', 'desc' for dir (fourth argument) of top()", "'up'"),
    ("anomalies(a, 'fancy', 2)", 13, "one of 'basic', 'agile', 'robust' for algorithm", "'fancy'"),
    (
        "calendar_shift(a, '1d')",
        18,
        "such as '-1d', '-2w' or '-1mo' for shift (second argument) of calendar_shift()",
        "'1d'",
    ),
    ("moving_rollup(a, 60, 'median')", 21, "one of 'avg', 'sum', 'min', 'max', 'count'", "'median'"),
    ("clamp_min(a, 2 * 3)", 13, "a number for threshold", "an expression"),
    ("abs(a, 'x'", 10, "an operator, ',' or ')'", "the end of the formula"),
    ("abs('open)", 10, '"\'" to close the string opened at position 4', "the end of the formula"),
    # named arguments
    (
        "anomalies(a, 'basic', 2, directon='above')",
        25,
        "a named argument of anomalies() (direction, alert_window",
        "'directon='",
    ),
    (
        "anomalies(a, 'basic', 2, direction='up')",
        35,
        "one of 'both', 'above', 'below' for direction=",
        "'up'",
    ),
    (
        "anomalies(a, 'basic', 2, interval='60')",
        34,
        "a number for interval= of anomalies()",
        "a quoted string",
    ),
    ("anomalies(a, 'basic', 2, alert_window='15m')", 38, "a window such as 'last_15m'", "'15m'"),
    ("anomalies(a, 'basic', 2, timezone='Mars/Base')", 34, "an IANA time zone name", "'Mars/Base'"),
    (
        "anomalies(a, 'basic', 2, direction='both', direction='above')",
        43,
        "each named argument once",
        "'direction=' again",
    ),
    ("anomalies(a, direction='both', 'basic', 2)", 31, "positional arguments come first", "'''"),
    ("abs(q=a)", 4, "positional arguments only, as in abs(query)", "'q='"),
    ("anomalies(a, 'basic', 2, direction=)", 35, "a value for direction=", "')'"),
]


@pytest.mark.parametrize(("text", "position", "expected", "found"), FORMULA_ERRORS)
def test_formula_errors_say_where_what_and_what_instead(
    text: str, position: int, expected: str, found: str
) -> None:
    err = formula_error(text)
    assert not isinstance(err, LegacyQuerySyntaxError)
    assert (err.position, err.found) == (position, found), str(err)
    assert expected in err.expected, err.expected
    assert str(err) == f"invalid formula at position {position}: expected {err.expected}, found {found}"


def test_legacy_errors() -> None:
    err = legacy_error("")
    assert isinstance(err, LegacyQuerySyntaxError)
    assert (err.position, err.expected) == (0, "a query, like avg:system.cpu.user{*}")
    expected = "a query, like avg:system.cpu.user{*}"
    assert str(err) == f"invalid query at position 0: expected {expected}, found the end of the query"
    err = legacy_error("avg:x{*} avg:y{*}")
    assert (err.position, err.found) == (9, "'avg'")
    assert "',' and another query" in err.expected
    err = legacy_error("avg:x{*},")
    assert (err.position, err.expected) == (9, "a metric query, a number, a function call or '('")
    assert isinstance(legacy_error("nosuch(avg:x{*})"), LegacyQuerySyntaxError)
    assert isinstance(legacy_error("x{*} by {host}.foo()"), MetricQuerySyntaxError)


def test_limits() -> None:
    deep = "(" * MAX_NESTING_DEPTH + "a" + ")" * MAX_NESTING_DEPTH
    assert "levels of nested" in formula_error(deep).expected
    ok = "(" * (MAX_NESTING_DEPTH - 1) + "a" + ")" * (MAX_NESTING_DEPTH - 1)
    assert parse_formula(ok) == a
    assert "levels of nested" in formula_error("-" * 5000 + "a").expected
    assert "levels of nested" in formula_error("abs(" * 200 + "a" + ")" * 200).expected
    err = formula_error("a+" * (MAX_FORMULA_LENGTH // 2) + "a")
    assert (err.position, err.expected) == (MAX_FORMULA_LENGTH, f"at most {MAX_FORMULA_LENGTH} characters")
    assert isinstance(legacy_error("x{*}+" * 4000), LegacyQuerySyntaxError)
    assert "levels of nested" in legacy_error("(" * 500 + "x{*}" + ")" * 500).expected


def test_errors_pickle() -> None:
    for err in (formula_error("abs("), legacy_error("")):
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is type(err)
        assert str(again) == str(err)


# --- properties -------------------------------------------------------------------------------------------

FORMULA_ALPHABET = "abquery12+-*/().,'\"= _{}:*!<>~ANDORavgsumtopewma_3anomalies"


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet=FORMULA_ALPHABET, max_size=60)))
def test_arbitrary_text_raises_only_the_parsers_errors(text: str) -> None:
    for parse in (parse_formula, parse_legacy_query, parse_monitor_query):
        try:
            parse(text)
        except QuerySyntaxError as err:
            assert 0 <= err.position <= len(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "query1",
                "avg:m{*}",
                "m{a:b}",
                " by {h}",
                ".as_count()",
                "+",
                "-",
                "*",
                "/",
                "(",
                ")",
                ",",
                "abs(",
                "top(",
                "'max'",
                "5",
                "-3",
                "x=",
                "'desc'",
                "avg(last_5m):",
                " > ",
                "anomalies(",
                "1.5",
                "count(v: v<1):m{*}",
            ]
        ),
        max_size=16,
    ).map("".join)
)
def test_formula_like_text_raises_only_the_parsers_errors(text: str) -> None:
    for parse in (parse_formula, parse_legacy_query, parse_monitor_query):
        try:
            parse(text)
        except QuerySyntaxError as err:
            assert 0 <= err.position <= len(text)


names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
numbers = st.one_of(st.integers(-1000, 10**9).map(float), st.floats(allow_nan=False, allow_infinity=False))


def reads_query(ast: Argument) -> bool:
    if isinstance(ast, QueryRef | MetricOperand):
        return True
    if isinstance(ast, Neg):
        return reads_query(ast.operand)
    if isinstance(ast, BinOp):
        return reads_query(ast.left) or reads_query(ast.right)
    if isinstance(ast, Call):
        return any(reads_query(x) for x in ast.args)
    return False


def formulas(operand: st.SearchStrategy[FormulaAst]) -> st.SearchStrategy[FormulaAst]:
    def extend(children: st.SearchStrategy[FormulaAst]) -> st.SearchStrategy[FormulaAst]:
        # The catalog's functions (but pow) take expressions over queries, not constants.
        reads_a_query = st.one_of(operand, children.filter(reads_query))
        return st.one_of(
            st.builds(BinOp, st.sampled_from(["+", "-", "*", "/"]), children, children),
            # A minus before a number literal is folded into it, so it never wraps one.
            st.builds(Neg, children.filter(lambda e: not isinstance(e, Number | Neg))),
            st.builds(lambda e: Call("abs", (e,)), reads_a_query),
            st.builds(
                lambda e, n: Call("timeshift", (e, Number(float(n)))),
                reads_a_query,
                st.integers(-(10**6), 10**6),
            ),
            st.builds(
                lambda e, n, by, d: Call("top", (e, Number(float(n)), StringLit(by), StringLit(d))),
                reads_a_query,
                st.integers(1, 100),
                st.sampled_from(["max", "mean", "area"]),
                st.sampled_from(["asc", "desc"]),
            ),
            st.builds(
                lambda e, tz: Call(
                    "anomalies", (e, StringLit("basic"), Number(2.0)), (("timezone", StringLit(tz)),)
                ),
                reads_a_query,
                st.sampled_from(["UTC", "America/New_York", "Asia/Kolkata"]),
            ),
            st.builds(lambda x, y: Call("pow", (x, y)), children, children),
        )

    return st.recursive(st.one_of(operand, st.builds(Number, numbers)), extend, max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(formulas(st.builds(QueryRef, names)))
def test_rendered_formulas_parse_back_to_themselves(ast: FormulaAst) -> None:
    text = render_formula(ast)
    assert parse_formula(text) == ast, text


@settings(max_examples=200, deadline=None)
@given(st.lists(formulas(st.builds(MetricOperand, metric_queries())), min_size=1, max_size=3))
def test_rendered_legacy_queries_parse_back_to_themselves(expressions: list[FormulaAst]) -> None:
    text = render_legacy_query(expressions)
    assert parse_legacy_query(text) == expressions, text
