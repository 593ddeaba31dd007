"""The Datadog metric query string parser: exact trees for every syntax of the reference (A3) and for the
plain metric queries of the ddqp test vectors, errors with their positions and messages, round trips
through `render_metric_query`, and properties over arbitrary and generated input."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sextant.query.metric_syntax import (
    MAX_NESTING_DEPTH,
    MAX_QUERY_LENGTH,
    Fill,
    MetricQueryAst,
    MetricQuerySyntaxError,
    QuerySyntaxError,
    Rollup,
    Scope,
    ScopeAll,
    ScopeAnd,
    ScopeNot,
    ScopeOr,
    TagCompare,
    TagIn,
    TagMatch,
    TagRegex,
    ValueFilter,
    parse_metric_query,
    render_metric_query,
    render_scope,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "data" / "ddqp_test_queries.txt"

ALL = ScopeAll()


def t(key: str, value: str | None = None) -> TagMatch:
    return TagMatch(key, value)


def AND(*operands: Scope) -> ScopeAnd:
    return ScopeAnd(operands)


def OR(*operands: Scope) -> ScopeOr:
    return ScopeOr(operands)


def NOT(operand: Scope) -> ScopeNot:
    return ScopeNot(operand)


def q(metric: str, scope: Scope = ALL, agg: str | None = None, **kw: object) -> MetricQueryAst:
    return MetricQueryAst(metric, scope, agg, **kw)  # type: ignore[arg-type]


def vector_lines() -> list[str]:
    """The query lines of the vectors file, as written (comments and blank lines skipped)."""
    lines = VECTORS.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def error_of(text: str) -> MetricQuerySyntaxError:
    with pytest.raises(MetricQuerySyntaxError) as info:
        parse_metric_query(text)
    return info.value


# --- the plain metric queries of the test vectors ----------------------------------------------------------

LAG_SCOPE = AND(t("service", "svc-l"), TagIn("consumer_name", ("consumer-x",)), t("env", "dev"))

METRIC_VECTORS: dict[str, MetricQueryAst] = {
    "sum:generic.ns.metric.total{env:dev,service:svc-a} by {service}": q(
        "generic.ns.metric.total", AND(t("env", "dev"), t("service", "svc-a")), "sum", group_by=("service",)
    ),
    "avg:system.cpu.user{env:dev AND (az:region-1a OR az:region-1c)} by {az}": q(
        "system.cpu.user",
        AND(t("env", "dev"), OR(t("az", "region-1a"), t("az", "region-1c"))),
        "avg",
        group_by=("az",),
    ),
    "count(v: v<=1):metric.name{foo:bar}": q(
        "metric.name", t("foo", "bar"), "count", value_filter=ValueFilter("<=", 1)
    ),
    "count(v: v<10):metric.name{*}": q("metric.name", ALL, "count", value_filter=ValueFilter("<", 10)),
    "sum:system.cpu.user{*}.as_rate()": q("system.cpu.user", ALL, "sum", type_modifier="as_rate"),
    "sum:system.cpu.user{*}.rollup(avg,60)": q("system.cpu.user", ALL, "sum", rollup=Rollup("avg", 60)),
    'sum:system.cpu.user{*}.label("CPU User")': q("system.cpu.user", ALL, "sum", label="CPU User"),
    "sum:system.cpu.user{*}.fill(true)": q("system.cpu.user", ALL, "sum", fill=Fill("linear")),
    'sum:system.cpu.user{*}.as_rate().rollup(avg,60).label("CPU User").fill(true)': q(
        "system.cpu.user",
        ALL,
        "sum",
        type_modifier="as_rate",
        rollup=Rollup("avg", 60),
        label="CPU User",
        fill=Fill("linear"),
    ),
    "sum:metric.name{!env:prod, region:region-1}": q(
        "metric.name", AND(NOT(t("env", "prod")), t("region", "region-1")), "sum"
    ),
    'sum:metric.name{host:~"web-.*"}': q("metric.name", TagRegex("host", "web-.*"), "sum"),
    "sum:metric.name{duration:>=100 AND duration:<=200 OR errors:>5}": q(
        "metric.name",
        OR(
            AND(TagCompare("duration", ">=", 100), TagCompare("duration", "<=", 200)),
            TagCompare("errors", ">", 5),
        ),
        "sum",
    ),
    "sum:metric.name{env IN (prod, staging)}": q("metric.name", TagIn("env", ("prod", "staging")), "sum"),
    "sum:metric.name{region NOT IN (region-1, region-2)}": q(
        "metric.name", NOT(TagIn("region", ("region-1", "region-2"))), "sum"
    ),
    "sum:metric.name{(service:api AND NOT env:dev) OR region IN (region-1, region-2)}": q(
        "metric.name",
        OR(AND(t("service", "api"), NOT(t("env", "dev"))), TagIn("region", ("region-1", "region-2"))),
        "sum",
    ),
    "sum:system.disk/*{*} by {host}.as_rate().rollup(avg,300)": q(
        "system.disk/*", ALL, "sum", group_by=("host",), type_modifier="as_rate", rollup=Rollup("avg", 300)
    ),
    "sum:http.downstream_rq_total{app:web,env:dev,listener:ingress,host:api--svc-a-*}.as_rate()": q(
        "http.downstream_rq_total",
        AND(t("app", "web"), t("env", "dev"), t("listener", "ingress"), t("host", "api--svc-a-*")),
        "sum",
        type_modifier="as_rate",
    ),
    "sum:metric.name{rpc:*}.as_rate()": q("metric.name", t("rpc", "*"), "sum", type_modifier="as_rate"),
    "sum:gcp.pubsub.subscription.num_undelivered_messages{project_id:project-dev,subscription_id:sub-a}"
    ".fill(last)": q(
        "gcp.pubsub.subscription.num_undelivered_messages",
        AND(t("project_id", "project-dev"), t("subscription_id", "sub-a")),
        "sum",
        fill=Fill("last"),
    ),
    "max:consumer.records_lag_max{service:svc-l AND consumer_name IN (consumer-x) AND (env:dev)} "
    "by {env,consumer_name}": q(
        "consumer.records_lag_max", LAG_SCOPE, "max", group_by=("env", "consumer_name")
    ),
    "max:client_metrics.consumer_timestamp_lag_max.max{service:svc-l AND consumer_name IN (consumer-x) "
    "AND (env:dev)} by {env,consumer_name}.fill(zero)": q(
        "client_metrics.consumer_timestamp_lag_max.max",
        LAG_SCOPE,
        "max",
        group_by=("env", "consumer_name"),
        fill=Fill("zero"),
    ),
    "sum:kubernetes_state.pod.status_phase{nodepool:standard*,pod_phase:pending,cluster:cluster-dev,"
    "!namespace:overprovisioning,!namespace:kuberhealthy,!pod_name:sync-*, deployment:* }": q(
        "kubernetes_state.pod.status_phase",
        AND(
            t("nodepool", "standard*"),
            t("pod_phase", "pending"),
            t("cluster", "cluster-dev"),
            NOT(t("namespace", "overprovisioning")),
            NOT(t("namespace", "kuberhealthy")),
            NOT(t("pod_name", "sync-*")),
            t("deployment", "*"),
        ),
        "sum",
    ),
    "sum:aws.sqs.approximate_number_of_messages_visible{queuename:queue-a,env:dev,region:region-2}"
    ".as_count()": q(
        "aws.sqs.approximate_number_of_messages_visible",
        AND(t("queuename", "queue-a"), t("env", "dev"), t("region", "region-2")),
        "sum",
        type_modifier="as_count",
    ),
    "max:aws.sqs.approximate_age_of_oldest_message{queuename:queue-a}.timeshift(-900)": q(
        "aws.sqs.approximate_age_of_oldest_message", t("queuename", "queue-a"), "max", timeshift_seconds=-900
    ),
    "avg:requests_per_sec{*}.rollup(30)": q("requests_per_sec", ALL, "avg", rollup=Rollup(None, 30)),
    "http.downstream_rq_total{app:notifier,env:dev,listener:ingress,host:notifier-*}.as_rate()": q(
        "http.downstream_rq_total",
        AND(t("app", "notifier"), t("env", "dev"), t("listener", "ingress"), t("host", "notifier-*")),
        type_modifier="as_rate",
    ),
    "sum:relay.streaming_connections{env:dev, region:region-2} by {*}.fill(last, 30)": q(
        "relay.streaming_connections",
        AND(t("env", "dev"), t("region", "region-2")),
        "sum",
        group_by=("*",),
        fill=Fill("last", 30),
    ),
}


@pytest.mark.parametrize("text", list(METRIC_VECTORS))
def test_vector_metric_queries_give_their_tree(text: str) -> None:
    assert text in vector_lines()
    assert parse_metric_query(text) == METRIC_VECTORS[text]


def test_every_plain_metric_query_of_the_vectors_has_an_expected_tree() -> None:
    """The vector lines that are one metric query (no function, no arithmetic) are all in the table above;
    the others are checked by the formula parser's tests."""
    plain = []
    for line in vector_lines():
        try:
            parse_metric_query(line)
        except MetricQuerySyntaxError:
            continue
        plain.append(line)
    assert sorted(plain) == sorted(METRIC_VECTORS)


