"""The PostHog metrics planner on a real DuckDB store: aggregations across series, counters, histogram
quantiles, labels and filters, the shared grid, ordering and caps, formulas, names and every refusal."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sextant.core.metrics import MetricKind, PointBatch, Temporality, normalize_tags
from sextant.core.timeutil import DAY_MS, now_ms
from sextant.query import posthog_metrics as pm
from sextant.query.posthog_formula import evaluate, parse_formula
from sextant.query.posthog_metrics import Clause, Filter, MetricsQuery, Scope
from sextant.storage.duckdb.store import DuckDBStore

M = 60_000
T0 = (now_ms() // 3_600_000 - 2) * 3_600_000
ORG = 1


def add_gauge(
    batch: PointBatch,
    metric: str,
    tags: list[str],
    points: list[tuple[int, float]],
    resource: tuple[str, ...] = (),
) -> None:
    """A gauge series; `resource`: which of its tags came from the resource (as OTLP sends them)."""
    sid = batch.add_series(ORG, metric, normalize_tags([*tags, *resource]), normalize_tags(resource))
    batch.add_values(
        org_id=ORG,
        series_id=sid,
        kind=MetricKind.GAUGE,
        times_ms=[t for t, _ in points],
        values=[v for _, v in points],
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("posthog-planner") / "s.duckdb")
    batch = PointBatch()
    # Two readings of shard a per minute (last and mean differ), one of shard b, one untagged series.
    service = ("service.name:q", "service:q")
    add_gauge(batch, "depth", ["shard:a"], [(T0, 1.0), (T0 + 30_000, 3.0)], service)
    add_gauge(batch, "depth", ["shard:b"], [(T0, 10.0), (T0 + M, 20.0)], service)
    # The same key as a resource and as a data point attribute, with other values.
    add_gauge(batch, "scoped", ["host:p1"], [(T0, 1.0)], ("host:r1",))
    add_gauge(batch, "scoped", ["host:r1"], [(T0, 2.0)])
    add_gauge(batch, "scoped", ["pod:x"], [(T0, 4.0)], ("host:r1",))
    add_gauge(batch, "depth", ["env:"], [(T0 + M, 100.0)])
    # A cumulative counter with a reset, by route.
    for route, values in [("/a", [0.0, 60.0, 120.0, 30.0]), ("/b", [5.0, 5.0, 65.0, 125.0])]:
        sid = batch.add_series(ORG, "reqs", normalize_tags([f"route:{route}"]))
        for k, v in enumerate(values):
            batch.add(
                org_id=ORG,
                series_id=sid,
                time_ms=T0 + k * M,
                kind=MetricKind.COUNT,
                value=v,
                temporality=Temporality.CUMULATIVE,
                monotonic=True,
            )
    # Delta histograms by shard, same layout; one with another layout under another metric.
    for shard, rows in [("a", [[1, 2, 1], [0, 4, 0]]), ("b", [[3, 0, 1], [1, 1, 0]])]:
        sid = batch.add_series(ORG, "latency", normalize_tags([f"shard:{shard}"]))
        for k, counts in enumerate(rows):
            batch.add(
                org_id=ORG,
                series_id=sid,
                time_ms=T0 + k * M,
                kind=MetricKind.HISTOGRAM,
                value=0.0,
                count=sum(counts),
                bounds=[1.0, 10.0],
                bucket_counts=counts,
                temporality=Temporality.DELTA,
            )
    for shard, bounds in [("a", [1.0, 10.0]), ("b", [5.0, 50.0])]:
        sid = batch.add_series(ORG, "mixed", normalize_tags([f"shard:{shard}"]))
        batch.add(
            org_id=ORG,
            series_id=sid,
            time_ms=T0,
            kind=MetricKind.HISTOGRAM,
            value=0.0,
            count=1,
            bounds=bounds,
            bucket_counts=[1, 0, 0],
            temporality=Temporality.DELTA,
        )
    # One point of each remaining kind, for characterize's aggregation by type.
    for metric, kind in [
        ("exp", MetricKind.EXPONENTIAL_HISTOGRAM),
        ("quantiles", MetricKind.SUMMARY),
        ("dist", MetricKind.DISTRIBUTION),
        ("dd.rate", MetricKind.RATE),
    ]:
        sid = batch.add_series(ORG, metric, ())
        batch.add(
            org_id=ORG,
            series_id=sid,
            time_ms=T0 + 15 * M,
            kind=kind,
            value=4.0,
            count=2,
            samples=[1.0, 3.0] if kind is MetricKind.DISTRIBUTION else None,
            bounds=[0.0, 1.0] if kind is MetricKind.EXPONENTIAL_HISTOGRAM else None,
            bucket_counts=[0, 1, 1] if kind is MetricKind.EXPONENTIAL_HISTOGRAM else None,
            interval_ms=10_000 if kind is MetricKind.RATE else None,
        )
    # 101 series, for the cap; an old metric, for the names' 7 days.
    for i in range(101):
        add_gauge(batch, "many", [f"i:{i:03d}"], [(T0, float(i))])
    add_gauge(batch, "old.metric", [], [(now_ms() - 8 * DAY_MS, 1.0)])
    add_gauge(batch, "Depth.other", [], [(T0, 1.0)])
    # Another organization's depth.
    other = batch.add_series(2, "depth", ("shard:a",))
    batch.add_values(org_id=2, series_id=other, kind=MetricKind.GAUGE, times_ms=[T0], values=[999.0])
    opened.append_points(batch)
    yield opened
    opened.close()


def query(
    *clauses: Clause, minutes: int = 4, interval: str | None = "minute", formula: str | None = None
) -> MetricsQuery:
    return MetricsQuery(clauses, T0, T0 + minutes * M, interval, formula)


def run(store: DuckDBStore, q: MetricsQuery) -> list[pm.OutputSeries]:
    results = pm.run_clauses(store, ORG, q, 10)
    function = None
    if q.formula is not None:
        node = parse_formula(q.formula, frozenset(c.name for c in q.clauses))

        def function(values):  # type: ignore[no-untyped-def]
            return evaluate(node, values)

    _, series = pm.assemble(results, function)
    return series


def single(store: DuckDBStore, aggregation: str, **options: object) -> list[float | None]:
    (series,) = run(store, query(Clause("a", "depth", aggregation, **options)))  # type: ignore[arg-type]
    return series.values


def test_aggregations_resolve_each_series_first(store: DuckDBStore) -> None:
    # Minute 0: a's last reading 3 (mean 2), b 10; minute 1: b 20, the untagged series 100.
    assert single(store, "sum") == [13.0, 120.0]
    assert single(store, "avg") == [6.0, 60.0]
    assert single(store, "count") == [2.0, 2.0]
    assert single(store, "min") == [3.0, 20.0]
    assert single(store, "max") == [10.0, 100.0]
    assert single(store, "p95") == pytest.approx([3 + 7 * 0.95, 20 + 80 * 0.95])


def test_group_by_labels_missing_key_and_service_name(store: DuckDBStore) -> None:
    series = run(store, query(Clause("a", "depth", "sum", group_by=("shard",))))
    # Largest first; the series without the key is labelled ''; zero where a group had no data.
    assert [(s.labels, s.values) for s in series] == [
        ({"shard": ""}, [0.0, 100.0]),
        ({"shard": "b"}, [10.0, 20.0]),
        ({"shard": "a"}, [3.0, 0.0]),
    ]
    for key in ("service_name", "service.name"):
        by_service = run(store, query(Clause("a", "depth", "sum", group_by=(key,))))
        assert [(s.labels, s.values) for s in by_service] == [
            ({key: ""}, [0.0, 100.0]),
            ({key: "q"}, [13.0, 20.0]),
        ]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter("shard", "eq", "a"), [3.0]),
        (Filter("shard", "neq", "a"), [10.0, 120.0]),
        (Filter("shard", "eq", ""), [100.0]),
        (Filter("env", "eq", ""), [13.0, 120.0]),
        (Filter("shard", "regex", "^[ab]$"), [13.0, 20.0]),
        (Filter("shard", "regex", "b"), [10.0, 20.0]),
        (Filter("shard", "not_regex", "a"), [10.0, 120.0]),
        # A pattern that matches the empty string matches series without the key too.
        (Filter("shard", "regex", "^$"), [100.0]),
        (Filter("service_name", "eq", "q", "resource"), [13.0, 20.0]),
        (Filter("shard", "eq", "a*"), None),
    ],
)
def test_filters(store: DuckDBStore, flt: Filter, expected: list[float] | None) -> None:
    series = run(store, query(Clause("a", "depth", "sum", filters=(flt,))))
    if expected is None:
        assert [s.values for s in series] == [[]]
    else:
        assert [s.values for s in series] == [expected]


@pytest.mark.parametrize(
    ("scope", "value", "expected"),
    [
        ("resource", "r1", [5.0]),
        ("attribute", "r1", [2.0]),
        ("attribute", "p1", [1.0]),
        # auto: the resource's value where the resource has the key, else the data point's.
        ("auto", "r1", [7.0]),
        ("auto", "p1", None),
    ],
)
def test_filter_scopes_tell_resource_and_data_point_attributes_apart(
    store: DuckDBStore, scope: Scope, value: str, expected: list[float] | None
) -> None:
    flt = Filter("host", "eq", value, scope)
    series = run(store, query(Clause("a", "scoped", "sum", filters=(flt,))))
    assert [s.values[:1] for s in series] == ([[]] if expected is None else [expected])


def test_counters_increase_and_rate_with_a_reset(store: DuckDBStore) -> None:
    # /a: 0, +60, +60, reset to 30 (+30); /b: 0, 0, +60, +60.
    (increase,) = run(store, query(Clause("a", "reqs", "increase")))
    assert increase.values == [0.0, 60.0, 120.0, 90.0]
    (rate,) = run(store, query(Clause("a", "reqs", "rate")))
    assert rate.values == [0.0, 1.0, 2.0, 1.5]
    by_route = run(store, query(Clause("a", "reqs", "increase", group_by=("route",)), interval="minute_5"))
    assert [(s.labels["route"], s.values) for s in by_route] == [("/a", [150.0]), ("/b", [120.0])]


def test_histogram_quantile_sums_the_groups_buckets(store: DuckDBStore) -> None:
    (series,) = run(store, query(Clause("a", "latency", "histogram_quantile", quantile=0.5)))
    # Minute 0: [4, 2, 2] rank 4 -> end of the first bucket (1.0); minute 1: [1, 5, 0] rank 3 -> 1 + 9 * 2/5.
    assert series.values == pytest.approx([1.0, 1.0 + 9 * 2 / 5])
    grouped = run(
        store, query(Clause("a", "latency", "histogram_quantile", quantile=0.5, group_by=("shard",)))
    )
    assert {s.labels["shard"]: s.values for s in grouped}["b"] == pytest.approx([2 / 3, 1.0])


def test_histogram_bounds_that_differ_are_refused(store: DuckDBStore) -> None:
    with pytest.raises(pm.QueryError, match="histogram bounds differ across the selected series"):
        run(store, query(Clause("a", "mixed", "histogram_quantile", quantile=0.5)))
    (one,) = run(
        store,
        query(
            Clause("a", "mixed", "histogram_quantile", quantile=0.5, filters=(Filter("shard", "eq", "b"),))
        ),
    )
    assert one.values == pytest.approx([2.5])


def test_shared_grid_zero_fill_and_formula(store: DuckDBStore) -> None:
    a = Clause("a", "depth", "sum", filters=(Filter("shard", "eq", "a"),))
    b = Clause("b", "depth", "sum", filters=(Filter("shard", "eq", "b"),))
    series = run(store, query(a, b))
    assert [(s.clause, s.values) for s in series] == [("a", [3.0, 0.0]), ("b", [10.0, 20.0])]
    (ratio,) = run(store, query(a, b, formula="(b - a) / a"))
    # Division by zero is 0.
    assert (ratio.clause, ratio.metric_name, ratio.values) == ("formula", None, [7 / 3, 0.0])


def test_formula_matches_label_sets_and_broadcasts_an_ungrouped_clause(store: DuckDBStore) -> None:
    grouped = Clause("a", "depth", "sum", group_by=("shard",))
    total = Clause("t", "depth", "sum")
    only_b = Clause("b", "depth", "sum", group_by=("shard",), filters=(Filter("shard", "eq", "b"),))
    shares = run(store, query(grouped, total, formula="a / t * 100"))
    assert [(s.labels, s.values) for s in shares] == [
        ({"shard": ""}, [0.0, pytest.approx(100 / 120 * 100)]),
        ({"shard": "a"}, [pytest.approx(3 / 13 * 100), 0.0]),
        ({"shard": "b"}, [pytest.approx(10 / 13 * 100), pytest.approx(20 / 120 * 100)]),
    ]
    paired = run(store, query(grouped, only_b, formula="a + b"))
    assert [(s.labels, s.values) for s in paired] == [({"shard": "b"}, [20.0, 40.0])]


def test_at_most_100_series_per_clause_largest_first(store: DuckDBStore) -> None:
    series = run(store, query(Clause("a", "many", "sum", group_by=("i",)), minutes=1))
    assert len(series) == pm.MAX_SERIES_PER_CLAUSE
    assert [s.labels["i"] for s in series[:2]] == ["100", "099"]
    assert series[-1].labels["i"] == "001"


def test_no_data_is_one_empty_series(store: DuckDBStore) -> None:
    (series,) = run(store, query(Clause("x", "nothing", "sum")))
    assert (series.labels, series.values, series.metric_name, series.clause) == ({}, [], "nothing", "x")
    (formula,) = run(store, query(Clause("x", "nothing", "sum"), formula="x * 2"))
    assert (formula.metric_name, formula.clause) == (None, "formula")
    # Another organization's metric is not this one's.
    assert pm.run_clauses(store, 3, query(Clause("a", "depth", "sum")), 10)[0].rows.row_count == 0


def test_metric_type_constrains_to_the_metrics_type(store: DuckDBStore) -> None:
    assert single(store, "sum", metric_type="gauge") == [13.0, 120.0]
    (series,) = run(store, query(Clause("a", "depth", "sum", metric_type="sum")))
    assert series.values == []


def test_interval_ladder_and_week_alignment(store: DuckDBStore) -> None:
    assert pm.pick_interval(0, 60_000) == "second"
    assert pm.pick_interval(0, 61_000) == "minute"
    assert pm.pick_interval(0, 60 * M) == "minute"
    assert pm.pick_interval(0, 61 * M) == "minute_5"
    assert pm.pick_interval(0, 31 * DAY_MS) == "day"
    results = pm.run_clauses(
        store, ORG, MetricsQuery((Clause("a", "depth", "sum"),), T0 - 20 * DAY_MS, T0 + 5 * M, "week"), 10
    )
    times = results[0].rows.times
    assert all((t - pm.WEEK_ORIGIN_MS) % (7 * DAY_MS) == 0 for t in times)


@pytest.mark.parametrize(
    ("q", "message"),
    [
        (query(Clause("a", "depth", "histogram_quantile")), "histogram_quantile requires a quantile"),
        (query(Clause("a", "depth", "histogram_quantile", quantile=1.0)), "quantile must be in (0, 1)"),
        (query(), "at least one clause is required"),
        (query(Clause("a", "depth", "median")), "Unsupported aggregation: 'median'"),
        (query(Clause("a", "depth", "sum", metric_type="counter")), "Unknown metric_type: 'counter'"),
        (
            query(*[Clause(str(i), "depth", "sum") for i in range(11)]),
            "at most 10 clauses are allowed per query",
        ),
        (MetricsQuery((Clause("a", "depth", "sum"),), T0, T0), "date_to must be after date_from"),
        (query(Clause("a", "depth", "sum"), Clause("a", "reqs", "sum")), "clause names must be unique"),
        (
            MetricsQuery((Clause("a", "depth", "sum"),), T0, T0 + 31 * DAY_MS + 1),
            "date range too wide; the maximum span is 31 days",
        ),
        (
            MetricsQuery((Clause("a", "depth", "sum"),), T0, T0 + 10_001_000, "second"),
            "interval 'second' produces more than 10000 buckets over this range; "
            "use a coarser interval or a narrower range",
        ),
        (
            query(Clause("a", "depth", "sum", filters=(Filter("k", "regex", "(a"),))),
            "Invalid regular expression for filter 'k': missing ), unterminated subpattern at position 0",
        ),
        (
            query(Clause("a", "depth", "sum", filters=(Filter("k", "regex", "a(?=b)"),))),
            "Invalid regular expression for filter 'k': lookaround, atomic groups and conditionals are not "
            "supported (patterns are RE2 syntax)",
        ),
        (
            query(Clause("a", "depth", "sum", filters=(Filter("k", "not_regex", r"(a)\1"),))),
            "Invalid regular expression for filter 'k': backreferences are not supported "
            "(patterns are RE2 syntax)",
        ),
    ],
)
def test_refusals(store: DuckDBStore, q: MetricsQuery, message: str) -> None:
    with pytest.raises(pm.QueryError) as caught:
        pm.run_clauses(store, ORG, q, 10)
    assert str(caught.value) == message


def test_row_limit(store: DuckDBStore) -> None:
    batch = PointBatch()
    add_gauge(batch, "dense", [], [(T0 + k * 1000, 1.0) for k in range(10_000)])
    store.append_points(batch)
    fits = MetricsQuery((Clause("a", "dense", "sum"),), T0, T0 + 9_999_000, "second")
    assert pm.run_clauses(store, ORG, fits, 10)[0].rows.row_count == 9_999
    full = MetricsQuery((Clause("a", "dense", "sum"),), T0, T0 + 10_000_000, "second")
    with pytest.raises(pm.QueryError, match=r"^query produced too many \(time bucket, group\) rows; "):
        pm.run_clauses(store, ORG, full, 10)


def test_metric_names_and_has_metrics(store: DuckDBStore) -> None:
    names = pm.metric_names(store, ORG, "depth", 100, now_ms(), 10)
    # Exact (any case) first, then the most recently seen; the 8-day-old metric is not listed.
    assert names[0] == ("depth", "gauge")
    assert set(names) == {("depth", "gauge"), ("Depth.other", "gauge")}
    assert ("reqs", "sum") in pm.metric_names(store, ORG, "", 100, now_ms(), 10)
    assert ("latency", "histogram") in pm.metric_names(store, ORG, "LAT", 100, now_ms(), 10)
    assert not pm.metric_names(store, ORG, "old", 100, now_ms(), 10)
    assert len(pm.metric_names(store, ORG, "", 2, now_ms(), 10)) == 2
    assert pm.has_metrics(store, ORG, now_ms(), 10)
    assert not pm.has_metrics(store, 99, now_ms(), 10)


def test_characterize_without_data_is_flat(store: DuckDBStore) -> None:
    report = pm.characterize(
        store, ORG, pm.CharacterizeRequest("nothing", T0 + 10 * M, T0 + 20 * M), now_ms(), 10
    )
    assert (report.aggregation, report.interval, report.statistics.direction) == ("avg", "minute", "flat")
    assert (report.movers, report.points, report.onset_ms) == ([], [], None)


def test_values_null_where_not_finite() -> None:
    rows = pm.Rows(
        ("k",), [("x",)], np.array([0, 60_000]), np.array([[np.inf, 1.0]]), np.array([[True, True]])
    )
    series = pm._clause_series(pm.ClauseResult(Clause("a", "m", "sum"), rows), np.array([0, 60_000]))
    assert np.isnan(series.values[0, 0])


@pytest.mark.parametrize(
    ("metric", "aggregation"),
    [
        ("depth", "avg"),
        ("reqs", "rate"),
        ("latency", "histogram_quantile"),
        ("exp", "p95"),
        ("quantiles", "avg"),
        ("dist", "histogram_quantile"),
        ("dd.rate", "rate"),
        ("old.metric", "avg"),
    ],
)
def test_characterize_picks_the_aggregation_by_type(
    store: DuckDBStore, metric: str, aggregation: str
) -> None:
    asked = pm.CharacterizeRequest(metric, T0 + 10 * M, T0 + 20 * M, baseline_from=T0)
    report = pm.characterize(store, ORG, asked, now_ms(), 10)
    assert report.aggregation == aggregation


def test_characterize_histograms_and_distributions(store: DuckDBStore) -> None:
    latency = pm.characterize(store, ORG, pm.CharacterizeRequest("latency", T0 + M, T0 + 2 * M), now_ms(), 10)
    # Minute 0's summed buckets [4, 2, 2]: the rank 7.6 falls in the overflow bucket, the last bound; minute
    # 1's [1, 5, 0]: the rank 5.7 is 4.7 into the second bucket.
    assert latency.points == [
        (T0, 10.0),
        (T0 + M, pytest.approx(1.0 + 9 * 4.7 / 5)),
    ]
    # A distribution's quantile is that of its raw values.
    dist = pm.characterize(store, ORG, pm.CharacterizeRequest("dist", T0 + 15 * M, T0 + 16 * M), now_ms(), 10)
    assert dist.points == [(T0 + 15 * M, pytest.approx(1.0 + 2.0 * 0.95))]


def test_characterize_drills_into_four_candidate_keys_at_most(store: DuckDBStore) -> None:
    def keys_moved(*keys: str) -> set[str]:
        asked = pm.CharacterizeRequest("depth", T0 + M, T0 + 2 * M, candidate_keys=keys)
        return {m.key for m in pm.characterize(store, ORG, asked, now_ms(), 10).movers}

    # A key no series has labels every series '': the whole metric, which moved.
    assert keys_moved("x1", "x2", "x3", "shard") == {"x1", "x2", "x3", "shard"}
    assert keys_moved("x1", "x2", "x3", "x4", "shard") == {"x1", "x2", "x3", "x4"}


def test_label_sets_without_data_in_the_range_have_no_series(store: DuckDBStore) -> None:
    # In minute 1 only shard b and the untagged series report; shard a has a series but no point there.
    late = MetricsQuery((Clause("a", "depth", "sum", group_by=("shard",)),), T0 + M, T0 + 2 * M, "minute")
    _, series = pm.assemble(pm.run_clauses(store, ORG, late, 10), None)
    assert [s.labels for s in series] == [{"shard": ""}, {"shard": "b"}]
    # An ungrouped clause without data next to one with data: only the one with data has a series.
    both = MetricsQuery(
        (Clause("a", "depth", "sum", filters=(Filter("shard", "eq", "a"),)), Clause("b", "depth", "sum")),
        T0 + M,
        T0 + 2 * M,
        "minute",
    )
    _, series = pm.assemble(pm.run_clauses(store, ORG, both, 10), None)
    assert [(s.clause, s.values) for s in series] == [("b", [120.0])]
