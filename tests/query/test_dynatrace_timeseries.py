"""The Timeseries API v1 planner on DuckDB: slots and resolutions, entity keys, kinds, TOTAL and predict,
against points written here and computed here."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sextant.core.metrics import MetricKind, PointBatch, normalize_tags
from sextant.core.timeutil import DAY_MS, HOUR_MS, now_ms
from sextant.query.dynatrace_timeseries import (
    MINUTE_MS,
    DataRequest,
    UnknownEntities,
    aggregation_types,
    dimensions,
    resolution_ms,
    run,
    synthetic_entity,
)
from sextant.storage.duckdb.store import DuckDBStore

NOW = now_ms()
T0 = (NOW - 30 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
ORG = 1


def _add(batch: PointBatch, metric: str, tags: list[str], values: list[float], kind: MetricKind) -> None:
    sid = batch.add_series(ORG, metric, normalize_tags(tags))
    times = [T0 + k * 30_000 for k in range(len(values))]
    batch.add_values(org_id=ORG, series_id=sid, kind=kind, times_ms=times, values=values)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    opened = DuckDBStore(tmp_path_factory.mktemp("dynatrace") / "s.duckdb")
    batch = PointBatch()
    # Two points a minute for 4 minutes per series.
    _add(batch, "m", ["dt.entity.host:HOST-A", "cpu:0"], [1, 2, 3, 4, 5, 6, 7, 8], MetricKind.GAUGE)
    _add(batch, "m", ["dt.entity.host:HOST-A", "cpu:1"], [10, 20, 30, 40, 50, 60, 70, 80], MetricKind.GAUGE)
    _add(batch, "m", ["dt.entity.host:HOST-A", "dt.entity.disk:DISK-1"], [5] * 8, MetricKind.GAUGE)
    _add(batch, "m", ["region:eu", "canary"], [100] * 8, MetricKind.GAUGE)
    _add(batch, "m", ["region:us"], [200] * 8, MetricKind.GAUGE)
    sid = batch.add_series(ORG, "latency", ("dt.entity.service:SERVICE-1",))
    for k, samples in enumerate(([1.0, 2.0, 3.0, 4.0], [10.0, 20.0])):
        batch.add(
            org_id=ORG,
            series_id=sid,
            time_ms=T0 + k * MINUTE_MS,
            kind=MetricKind.DISTRIBUTION,
            value=sum(samples),
            count=len(samples),
            min=min(samples),
            max=max(samples),
            samples=samples,
        )
    opened.append_points(batch)
    yield opened
    opened.close()


def _run(store: DuckDBStore, **fields: object) -> dict[str, list[float | None]]:
    base: dict[str, object] = {
        "org_id": ORG,
        "metric": "m",
        "kind": "gauge",
        "aggregation": "SUM",
        "start_ms": T0,
        "end_ms": T0 + 4 * MINUTE_MS,
    }
    answer = run(store, DataRequest(**{**base, **fields}), NOW, 5.0)  # type: ignore[arg-type]
    return {r.key: [None if np.isnan(v) else float(v) for v in r.values] for r in answer.records}


@pytest.mark.parametrize(
    ("length", "resolution"),
    [
        (HOUR_MS, MINUTE_MS),
        (2 * HOUR_MS, MINUTE_MS),
        (2 * HOUR_MS + 1, 5 * MINUTE_MS),
        (6 * HOUR_MS, 5 * MINUTE_MS),
        (DAY_MS, 15 * MINUTE_MS),
        (3 * DAY_MS, 30 * MINUTE_MS),
        (7 * DAY_MS, HOUR_MS),
        (7 * DAY_MS + 1, 6 * HOUR_MS),
        (31 * DAY_MS, 6 * HOUR_MS),
        (31 * DAY_MS + 1, DAY_MS),
    ],
)
def test_resolution_follows_the_timeframe_length(length: int, resolution: int) -> None:
    assert resolution_ms(NOW - length, NOW, NOW) == resolution


def test_resolution_is_no_finer_than_the_storage_tier_of_the_start() -> None:
    assert resolution_ms(NOW - 14 * DAY_MS, NOW - 14 * DAY_MS + HOUR_MS, NOW) == MINUTE_MS
    assert resolution_ms(NOW - 15 * DAY_MS, NOW - 15 * DAY_MS + HOUR_MS, NOW) == 5 * MINUTE_MS
    assert resolution_ms(NOW - 29 * DAY_MS, NOW - 29 * DAY_MS + HOUR_MS, NOW) == HOUR_MS
    assert resolution_ms(NOW - 401 * DAY_MS, NOW - 401 * DAY_MS + HOUR_MS, NOW) == DAY_MS


def test_the_series_of_an_entity_are_aggregated_together_and_the_others_by_their_tags(
    store: DuckDBStore,
) -> None:
    sums = _run(store)
    us = synthetic_entity(("region:us",))
    # A bare tag is no dimension: the canary series is keyed and named by its region alone.
    eu = synthetic_entity(("region:eu",))
    assert sums == {
        "DISK-1": [10, 10, 10, 10],
        "HOST-A": [1 + 2 + 10 + 20, 3 + 4 + 30 + 40, 5 + 6 + 50 + 60, 7 + 8 + 70 + 80],
        eu: [200, 200, 200, 200],
        us: [400, 400, 400, 400],
    }
    medians = _run(store, aggregation="MEDIAN", entities=("HOST-A",))
    assert medians["HOST-A"] == [
        float(np.median([1 + 2 * k, 2 + 2 * k, 10 + 20 * k, 20 + 20 * k])) for k in range(4)
    ]
    # The host's disk is an entity of the host: asking for the host gives it too, as a record of its own.
    assert medians["DISK-1"] == [5, 5, 5, 5]
    with_parents = _run(store, include_parent_ids=True, entities=("DISK-1",))
    assert list(with_parents) == ["HOST-A, DISK-1"]


def test_only_the_entities_asked_for_and_unknown_ones_refused(store: DuckDBStore) -> None:
    us = synthetic_entity(("region:us",))
    assert list(_run(store, entities=(us,))) == [us]
    with pytest.raises(UnknownEntities) as refused:
        _run(store, entities=("HOST-A", "HOST-B", "CUSTOM_DEVICE-0000000000000000"))
    assert refused.value.entities == ["HOST-B", "CUSTOM_DEVICE-0000000000000000"]


def test_total_and_slot_grid(store: DuckDBStore) -> None:
    request = DataRequest(ORG, "m", "gauge", "MAX", T0 + 30_000, T0 + 3 * MINUTE_MS + 1, tags=("cpu",))
    answer = run(store, request, NOW, 5.0)
    assert answer.times.tolist() == [T0 + k * MINUTE_MS for k in range(4)]
    total = run(store, DataRequest(**{**request.__dict__, "total": True}), NOW, 5.0)
    assert total.times.tolist() == [T0] and total.resolution_ms == 4 * MINUTE_MS
    assert [r.values.tolist() for r in total.records] == [[80.0]]


def test_distributions_aggregate_their_samples(store: DuckDBStore) -> None:
    base = {"metric": "latency", "kind": "distribution", "end_ms": T0 + 2 * MINUTE_MS}
    assert _run(store, aggregation="PERCENTILE", percentile=50, **base) == {"SERVICE-1": [2.5, 15.0]}
    assert _run(store, aggregation="COUNT", **base) == {"SERVICE-1": [4.0, 2.0]}
    assert _run(store, aggregation="AVG", **base) == {"SERVICE-1": [2.5, 15.0]}
    assert _run(store, aggregation="MAX", total=True, **base) == {"SERVICE-1": [20.0]}


def test_predict_appends_slots_with_a_band(store: DuckDBStore) -> None:
    request = DataRequest(ORG, "m", "gauge", "AVG", T0, T0 + 4 * MINUTE_MS, predict=True, tags=("cpu:0",))
    answer = run(store, request, NOW, 5.0)
    assert answer.predicted_from == 4 and len(answer.times) == 8
    (record,) = answer.records
    assert record.lower is not None and record.upper is not None
    # A straight line of averages: the band is as narrow as the residuals, none.
    assert np.isnan(record.lower[:4]).all() and (record.lower[4:] <= record.values[4:]).all()
    assert (record.values[4:] <= record.upper[4:]).all() and np.allclose(np.diff(record.values), 2.0)


def test_aggregation_types_and_dimensions_follow_the_series() -> None:
    every = ("AVG", "SUM", "MIN", "MAX", "COUNT", "MEDIAN", "PERCENTILE")
    assert aggregation_types("gauge") == every
    assert aggregation_types("count") == every
    assert aggregation_types("histogram", "delta") == ("AVG", "SUM", "MIN", "MAX", "COUNT")
    assert aggregation_types("exponential_histogram", "cumulative") == ("MIN", "MAX")
    assert aggregation_types("summary") == ("AVG", "SUM", "COUNT")
    assert dimensions([("dt.entity.host:H", "dt.entity.host.name:x")]) == ["HOST"]
    assert dimensions([("dt.entity.host.name:x",), ("dt.entity.service:S",)]) == ["SERVICE", "CUSTOM_DEVICE"]