@pytest.mark.parametrize("text", list(METRIC_VECTORS))
def test_vector_metric_queries_round_trip(text: str) -> None:
    ast = parse_metric_query(text)
    assert parse_metric_query(render_metric_query(ast)) == ast


# --- every syntax of the reference ------------------------------------------------------------------------

SYNTAX: list[tuple[str, MetricQueryAst]] = [
    # space aggregators, none, percentiles, the value filter
    ("system.cpu.idle{*}", q("system.cpu.idle")),
    ("avg:system.cpu.idle{*}", q("system.cpu.idle", agg="avg")),
    ("sum:m{*}", q("m", agg="sum")),
    ("min:m{*}", q("m", agg="min")),
    ("max:m{*}", q("m", agg="max")),
    ("count:m{*}", q("m", agg="count")),
    ("AVG:m{*}", q("m", agg="avg")),
    ("p50:m{*}", q("m", agg="p50")),
    ("p75:m{*}", q("m", agg="p75")),
    ("p99:m{*}", q("m", agg="p99")),
    ("p99.9:m{*}", q("m", agg="p99.9")),
    ("p99.99:m{*}", q("m", agg="p99.99")),
    ("count(v: v>=0.5):m{*}", q("m", agg="count", value_filter=ValueFilter(">=", 0.5))),
    ("count( v : v > -3 ):m{*}", q("m", agg="count", value_filter=ValueFilter(">", -3))),
    # metric names
    ("system.disk/*{*}", q("system.disk/*")),
    ("requests_per_sec{*}", q("requests_per_sec")),
    ("aws.ec2.cpu2{*}", q("aws.ec2.cpu2")),
    # scopes: tag:value, bare tag, wildcards
    ("m{host:my_host}", q("m", t("host", "my_host"))),
    ("m{my_tag}", q("m", t("my_tag"))),
    ("m{apples}", q("m", t("apples"))),
    ("m{pod_name:web-*}", q("m", t("pod_name", "web-*"))),
    ("m{cluster:*-trace}", q("m", t("cluster", "*-trace"))),
    ("m{node:*-prod-*}", q("m", t("node", "*-prod-*"))),
    ("m{region:*east*}", q("m", t("region", "*east*"))),
    ("m{!device:/dev/loop*}", q("m", NOT(t("device", "/dev/loop*")))),
    ("m{url:http://x:80/a}", q("m", t("url", "http://x:80/a"))),
    ("m{env:shop.ist}", q("m", t("env", "shop.ist"))),
    # symbolic syntax
    ("m{host:my_host, device:my_device}", q("m", AND(t("host", "my_host"), t("device", "my_device")))),
    ("m{role:db,!host:x}", q("m", AND(t("role", "db"), NOT(t("host", "x"))))),
    ("m{ ! env:prod , a }", q("m", AND(NOT(t("env", "prod")), t("a")))),
    # functional syntax, keywords in any case
    (
        "m{env:staging AND (availability-zone:us-east-1a OR availability-zone:us-east-1c)}",
        q(
            "m",
            AND(
                t("env", "staging"),
                OR(t("availability-zone", "us-east-1a"), t("availability-zone", "us-east-1c")),
            ),
        ),
    ),
    (
        "m{env:shop.ist AND availability-zone IN (us-east-1a, us-east-1b, us-east4-b)}",
        q(
            "m",
            AND(t("env", "shop.ist"), TagIn("availability-zone", ("us-east-1a", "us-east-1b", "us-east4-b"))),
        ),
    ),
    (
        "m{env:prod AND location NOT IN (atlanta,seattle,las-vegas)}",
        q("m", AND(t("env", "prod"), NOT(TagIn("location", ("atlanta", "seattle", "las-vegas"))))),
    ),
    ("m{a:1 and b:2 or not c:3}", q("m", OR(AND(t("a", "1"), t("b", "2")), NOT(t("c", "3"))))),
    ("m{env in (a, b*)}", q("m", TagIn("env", ("a", "b*")))),
    ("m{env not in (a)}", q("m", NOT(TagIn("env", ("a",))))),
    ("m{NOT (a:1 OR b:2)}", q("m", NOT(OR(t("a", "1"), t("b", "2"))))),
    ("m{a OR b AND c}", q("m", OR(t("a"), AND(t("b"), t("c"))))),
    ("m{(a OR b) AND c}", q("m", AND(OR(t("a"), t("b")), t("c")))),
    ("m{a AND (b AND c) AND ((d))}", q("m", AND(t("a"), t("b"), t("c"), t("d")))),
    ("m{a OR (b OR c)}", q("m", OR(t("a"), t("b"), t("c")))),
    ("m{NOT NOT a}", q("m", NOT(NOT(t("a"))))),
    ("m{in:x AND or:y}", q("m", AND(t("in", "x"), t("or", "y")))),
    # regex and numeric comparisons
    ('m{host:~"web-.*"}', q("m", TagRegex("host", "web-.*"))),
    ('m{host:~"a\\"b\\\\d+"}', q("m", TagRegex("host", 'a"b\\\\d+'))),
    ('m{!host:~"^db[0-9]$"}', q("m", NOT(TagRegex("host", "^db[0-9]$")))),
    ("m{duration:>=100}", q("m", TagCompare("duration", ">=", 100))),
    (
        "m{duration:<1.5e3, errors:>-2}",
        q("m", AND(TagCompare("duration", "<", 1500), TagCompare("errors", ">", -2))),
    ),
    ("m{x:<=0}", q("m", TagCompare("x", "<=", 0))),
    # group by
    ("m{*} by {host}", q("m", group_by=("host",))),
    ("m{*} by {host,device}", q("m", group_by=("host", "device"))),
    ("m{*}by{ host , device }", q("m", group_by=("host", "device"))),
    ("m{*} by {*}", q("m", group_by=("*",))),
    # modifiers
    ("m{*}.rollup(avg, 60)", q("m", rollup=Rollup("avg", 60))),
    ("m{*}.rollup(sum,120)", q("m", rollup=Rollup("sum", 120))),
    ("m{*}.rollup(min)", q("m", rollup=Rollup("min"))),
    ("m{*}.rollup(count, 10)", q("m", rollup=Rollup("count", 10))),
    ("m{*}.rollup(MAX)", q("m", rollup=Rollup("max"))),
    ("m{*}.rollup(30)", q("m", rollup=Rollup(None, 30))),
    ("m{*}.fill(null)", q("m", fill=Fill("null"))),
    ("m{*}.fill(zero)", q("m", fill=Fill("zero"))),
    ("m{*}.fill(linear, 300)", q("m", fill=Fill("linear", 300))),
    ("m{*}.fill(last, 60)", q("m", fill=Fill("last", 60))),
    ("m{*}.fill(true)", q("m", fill=Fill("linear"))),
    ("m{*}.fill(false)", q("m", fill=Fill("null"))),
    ("m{*}.as_count()", q("m", type_modifier="as_count")),
    ("m{*}.as_rate()", q("m", type_modifier="as_rate")),
    ("m{*}.weighted()", q("m", weighted=True)),
    ("m{*}.timeshift(-900)", q("m", timeshift_seconds=-900)),
    ("m{*}.timeshift(60)", q("m", timeshift_seconds=60)),
    ('m{*}.label("CPU \\"user\\"")', q("m", label='CPU "user"')),
    ("m{*}.label('single')", q("m", label="single")),
    (
        "  sum:m{a:b} by {host}.weighted().fill(zero, 30).as_count().rollup(sum, 60).timeshift(-60)  ",
        q(
            "m",
            t("a", "b"),
            "sum",
            group_by=("host",),
            weighted=True,
            fill=Fill("zero", 30),
            type_modifier="as_count",
            rollup=Rollup("sum", 60),
            timeshift_seconds=-60,
        ),
    ),
    ("m{*} .rollup( avg , 60 )", q("m", rollup=Rollup("avg", 60))),
]


