"""Planning Datadog metric queries: `by {*}` labels, `count(v: ...)` plans, and the unit a plan leaves."""

from __future__ import annotations

import numpy as np
import pytest

from sextant.core.units import BY_NAME, MetricUnit
from sextant.query.datadog_metrics import UnsupportedQuery, label_by_every_tag, plan
from sextant.query.metric_syntax import parse_metric_query
from sextant.series.frame import SeriesFrame
from sextant.series.space_aggregation import aggregate_groups

NAN = float("nan")


def stored(*rows: tuple[tuple[str, ...], list[float]]) -> SeriesFrame:
    """Stored series as the store answers an ungrouped query: one row per series, with its tags."""
    values = np.array([v for _, v in rows], dtype=float)
    times = np.arange(values.shape[1], dtype=np.int64) * 60_000
    return SeriesFrame(times, values, (), [()] * len(rows), 60_000, tags=[t for t, _ in rows])


def test_every_tag_labels_each_series_with_its_own_tags() -> None:
    frame = stored(
        (("env:prod", "host:a"), [1.0, 2.0]),
        (("host:b", "role:db", "role:cache"), [3.0, NAN]),
        (("host:c",), [NAN, NAN]),  # no point in the window: not a group
        (("env:prod", "host:a", "production"), [5.0, 6.0]),  # told apart from the first only by a bare tag
    )
    labelled = label_by_every_tag(frame)
    assert labelled.group_by == ("env", "host", "role")
    # A key with several values groups by its first (as a named key does); bare tags are not keys.
    assert labelled.labels == [("prod", "a", None), (None, "b", "cache"), ("prod", "a", None)]
    grouped = aggregate_groups(labelled, "avg")
    assert [grouped.group_tags(i) for i in range(len(grouped))] == [
        ["env:prod", "host:a"],
        ["host:b", "role:cache"],
    ]
    np.testing.assert_array_equal(grouped.values, [[3.0, 4.0], [3.0, NAN]])


def test_by_every_tag_plans_an_ungrouped_read() -> None:
    for kind in ("gauge", "distribution"):
        planned = plan(parse_metric_query("avg:m{*} by {*}"), kind)
        assert planned.every_tag and planned.group_by == ()
    named = plan(parse_metric_query("avg:m{*} by {host}"), "gauge")
    assert not named.every_tag and named.group_by == ("host",)


def test_count_by_value_counts_the_samples_of_distributions_only() -> None:
    planned = plan(parse_metric_query("count(v: v<=0.5):latency{env:prod} by {service}"), "distribution")
    assert (planned.samples, planned.value_filter, planned.group_by) == ("count", ("<=", 0.5), ("service",))
    # A metric not stored yet: the same plan (its answer is empty).
    assert plan(parse_metric_query("count(v: v>1):nothing{*}"), None).value_filter == (">", 1.0)
    with pytest.raises(UnsupportedQuery, match=r"raw values of a distribution; m is a gauge"):
        plan(parse_metric_query("count(v: v<1):m{*}"), "gauge")
    with pytest.raises(UnsupportedQuery, match=r"m is a histogram \(bucket counts only\)"):
        plan(parse_metric_query("count(v: v<1):m{*}"), "histogram")


@pytest.mark.parametrize(
    ("query", "kind", "unit"),
    [
        ("avg:m{*}", "gauge", ("byte", None)),
        ("sum:m{*}.as_count()", "count", ("byte", None)),
        ("sum:m{*}.as_rate()", "count", ("byte", "second")),
        ("sum:m{*}", "rate", ("byte", "second")),
        ("sum:m{*}.as_count()", "rate", ("byte", None)),
        ("sum:m{*}.as_rate()", "rate", ("byte", "second")),
        ("count:m{*}", "gauge", None),
        ("avg:m{*}.rollup(count)", "gauge", None),
        ("avg:m{*}.rollup(max, 60)", "gauge", ("byte", None)),
        ("p99:m{*}", "distribution", ("byte", None)),
        ("count:m{*}", "distribution", None),
        ("count(v: v<1):m{*}", "distribution", None),
    ],
)
def test_the_unit_a_plan_leaves(query: str, kind: str, unit: tuple[str, str | None] | None) -> None:
    # A rate metric's metadata usually says per second; the others are plain bytes.
    per = BY_NAME["second"] if kind == "rate" else None
    metric_unit = MetricUnit(BY_NAME["byte"], per)
    got = plan(parse_metric_query(query), kind).unit(metric_unit)
    want = (
        None if unit is None else MetricUnit(BY_NAME[unit[0]], None if unit[1] is None else BY_NAME[unit[1]])
    )
    assert got == want
    assert plan(parse_metric_query(query), kind).unit(None) is None