@pytest.mark.parametrize(("text", "expected"), SYNTAX)
def test_syntax_gives_its_tree(text: str, expected: MetricQueryAst) -> None:
    assert parse_metric_query(text) == expected


@pytest.mark.parametrize(("text", "expected"), SYNTAX)
def test_syntax_round_trips(text: str, expected: MetricQueryAst) -> None:
    assert parse_metric_query(render_metric_query(expected)) == expected


def test_modifiers_in_any_order_give_one_tree() -> None:
    a = parse_metric_query("sum:m{*}.as_rate().rollup(avg,60).fill(zero)")
    b = parse_metric_query("sum:m{*}.fill(zero).rollup(avg,60).as_rate()")
    assert a == b


def test_seed_documentation_queries() -> None:
    """Metric queries of the graphing JSON seed page."""
    assert parse_metric_query("avg:system.load.5{*}") == q("system.load.5", agg="avg")
    assert parse_metric_query("avg:system.net.bytes_rcvd{device:eth0,host:dsg-demo-1} by {account}") == q(
        "system.net.bytes_rcvd",
        AND(t("device", "eth0"), t("host", "dsg-demo-1")),
        "avg",
        group_by=("account",),
    )
    assert parse_metric_query("avg:system.load.5{role:db} by {host}") == q(
        "system.load.5", t("role", "db"), "avg", group_by=("host",)
    )
    assert parse_metric_query("metric{apples}") == q("metric", t("apples"))


def test_percentile_and_glob_helpers() -> None:
    assert q("m", agg="p99.9").percentile == 99.9
    assert q("m", agg="p50").percentile == 50.0
    assert q("m", agg="avg").percentile is None
    assert q("m").percentile is None
    assert t("host", "web-*").glob == "host:web-*"
    assert t("my_tag").glob == "my_tag"


def test_render_uses_the_syntax_the_tree_allows() -> None:
    assert render_scope(ALL) == "*"
    assert render_scope(AND(t("env", "prod"), NOT(t("host", "a")))) == "env:prod,!host:a"
    assert render_scope(AND(t("env", "prod"), TagIn("r", ("a", "b")))) == "env:prod AND r IN (a, b)"
    assert render_scope(NOT(TagIn("r", ("a",)))) == "r NOT IN (a)"
    assert render_scope(AND(OR(t("a"), t("b")), NOT(AND(t("c"), t("d"))))) == "(a OR b) AND NOT (c AND d)"
    assert (
        render_metric_query(q("m", agg="count", value_filter=ValueFilter("<=", 1.5)))
        == "count(v: v<=1.5):m{*}"
    )


# --- errors -----------------------------------------------------------------------------------------------


def test_mixing_symbolic_and_functional_syntax_is_refused() -> None:
    err = error_of("avg:mymetric{env:prod AND !region:us-east}")
    assert err.position == 26
    assert err.found == "'!'"
    assert str(err) == (
        "invalid metric query at position 26: expected AND, OR or NOT like the rest of this scope "
        "(functional syntax from position 22; AND, OR, NOT, IN and parentheses cannot be mixed with "
        "',' and '!'), found '!'"
    )
    err = error_of("m{a:b, c:d OR e:f}")
    assert (err.position, err.found) == (11, "'OR'")
    assert "symbolic syntax from position 5" in err.expected
    assert error_of("m{!a, (b)}").position == 6
    assert error_of("m{a IN (x), b}").position == 10


ERRORS: list[tuple[str, int, str, str]] = [
    # text, position, expected (substring), found
    ("avg:x{env:prod", 14, "'}' to close the scope opened at position 5", "the end of the query"),
    ("avg:x{env:prod}}", 15, "the end of the query", "'}'"),
    ("avg:x{(env:prod}", 15, "')' to close the '(' at position 6", "'}'"),
    ("avg:x{env:prod)}", 14, "this ')' closes no '('", "')'"),
    ("avg:x env:prod}", 6, "'{' and a scope after the metric name", "'env'"),
    (
        "avg:x{*} by {host",
        17,
        "',' or '}' to close the group keys opened at position 12",
        "the end of the query",
    ),
    ("avg:x{*} by host", 12, "'{' and tag keys after 'by'", "'host'"),
    ("avg:x{*} by {}", 13, "a tag key to group by", "'}'"),
    ("avg:x{*} by {a,a}", 15, "each group key once", "'a' a second time"),
    ("avg:x{*} by {*,a}", 9, "either by {*} or a list of tag keys", "'by'"),
    ("avg:x{*} garbage", 9, "a modifier like .rollup(sum, 60) or the end of the query", "'garbage'"),
    ("avg:x{*}.rollup(avg, 60) x", 25, "the end of the query", "'x'"),
    ("x{}", 2, "'*' or a tag filter", "'}'"),
    ("x{a:b c:d}", 6, "',', AND, OR or '}'", "'c:d'"),
    ("x{a, b c}", 7, "',' or '}'", "'c'"),
    ("x{a AND b c}", 10, "AND, OR or '}'", "'c'"),
    ("x{*, a:b}", 2, "'*' stands only alone", "'*'"),
    ("x{a:b AND}", 9, "a tag filter", "'}'"),
    ("x{a:}", 4, "a value after 'a:'", "'}'"),
    ("x{:b}", 2, "a tag filter", "':'"),
    ("x{IN (a)}", 2, "a tag key before IN", "'IN'"),
    ("x{env:prod IN (a)}", 2, "a tag key without a value before IN", "'env:prod'"),
    ("x{env IN a}", 9, "'(' and a list of values after IN", "'a'"),
    ("x{env IN ()}", 10, "a tag value in the IN list", "')'"),
    ("x{env IN (a b)}", 12, "',' or ')' to close the IN list opened at position 9", "'b'"),
    ("x{a:>=abc}", 6, "a number after 'a:>='", "'abc'"),
    ("x{a:>5x}", 6, "a number after 'a:>'", "'x'"),
    ("x{a:~web}", 5, "a double-quoted regular expression", "'web'"),
    ('x{a:~"("}', 6, "a valid regular expression", "'(' (missing ), unterminated subpattern at position 0)"),
    ('x{a:~"(?=x)y"}', 6, "without lookarounds or backreferences", "'(?='"),
    ('x{a:~"(a)\\1"}', 6, "without lookarounds or backreferences", "'\\1'"),
    ('x{a:~""}', 5, "a non-empty regular expression", "'\"\"'"),
    ('x{a:~"abc}', 10, "'\"' to close the regular expression opened at position 5", "the end of the query"),
    ("median:x{*}", 0, "a space aggregator before ':'", "'median'"),
    ("p100:x{*}", 0, "a space aggregator before ':'", "'p100'"),
    ("p0:x{*}", 0, "a space aggregator before ':'", "'p0'"),
    ("p99.999:x{*}", 0, "a space aggregator before ':'", "'p99.999'"),
    ("avg:{*}", 4, "a metric name starting with a letter", "'{'"),
    ("1abc{*}", 0, "a metric name starting with a letter", "'1abc'"),
    ("a..b{*}", 2, "a metric name without empty segments", "'a..b'"),
    ("", 0, "a metric name starting with a letter", "the end of the query"),
    ("count(v: x<1):m{*}", 9, "'v' in the value filter", "'x'"),
    ("count(v: v=1):m{*}", 10, "a comparison ('<', '<=', '>' or '>=') after 'v'", "'='"),
    ("count(v: v<1:m{*}", 12, "')' to close the value filter opened at position 5", "':'"),
    ("count(v: v<1)x{*}", 13, "':' and the metric name after the value filter", "'x'"),
    ("x{*}.foo()", 5, "a modifier: rollup, fill, as_count, as_rate, weighted, timeshift or label", "'foo'"),
    ("x{*}.rollup", 11, "'(' after .rollup", "the end of the query"),
    ("x{*}.rollup()", 11, ".rollup(aggregator[, seconds])", "0 arguments"),
    ("x{*}.rollup(avg, 60, 1)", 21, ".rollup(aggregator[, seconds])", "3 arguments"),
    ("x{*}.rollup(median)", 12, "a rollup aggregator: avg, sum, min, max or count", "'median'"),
    ("x{*}.rollup(avg, 1.5)", 17, "a whole number of seconds in .rollup()", "'1.5'"),
    ("x{*}.rollup(avg, -60)", 17, "a positive number of seconds in .rollup()", "'-60'"),
    ("x{*}.rollup(avg 60)", 16, "',' or ')' to close the arguments opened at position 11", "'60'"),
    ("x{*}.rollup(avg,60).rollup(sum)", 20, "at most one .rollup() in a query", "'rollup' a second time"),
    ("x{*}.as_count().as_rate()", 16, "at most one .as_count() or .as_rate()", "'as_rate' a second time"),
    ("x{*}.as_count(1)", 14, ".as_count() without arguments", "1 argument"),
    ("x{*}.fill(previous)", 10, "a fill method: null, zero, linear or last", "'previous'"),
    ("x{*}.fill(last, 0)", 16, "a positive number of seconds in .fill()", "'0'"),
    ("x{*}.fill('zero')", 10, "a fill method", "'zero'"),
    ("x{*}.timeshift(1.5)", 15, "a whole number of seconds in .timeshift()", "'1.5'"),
    ("x{*}.label(foo)", 11, 'a quoted label, as in .label("CPU user")', "'foo'"),
    ('x{*}.label("open', 16, "'\"' to close the string opened at position 11", "the end of the query"),
    ("x{*}.rollup(#)", 12, "an argument: a word, a number or a quoted string", "'#'"),
]


@pytest.mark.parametrize(("text", "position", "expected", "found"), ERRORS)
def test_errors_say_where_what_and_what_instead(text: str, position: int, expected: str, found: str) -> None:
    err = error_of(text)
    assert (err.position, err.found) == (position, found), str(err)
    assert expected in err.expected
    assert str(err) == f"invalid metric query at position {position}: expected {err.expected}, found {found}"


def test_limits() -> None:
    err = error_of("m{" + "a," * (MAX_QUERY_LENGTH // 2) + "a}")
    assert err.position == MAX_QUERY_LENGTH
    deep = "m{" + "(" * MAX_NESTING_DEPTH + "a" + ")" * MAX_NESTING_DEPTH + "}"
    assert "levels of nested parentheses" in error_of(deep).expected
    assert parse_metric_query(
        "m{" + "(" * (MAX_NESTING_DEPTH - 1) + "a" + ")" * (MAX_NESTING_DEPTH - 1) + "}"
    ).scope == t("a")
    assert "levels of nested" in error_of("m{" + "NOT " * 2000 + "a}").expected
    assert "at most 200 characters" in error_of("a" * 201 + "{*}").expected


def test_errors_are_value_errors_that_pickle() -> None:
    err = error_of("x{")
    assert isinstance(err, QuerySyntaxError)
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.position, again.expected, again.found) == (err.position, err.expected, err.found)
    assert str(again) == str(err)


# --- properties -------------------------------------------------------------------------------------------

QUERY_ALPHABET = "avgsumcountp9.:{}*,!()~\"'<>=0123456789 ANDORNTIby-_/xyz#\\"


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(alphabet=QUERY_ALPHABET, max_size=80)))
def test_arbitrary_text_raises_only_the_parser_error(text: str) -> None:
    try:
        parse_metric_query(text)
    except MetricQuerySyntaxError as err:
        assert 0 <= err.position <= len(text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "m{",
                "avg:m{",
                "a:b",
                "a",
                "*",
                ",",
                "!",
                " AND ",
                " OR ",
                "NOT ",
                " IN ",
                "(",
                ")",
                "}",
                " by {",
                "host",
                ".rollup(",
                "sum",
                "60",
                ".fill(",
                ".as_count()",
                '~"x"',
                ">=5",
            ]
        ),
        max_size=20,
    ).map("".join)
)
def test_query_like_text_raises_only_the_parser_error(text: str) -> None:
    try:
        parse_metric_query(text)
    except MetricQuerySyntaxError as err:
        assert 0 <= err.position <= len(text)


_KEYWORDS = {"and", "or", "not", "in", "by"}
tag_keys = st.from_regex(r"[a-z][a-z0-9_\-]{0,6}", fullmatch=True).filter(lambda k: k not in _KEYWORDS)
tag_values = st.from_regex(r"[a-z0-9*_./\-:]{1,8}", fullmatch=True)
regexes = st.from_regex(r"[a-z.^$][a-z0-9.+*?\-]{0,6}", fullmatch=True).filter(lambda p: _compiles(p))
numbers = st.one_of(
    st.integers(-(10**6), 10**6).map(float), st.floats(allow_nan=False, allow_infinity=False, width=32)
)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


leaves: st.SearchStrategy[Scope] = st.one_of(
    st.builds(TagMatch, tag_keys, st.none() | tag_values),
    st.builds(TagIn, tag_keys, st.lists(tag_values, min_size=1, max_size=3).map(tuple)),
    st.builds(TagRegex, tag_keys, regexes),
    st.builds(TagCompare, tag_keys, st.sampled_from(["<", "<=", ">", ">="]), numbers),
)


def _and(operands: list[Scope]) -> Scope:
    flat: list[Scope] = []
    for o in operands:
        flat.extend(o.operands if isinstance(o, ScopeAnd) else (o,))
    return ScopeAnd(tuple(flat))


def _or(operands: list[Scope]) -> Scope:
    flat: list[Scope] = []
    for o in operands:
        flat.extend(o.operands if isinstance(o, ScopeOr) else (o,))
    return ScopeOr(tuple(flat))


scopes: st.SearchStrategy[Scope] = st.one_of(
    st.just(ALL),
    st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, min_size=2, max_size=3).map(_and),
            st.lists(children, min_size=2, max_size=3).map(_or),
            st.builds(ScopeNot, children),
        ),
        max_leaves=8,
    ),
)

metric_names = st.from_regex(r"[a-z][a-z0-9_]{0,5}(\.[a-z0-9_]{1,5}){0,2}(/\*)?", fullmatch=True)
space_aggregators = st.sampled_from([None, "avg", "sum", "min", "max", "count", "p50", "p95", "p99.9"])


@st.composite
def metric_queries(draw: st.DrawFn) -> MetricQueryAst:
    agg = draw(space_aggregators)
    value_filter = draw(st.none() | st.builds(ValueFilter, st.sampled_from(["<", "<=", ">", ">="]), numbers))
    if value_filter is not None:
        agg = "count"
    group_by = draw(
        st.one_of(
            st.just(()), st.just(("*",)), st.lists(tag_keys, min_size=1, max_size=3, unique=True).map(tuple)
        )
    )
    seconds = st.integers(1, 10**6)
    return MetricQueryAst(
        metric=draw(metric_names),
        scope=draw(scopes),
        space_aggregator=agg,
        value_filter=value_filter,
        group_by=group_by,
        rollup=draw(
            st.none()
            | st.builds(Rollup, st.sampled_from(["avg", "sum", "min", "max", "count"]), st.none() | seconds)
            | st.builds(Rollup, st.none(), seconds)
        ),
        fill=draw(
            st.none()
            | st.builds(Fill, st.sampled_from(["null", "zero", "linear", "last"]), st.none() | seconds)
        ),
        type_modifier=draw(st.sampled_from([None, "as_count", "as_rate"])),
        weighted=draw(st.booleans()),
        timeshift_seconds=draw(st.none() | st.integers(-(10**7), 10**7)),
        label=draw(st.none() | st.text(max_size=12)),
    )


@settings(max_examples=400, deadline=None)
@given(metric_queries())
def test_rendered_trees_parse_back_to_themselves(ast: MetricQueryAst) -> None:
    text = render_metric_query(ast)
    assert parse_metric_query(text) == ast, text
