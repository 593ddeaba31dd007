"""The Dynatrace Timeseries API v1 on a real server: data sent through the real intakes (the Dynatrace
line protocol, OTLP with the OpenTelemetry SDK's exporter or as protobuf), read back over HTTP as
Dynatrace's documentation and clients read it, and checked against computations of our own."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import subprocess
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from dynatrace import Dynatrace
from dynatrace.environment_v1.timeseries import Unit
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.faces.otlp.exports import NS, attrs, export
from tests.serverproc import RunningServer, provision, sextant, start_server

PATH = "/api/v1/timeseries"
INGEST = "/api/v2/metrics/ingest"
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
AGGREGATIONS = ["AVG", "SUM", "MIN", "MAX", "COUNT", "MEDIAN", "PERCENTILE"]
SEED_RESULT_FIELDS = [
    "dataPoints",
    "unit",
    "resolutionInMillisUTC",
    "aggregationType",
    "entities",
    "timeseriesId",
]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture(scope="module")
def org(server: RunningServer) -> dict[str, Any]:
    """An organization of this module's own, so that metric ids can be the documentation's."""
    return provision(server.data_dir, f"dt-timeseries-{uuid.uuid4().hex[:8]}")


def token_of(org: dict[str, Any]) -> str:
    token: str = org["keys"]["dynatrace_token"]
    return token


def auth(org: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Api-Token {token_of(org)}"}


def get(server: RunningServer, org: dict[str, Any], suffix: str = "", **params: Any) -> httpx.Response:
    return httpx.get(server.url + PATH + suffix, params=params, headers=auth(org), timeout=60)


def data(server: RunningServer, org: dict[str, Any], metric: str, **params: Any) -> dict[str, Any]:
    """POST /api/v1/timeseries/{metric} with `params` as the body: its `result`, which must be a 200."""
    response = httpx.post(server.url + f"{PATH}/{metric}", json=params, headers=auth(org), timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    result: dict[str, Any] = response.json()["result"]
    assert list(result) == SEED_RESULT_FIELDS
    return result


def refused(response: httpx.Response, status: int = 400) -> list[tuple[str, str, str]]:
    """The ErrorEnvelope of a refusal: (path, parameterLocation, message) of each constraint violation."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert error["code"] == status and error["message"], error
    assert set(error) <= {"code", "message", "constraintViolations"}
    return [(v["path"], v["parameterLocation"], v["message"]) for v in error.get("constraintViolations", [])]


def ingest_lines(server: RunningServer, org: dict[str, Any], lines: list[str]) -> None:
    response = httpx.post(
        server.url + INGEST,
        content="\n".join(lines),
        headers={**auth(org), "Content-Type": "text/plain; charset=utf-8"},
        timeout=60,
    )
    assert response.status_code == 202, response.text


def ingest_otlp(server: RunningServer, org: dict[str, Any], *metrics: pb.Metric) -> None:
    response = httpx.post(
        server.url + "/v1/metrics",
        content=export(*metrics).SerializeToString(),
        headers={"DD-API-KEY": org["keys"]["dd_api_key"], "Content-Type": "application/x-protobuf"},
        timeout=60,
    )
    assert response.status_code == 200, response.content


def gauge(name: str, unit: str, points: list[tuple[int, float, dict[str, str]]]) -> pb.Metric:
    return pb.Metric(
        name=name,
        unit=unit,
        gauge=pb.Gauge(
            data_points=[
                pb.NumberDataPoint(time_unix_nano=t * NS, as_double=v, attributes=attrs(**a))
                for t, v, a in points
            ]
        ),
    )


def settle(server: RunningServer, org: dict[str, Any], metric: str, points: int) -> None:
    """Wait until `points` points of `metric` are visible (they are within a second of the answer)."""
    headers = {"DD-API-KEY": org["keys"]["dd_api_key"], "DD-APPLICATION-KEY": org["keys"]["dd_app_key"]}
    now = now_ms()
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(
            f"{server.url}/api/v2/sextant/metrics/{metric}/points",
            params={"from": str(now - 190 * DAY), "to": str(now + HOUR)},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == 200, response.text
        found = sum(len(s["points"]) for s in response.json()["series"])
        if found >= points or time.monotonic() > deadline:
            assert found == points
            return
        time.sleep(0.05)


def grid_of(points: list[list[Any]]) -> dict[int, Any]:
    times = [p[0] for p in points]
    assert times == sorted(times) and all(b - a == times[1] - times[0] for a, b in itertools.pairwise(times))
    return {p[0]: p[1] for p in points}


def synthetic_id(tags: list[str]) -> str:
    """The documented key of a series without an entity tag, computed here on our own."""
    keyed = sorted({t for t in tags if ":" in t})
    return "CUSTOM_DEVICE-" + hashlib.blake2b("\0".join(keyed).encode(), digest_size=8).hexdigest().upper()


# --- the documentation's example ----------------------------------------------------------------------------

SEED_ID = "com.dynatrace.builtin:app.actionspersession"
DOCKER, TRAVEL = "APPLICATION-85A7CC", "APPLICATION-8E41C8"


def test_seed_example_request_and_response_with_curl(server: RunningServer, org: dict[str, Any]) -> None:
    now = now_ms()
    base = (now - 40 * MINUTE) // MINUTE * MINUTE
    # Three slots as in the example: Permanent Docker in each, easyTravel in the middle one only.
    docker = {base: [1.0, 2.0, 2.0], base + MINUTE: [2.0, 3.0], base + 2 * MINUTE: [26 / 9]}
    travel = {base + MINUTE: [3.0]}
    points = []
    for entity, name, slots in ((DOCKER, "Permanent Docker", docker), (TRAVEL, "easyTravel AMP", travel)):
        for slot, values in slots.items():
            for i, value in enumerate(values):
                labels = {"dt.entity.application": entity, "dt.entity.application.name": name}
                points.append((slot + 10_000 * i, value, labels))
    ingest_otlp(server, org, gauge(SEED_ID, "{action}/min", points))
    settle(server, org, SEED_ID, 7)
    # The request of the documentation's example, its bare token included, to our server.
    body = {
        "timeseriesId": SEED_ID,
        "relativeTime": "hour",
        "aggregationType": "avg",
        "entities": [DOCKER, TRAVEL],
    }
    before = now_ms()
    proc = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", server.url + PATH,
            "-H", f"Authorization: {token_of(org)}",
            "-H", "Content-Type: application/json",
            "-d", json.dumps(body),
            "-w", "\n%{http_code}",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    after = now_ms()
    text, _, status = proc.stdout.rpartition("\n")
    assert status == "200", text
    wrapper = json.loads(text)
    assert list(wrapper) == ["result"]
    result = wrapper["result"]
    assert list(result) == SEED_RESULT_FIELDS
    assert result["unit"] == "PerMinute (count/min)"
    assert result["resolutionInMillisUTC"] == 60000
    assert result["aggregationType"] == "AVG"
    assert result["timeseriesId"] == SEED_ID
    assert result["entities"] == {DOCKER: "Permanent Docker", TRAVEL: "easyTravel AMP"}
    assert sorted(result["dataPoints"]) == [DOCKER, TRAVEL]
    for entity, slots in ((DOCKER, docker), (TRAVEL, travel)):
        series = result["dataPoints"][entity]
        assert all(len(point) == 2 for point in series)
        grid = grid_of(series)
        first, last = min(grid), max(grid)
        # Slot starts: the slot the hour's start falls in comes first, the one of now last.
        assert (before - HOUR) // MINUTE * MINUTE <= first <= (after - HOUR) // MINUTE * MINUTE
        assert (before // MINUTE * MINUTE) <= last <= after
        for slot in (base, base + MINUTE, base + 2 * MINUTE):
            want = slots.get(slot)
            assert (grid[slot] is None) if want is None else math.isclose(grid[slot], float(np.mean(want)))
        assert all(v is None for t, v in grid.items() if t not in slots)
    docker_slots = [grid_of(result["dataPoints"][DOCKER])[base + k * MINUTE] for k in range(3)]
    assert docker_slots == pytest.approx([1.6666666666666667, 2.5, 2.888888888888889])
    assert [grid_of(result["dataPoints"][TRAVEL])[base + k * MINUTE] for k in range(3)] == [None, 3, None]

    # GET with includeData: the definition's fields at the top, the same data in dataResult.
    answer = get(server, org, "/" + SEED_ID, includeData="true", relativeTime="hour", aggregationType="AVG")
    assert answer.status_code == 200, answer.text
    full = answer.json()
    assert full["timeseriesId"] == SEED_ID and full["displayName"] == SEED_ID
    assert full["dimensions"] == ["APPLICATION"]
    assert full["unit"] == "PerMinute (count/min)"
    assert full["filter"] == "CUSTOM" and full["types"] == []
    assert full["aggregationTypes"] == AGGREGATIONS
    assert list(full["dataResult"]) == SEED_RESULT_FIELDS
    assert grid_of(full["dataResult"]["dataPoints"][TRAVEL])[base + MINUTE] == 3
    # Without includeData, the definition alone.
    plain = get(server, org, "/" + SEED_ID.replace(":", "%3A"))
    assert plain.status_code == 200 and "dataResult" not in plain.json()
    assert {k: v for k, v in full.items() if k != "dataResult"} == plain.json()


# --- aggregations against an independent computation --------------------------------------------------------


@dataclass
class Dataset:
    metric: str
    start: int  # the timeframe asked, mid-slot on both ends
    end: int
    # (record key, slot start) -> every value in that slot
    slots: dict[tuple[str, int], list[float]]
    names: dict[str, str]


LOAD_HOSTS = {"HOST-06F288EE2A930951": "web-1", "HOST-3F2A5B7C9D1E0F42": None}


@pytest.fixture(scope="module")
def load(server: RunningServer, org: dict[str, Any]) -> Dataset:
    """`agg.load` through the line protocol: two hosts of two CPUs each (one host named), and one series
    without an entity; a point every 20 s, random values, over 24 minutes ending 10 minutes ago."""
    rng = random.Random(6)
    now = now_ms()
    first_slot = (now - 36 * MINUTE) // MINUTE * MINUTE
    start, end = first_slot + 30_000, first_slot + 20 * MINUTE + 30_000
    lines = ["#agg.load gauge dt.meta.unit=MilliSecond"]
    slots: dict[tuple[str, int], list[float]] = defaultdict(list)
    series: list[tuple[str, str]] = []
    for host, name in LOAD_HOSTS.items():
        named = f',dt.entity.host.name="{name}"' if name else ""
        for cpu in (1, 2):
            series.append((host, f"dt.entity.host={host}{named},cpu={cpu}"))
    lonely = ["region:eu", "rack:r7"]
    series.append((synthetic_id(lonely), "region=eu,rack=r7"))
    for key, dims in series:
        for k in range(-3, 72):
            t = first_slot + k * 20_000 + rng.randrange(0, 1000)
            value = round(rng.uniform(0, 100), 3)
            lines.append(f"agg.load,{dims} {value} {t}")
            slots[(key, t // MINUTE * MINUTE)].append(value)
    recent = [f"agg.recent,dt.entity.host=HOST-0000000000000001 {k} {now - k * 20_000}" for k in range(40)]
    ingest_lines(server, org, lines + recent)
    settle(server, org, "agg.load", len(lines) - 1)
    settle(server, org, "agg.recent", len(recent))
    names = {"HOST-06F288EE2A930951": "web-1", "HOST-3F2A5B7C9D1E0F42": "HOST-3F2A5B7C9D1E0F42"}
    names[synthetic_id(lonely)] = "rack:r7, region:eu"
    return Dataset("agg.load", start, end, dict(slots), names)


def expected(values: list[float], aggregation: str, percentile: int = 90) -> float:
    return {
        "AVG": lambda: float(np.mean(values)),
        "SUM": lambda: float(np.sum(values)),
        "MIN": lambda: float(np.min(values)),
        "MAX": lambda: float(np.max(values)),
        "COUNT": lambda: float(len(values)),
        "MEDIAN": lambda: float(np.median(values)),
        "PERCENTILE": lambda: float(np.percentile(values, percentile)),
    }[aggregation]()


def _slot_grid(dataset: Dataset) -> list[int]:
    first = dataset.start // MINUTE * MINUTE
    return list(range(first, dataset.end, MINUTE))


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_each_aggregation_equals_an_independent_computation(
    server: RunningServer, org: dict[str, Any], load: Dataset, aggregation: str
) -> None:
    extra = {"percentile": 90} if aggregation == "PERCENTILE" else {}
    response = get(
        server,
        org,
        "/" + load.metric,
        includeData="true",
        aggregationType=aggregation.lower(),
        startTimestamp=str(load.start),
        endTimestamp=str(load.end),
        **extra,
    )
    assert response.status_code == 200, response.text
    result = response.json()["dataResult"]
    assert result["aggregationType"] == aggregation
    assert result["unit"] == ("Count (count)" if aggregation == "COUNT" else "MilliSecond (ms)")
    assert result["resolutionInMillisUTC"] == MINUTE
    assert result["entities"] == load.names
    grid = _slot_grid(load)
    # Both partial slots are there: the first starts before the timeframe, the last ends after it.
    assert grid[0] < load.start and grid[-1] + MINUTE > load.end and len(grid) == 21
    assert sorted(result["dataPoints"]) == sorted(load.names)
    for key, points in result["dataPoints"].items():
        assert [p[0] for p in points] == grid
        for slot, value in points:
            assert value == pytest.approx(expected(load.slots[(key, slot)], aggregation)), (key, slot)


def test_post_body_equals_get_parameters(server: RunningServer, org: dict[str, Any], load: Dataset) -> None:
    host = "HOST-06F288EE2A930951"
    posted = data(
        server, org, load.metric, aggregationType="MEDIAN", startTimestamp=load.start,
        endTimestamp=load.end, entities=[host], tags=["cpu:1", "[ENVIRONMENT]cpu:1"],
    )  # fmt: skip
    response = get(
        server, org, "/" + load.metric, includeData="true", aggregationType="MEDIAN",
        startTimestamp=load.start, endTimestamp=load.end, entity=host, tag=["cpu:1", "[ENVIRONMENT]cpu:1"],
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["dataResult"] == posted
    assert list(posted["dataPoints"]) == [host]
    # The tag narrows the host to its first CPU: a median of half its points, not of all of them.
    whole = data(server, org, load.metric, aggregationType="MEDIAN", startTimestamp=load.start,
                 endTimestamp=load.end, entities=[host])  # fmt: skip
    assert posted["dataPoints"][host] != whole["dataPoints"][host]
    for slot, value in whole["dataPoints"][host]:
        assert value == pytest.approx(float(np.median(load.slots[(host, slot)])))


@pytest.mark.parametrize("aggregation", ["SUM", "AVG", "MAX", "MEDIAN", "COUNT"])
def test_total_is_one_point_per_entity_over_the_whole_timeframe(
    server: RunningServer, org: dict[str, Any], load: Dataset, aggregation: str
) -> None:
    result = data(
        server, org, load.metric, aggregationType=aggregation, startTimestamp=load.start,
        endTimestamp=load.end, queryMode="total",
    )  # fmt: skip
    grid = _slot_grid(load)
    assert result["resolutionInMillisUTC"] == len(grid) * MINUTE
    assert sorted(result["dataPoints"]) == sorted(load.names)
    for key, points in result["dataPoints"].items():
        everything = [v for slot in grid for v in load.slots[(key, slot)]]
        assert points == [[grid[0], pytest.approx(expected(everything, aggregation))]]


@pytest.mark.parametrize("percentile", [1, 50, 99])
def test_percentile_per_slot_and_in_total(
    server: RunningServer, org: dict[str, Any], load: Dataset, percentile: int
) -> None:
    host = "HOST-3F2A5B7C9D1E0F42"
    window = {"startTimestamp": load.start, "endTimestamp": load.end, "entities": [host]}
    series = data(server, org, load.metric, aggregationType="PERCENTILE", percentile=percentile, **window)
    for slot, value in series["dataPoints"][host]:
        assert value == pytest.approx(expected(load.slots[(host, slot)], "PERCENTILE", percentile))
    total = data(
        server,
        org,
        load.metric,
        aggregationType="PERCENTILE",
        percentile=percentile,
        queryMode="TOTAL",
        **window,
    )
    everything = [v for slot in _slot_grid(load) for v in load.slots[(host, slot)]]
    assert total["dataPoints"][host][0][1] == pytest.approx(float(np.percentile(everything, percentile)))


def test_an_entity_without_an_entity_tag_is_keyed_by_its_tags(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    lonely = synthetic_id(["region:eu", "rack:r7"])
    result = data(server, org, load.metric, aggregationType="MAX", startTimestamp=load.start,
                  endTimestamp=load.end, entities=[lonely])  # fmt: skip
    assert list(result["dataPoints"]) == [lonely]
    assert result["entities"] == {lonely: "rack:r7, region:eu"}
    for slot, value in result["dataPoints"][lonely]:
        assert value == max(load.slots[(lonely, slot)])


# --- timeframes and slots -----------------------------------------------------------------------------------

RESOLUTIONS = {
    "min": MINUTE,
    "5mins": MINUTE,
    "10mins": MINUTE,
    "15mins": MINUTE,
    "30mins": MINUTE,
    "hour": MINUTE,
    "2hours": MINUTE,
    "6hours": 5 * MINUTE,
    "day": 15 * MINUTE,
    "3days": 30 * MINUTE,
    "week": HOUR,
    "month": 6 * HOUR,
}
LENGTHS = {"min": 1, "5mins": 5, "10mins": 10, "15mins": 15, "30mins": 30, "hour": 60, "2hours": 120,
           "6hours": 360, "day": 1440, "3days": 4320, "week": 10080, "month": 43200}  # fmt: skip


@pytest.mark.parametrize("relative", list(RESOLUTIONS))
def test_every_relative_time_and_its_resolution(
    server: RunningServer, org: dict[str, Any], load: Dataset, relative: str
) -> None:
    before = now_ms()
    result = data(server, org, "agg.recent", aggregationType="MAX", relativeTime=relative.upper())
    after = now_ms()
    assert list(result["dataPoints"]) == ["HOST-0000000000000001"]
    resolution = RESOLUTIONS[relative]
    assert result["resolutionInMillisUTC"] == resolution
    length = LENGTHS[relative] * MINUTE
    for points in result["dataPoints"].values():
        times = [p[0] for p in points]
        assert all(t % resolution == 0 for t in times)
        assert (before - length) // resolution * resolution <= times[0] <= after - length
        assert before // resolution * resolution <= times[-1] <= after
        assert times == list(range(times[0], times[-1] + 1, resolution))


def test_longest_timeframe_old_data_and_a_future_end(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    now = now_ms()
    six_months = data(server, org, load.metric, aggregationType="SUM", startTimestamp=now - 184 * DAY,
                      endTimestamp=now)  # fmt: skip
    assert six_months["resolutionInMillisUTC"] == DAY
    host = "HOST-06F288EE2A930951"
    # Every point of the host, in the one or two days its data spans.
    days = [v for _, v in six_months["dataPoints"][host] if v is not None]
    assert sum(days) == pytest.approx(sum(v for (k, _), vs in load.slots.items() if k == host for v in vs))
    # An hour 20 days back is read at Dynatrace's 5-minute tier of data that old.
    old = data(server, org, load.metric, aggregationType="SUM", startTimestamp=now - 20 * DAY,
               endTimestamp=now - 20 * DAY + HOUR)  # fmt: skip
    assert old["resolutionInMillisUTC"] == 5 * MINUTE and old["dataPoints"] == {}
    # An end in the future is now: the last slot is the one now falls in.
    ahead = data(server, org, "agg.recent", aggregationType="SUM", startTimestamp=now - 10 * MINUTE,
                 endTimestamp=now + DAY)  # fmt: skip
    (points,) = ahead["dataPoints"].values()
    assert now // MINUTE * MINUTE <= points[-1][0] <= now_ms() and len(points) in (11, 12)


# --- predict ------------------------------------------------------------------------------------------------


def test_predict_continues_a_known_trend_with_the_truth_inside_the_band(
    server: RunningServer, org: dict[str, Any]
) -> None:
    rng = random.Random(30)
    now = now_ms()
    host = "HOST-7A7A7A7A7A7A7A7A"
    lines = []
    for k in range(31):
        t = (now - k * MINUTE) // MINUTE * MINUTE + 30_000
        if t > now:
            continue
        value = 10 + 0.5 * (t / MINUTE - now / MINUTE) + rng.uniform(-0.05, 0.05)
        lines.append(f"trend.queue,dt.entity.host={host} {value:.4f} {t}")
    ingest_lines(server, org, lines)
    settle(server, org, "trend.queue", len(lines))
    result = data(server, org, "trend.queue", aggregationType="AVG", relativeTime="30mins", predict=True)
    points = result["dataPoints"][host]
    real = [p for p in points if len(p) == 2]
    predicted = [p for p in points if len(p) == 4]
    assert len(real) + len(predicted) == len(points) and len(predicted) == 30
    times = [p[0] for p in points]
    assert times == list(range(times[0], times[-1] + 1, MINUTE))
    assert predicted[0][0] == real[-1][0] + MINUTE
    for t, value, lower, upper in predicted:
        truth = 10 + 0.5 * ((t + 30_000) / MINUTE - now / MINUTE)
        assert lower < truth < upper, (t, truth, lower, upper)
        assert lower < value < upper
        assert upper - lower < 2.0
    # The string form of the flag, as the documentation's body model writes booleans, works alike.
    again = data(server, org, "trend.queue", aggregationType="AVG", relativeTime="30mins", predict="true")
    assert len([p for p in again["dataPoints"][host] if len(p) == 4]) == 30
    refusal = httpx.post(
        server.url + f"{PATH}/trend.queue",
        json={"aggregationType": "AVG", "relativeTime": "hour", "predict": True},
        headers=auth(org),
    )
    ((path, location, message),) = refused(refusal)
    assert (path, location) == ("predict", "PAYLOAD_BODY") and "at most 30 minutes" in message


# --- entities -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def processes(server: RunningServer, org: dict[str, Any]) -> int:
    """`proc.cpu`: two processes on one host (the process series also name the host), a host-level
    series, and a series of another host carrying a tag of its own; a point a minute for 5 minutes."""
    now = now_ms()
    start = (now - 20 * MINUTE) // MINUTE * MINUTE
    h1, h2, p1, p2 = (
        "HOST-1111111111111111",
        "HOST-2222222222222222",
        "PROCESS_GROUP_INSTANCE-AAAA",
        "PROCESS_GROUP_INSTANCE-BBBB",
    )
    series = {
        f"dt.entity.host={h1},dt.entity.process_group_instance={p1},"
        "dt.entity.process_group_instance.name=nginx": 1,
        f"dt.entity.host={h1},dt.entity.process_group_instance={p2}": 10,
        f"dt.entity.host={h1},dt.entity.host.name=edge-1": 100,
        f"dt.entity.host={h2},team=payments": 1000,
    }
    lines = [
        f"proc.cpu,{dims} {value + k} {start + k * MINUTE + 5000}"
        for dims, value in series.items()
        for k in range(5)
    ]
    ingest_lines(server, org, lines)
    settle(server, org, "proc.cpu", len(lines))
    return start


def test_a_series_belongs_to_its_most_specific_entity_and_parents_are_shown_on_request(
    server: RunningServer, org: dict[str, Any], processes: int
) -> None:
    window = {"startTimestamp": processes, "endTimestamp": processes + 5 * MINUTE, "aggregationType": "SUM"}
    plain = data(server, org, "proc.cpu", **window)
    assert {k: [p[1] for p in v] for k, v in plain["dataPoints"].items()} == {
        "PROCESS_GROUP_INSTANCE-AAAA": [1, 2, 3, 4, 5],
        "PROCESS_GROUP_INSTANCE-BBBB": [10, 11, 12, 13, 14],
        "HOST-1111111111111111": [100, 101, 102, 103, 104],
        "HOST-2222222222222222": [1000, 1001, 1002, 1003, 1004],
    }
    assert plain["entities"] == {
        "HOST-1111111111111111": "edge-1",
        "HOST-2222222222222222": "HOST-2222222222222222",
        "PROCESS_GROUP_INSTANCE-AAAA": "nginx",
        "PROCESS_GROUP_INSTANCE-BBBB": "PROCESS_GROUP_INSTANCE-BBBB",
    }
    parents = data(server, org, "proc.cpu", includeParentIds="true", **window)
    assert sorted(parents["dataPoints"]) == [
        "HOST-1111111111111111",
        "HOST-1111111111111111, PROCESS_GROUP_INSTANCE-AAAA",
        "HOST-1111111111111111, PROCESS_GROUP_INSTANCE-BBBB",
        "HOST-2222222222222222",
    ]
    assert parents["entities"] == plain["entities"]
    # The host's processes are its entity's: asking for the host gives them, keyed by process.
    of_host = data(server, org, "proc.cpu", entities=["HOST-1111111111111111"], **window)
    assert sorted(of_host["dataPoints"]) == [
        "HOST-1111111111111111", "PROCESS_GROUP_INSTANCE-AAAA", "PROCESS_GROUP_INSTANCE-BBBB"
    ]  # fmt: skip
    definition = get(server, org, "/proc.cpu").json()
    assert definition["dimensions"] == ["HOST", "PROCESS_GROUP_INSTANCE"]


def test_tag_and_filter_parameters_select_series(
    server: RunningServer, org: dict[str, Any], processes: int
) -> None:
    window = {"startTimestamp": processes, "endTimestamp": processes + 5 * MINUTE, "aggregationType": "MAX"}
    for tags in (["team:payments"], ["team"], ["[CONTEXTLESS]team:payments"]):
        assert list(data(server, org, "proc.cpu", tags=tags, **window)["dataPoints"]) == [
            "HOST-2222222222222222"
        ]
    assert (
        data(server, org, "proc.cpu", tags=["team:payments", "dt.entity.host.name:edge-1"], **window)[
            "dataPoints"
        ]
        == {}
    )
    by_host = data(server, org, "proc.cpu", filters={"host": "HOST-2222222222222222"}, **window)
    assert list(by_host["dataPoints"]) == ["HOST-2222222222222222"]
    response = get(server, org, "/proc.cpu", includeData="true", tag="team:payments", **window)
    assert list(response.json()["dataResult"]["dataPoints"]) == ["HOST-2222222222222222"]


def test_an_unknown_entity_is_refused(server: RunningServer, org: dict[str, Any], processes: int) -> None:
    window = {"relativeTime": "hour", "aggregationType": "AVG"}
    body = {"entities": ["HOST-1111111111111111", "HOST-9999999999999999"], **window}
    response = httpx.post(server.url + f"{PATH}/proc.cpu", json=body, headers=auth(org))
    assert refused(response) == [
        ("entities", "PAYLOAD_BODY", "HOST-9999999999999999 delivers no data of timeseries proc.cpu")
    ]
    response = get(server, org, "/proc.cpu", includeData="true", entity="SERVICE-1", **window)
    assert refused(response) == [("entity", "QUERY", "SERVICE-1 delivers no data of timeseries proc.cpu")]


# --- definitions, kinds and units ---------------------------------------------------------------------------


class SdkInstruments:
    """A gauge with Dynatrace entity attributes, a cumulative counter and a delta histogram, through the
    OpenTelemetry SDK's OTLP/HTTP exporter."""

    def __init__(self, server: RunningServer, org: dict[str, Any]) -> None:
        self.names = {
            kind: f"sdk.{kind}.{uuid.uuid4().hex[:6]}" for kind in ("gauge", "counter", "histogram")
        }
        # Counters as running totals (the SDK's default), histograms as deltas.
        exporter = OTLPMetricExporter(
            endpoint=server.url + "/v1/metrics",
            headers={"DD-API-KEY": org["keys"]["dd_api_key"]},
            preferred_temporality={Histogram: AggregationTemporality.DELTA},
        )
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        self.provider = MeterProvider(
            metric_readers=[reader], resource=Resource.create({"service.name": "shop"})
        )
        meter = self.provider.get_meter("tests.dynatrace")
        self.temperature = 21.5
        attributes = {"dt.entity.host": "HOST-5555555555555555", "dt.entity.host.name": "sensor-box"}

        def observe(_: CallbackOptions) -> Iterator[Observation]:
            yield Observation(self.temperature, attributes)

        meter.create_observable_gauge(self.names["gauge"], callbacks=[observe], unit="ms")
        self.counter = meter.create_counter(self.names["counter"], unit="{order}")
        self.histogram = meter.create_histogram(self.names["histogram"], unit="By")

    def flush(self) -> None:
        assert self.provider.force_flush(30_000)

    def close(self) -> None:
        self.provider.shutdown()


def test_otlp_sdk_metrics_are_readable_with_their_kinds_and_units(
    server: RunningServer, org: dict[str, Any]
) -> None:
    sdk = SdkInstruments(server, org)
    try:
        sdk.counter.add(3)
        sdk.histogram.record(100)
        sdk.flush()
        sdk.temperature = 19.0
        sdk.counter.add(4)
        sdk.histogram.record(300)
        sdk.flush()
        for name in sdk.names.values():
            settle(server, org, name, 2)
        _check_sdk_metrics(server, org, sdk.names)
    finally:
        # After the checks: shutting down exports once more.
        sdk.close()


def _check_sdk_metrics(server: RunningServer, org: dict[str, Any], names: dict[str, str]) -> None:
    gauge_def = get(server, org, "/" + names["gauge"]).json()
    assert gauge_def["unit"] == "MilliSecond (ms)" and gauge_def["dimensions"] == ["HOST"]
    assert gauge_def["aggregationTypes"] == AGGREGATIONS
    total = data(server, org, names["gauge"], aggregationType="AVG", relativeTime="10mins", queryMode="TOTAL")
    assert total["entities"] == {"HOST-5555555555555555": "sensor-box"}
    assert total["dataPoints"]["HOST-5555555555555555"][0][1] == pytest.approx(20.25)
    # The counter's running totals (3, then 7): their SUM is how much they grew, their MAX the latest.
    counter_def = get(server, org, "/" + names["counter"]).json()
    assert counter_def["aggregationTypes"] == AGGREGATIONS
    assert counter_def["unit"] == "Count (count)" and counter_def["dimensions"] == ["CUSTOM_DEVICE"]
    window = {"relativeTime": "10mins", "queryMode": "TOTAL"}
    for aggregation, want in (("MAX", 7), ("SUM", 4), ("COUNT", 2)):
        (points,) = data(server, org, names["counter"], aggregationType=aggregation, **window)[
            "dataPoints"
        ].values()
        assert points[0][1] == want, aggregation
    # A histogram keeps sums, counts and extremes, not its values: no median of it.
    histogram_def = get(server, org, "/" + names["histogram"]).json()
    assert histogram_def["aggregationTypes"] == ["AVG", "SUM", "MIN", "MAX", "COUNT"]
    assert histogram_def["unit"] == "Byte (B)"
    (points,) = data(server, org, names["histogram"], aggregationType="AVG", relativeTime="10mins",
                     queryMode="TOTAL")["dataPoints"].values()  # fmt: skip
    assert points[0][1] == pytest.approx(200)
    response = get(server, org, "/" + names["histogram"], includeData="true", relativeTime="hour",
                   aggregationType="MEDIAN")  # fmt: skip
    ((path, location, message),) = refused(response)
    assert (path, location) == ("aggregationType", "QUERY") and "does not support MEDIAN" in message


def test_ids_with_colons_spaces_and_slashes(server: RunningServer, org: dict[str, Any]) -> None:
    now = now_ms()
    ids = ["beta.python.phpfpm.dev:accepted conn", "http/server.duration"]
    ingest_otlp(server, org, *(gauge(metric, "s", [(now - MINUTE, 4.0, {"pool": "www"})]) for metric in ids))
    # One export, one commit: once the first is visible so is the second.
    settle(server, org, ids[0], 1)
    for metric in ids:
        encoded = metric.replace(":", "%3A").replace(" ", "%20").replace("/", "%2F")
        params = {"includeData": "true", "relativeTime": "5mins", "aggregationType": "MAX"}
        response = httpx.get(server.url + f"{PATH}/{encoded}", headers=auth(org), params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["timeseriesId"] == metric and body["unit"] == "Second (s)"
        (points,) = body["dataResult"]["dataPoints"].values()
        assert [v for _, v in points if v is not None] == [4.0]
    listed = [d["timeseriesId"] for d in get(server, org).json()]
    assert set(ids) <= set(listed) and listed == sorted(listed)


def test_the_listing_and_its_source_filters(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    custom = f"custom:listing.x{uuid.uuid4().hex[:6]}"
    response = httpx.put(server.url + f"{PATH}/{custom}", json={"displayName": "Listed"}, headers=auth(org))
    assert response.status_code == 201, response.text
    everything = get(server, org).json()
    by_id = {d["timeseriesId"]: d for d in everything}
    assert by_id["agg.load"] == {
        "timeseriesId": "agg.load",
        "displayName": "agg.load",
        "dimensions": ["HOST", "CUSTOM_DEVICE"],
        "aggregationTypes": AGGREGATIONS,
        "unit": "MilliSecond (ms)",
        "filter": "CUSTOM",
        "detailedSource": "Ingest",
        "types": [],
    }
    assert by_id[custom]["detailedSource"] == "API"
    assert get(server, org, source="CUSTOM").json() == everything
    assert get(server, org, source="all").json() == everything
    for source in ("BUILTIN", "PLUGIN", "REMOTE_PLUGIN"):
        assert get(server, org, source=source).json() == []
    assert [d["timeseriesId"] for d in get(server, org, source="custom", detailedsource="api").json()] == [
        custom
    ]
    ingested = get(server, org, detailedSource="Ingest").json()
    assert custom not in {d["timeseriesId"] for d in ingested} and "agg.load" in {
        d["timeseriesId"] for d in ingested
    }
    assert refused(get(server, org, source="EXTENSION")) == [
        (
            "source",
            "QUERY",
            "'EXTENSION' is not a source: use one of ALL, BUILTIN, CUSTOM, PLUGIN, REMOTE_PLUGIN",
        )
    ]


def test_the_older_data_request_on_the_listing_path(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    window = {"startTimestamp": load.start, "endTimestamp": load.end, "aggregationType": "SUM"}
    older = get(server, org, timeseriesId=load.metric, **window)
    assert older.status_code == 200, older.text
    assert older.json() == {"result": data(server, org, load.metric, **window)}


# --- custom timeseries --------------------------------------------------------------------------------------


def test_custom_timeseries_are_registered_updated_deleted_and_kept_across_restarts(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data")
    try:
        own = provision(running.data_dir, "custom")
        url = running.url + PATH + "/custom:firewall.connections.dropped"
        # As the `dt` client sends it: every field, unset ones null, the unit without its space.
        body = {
            "displayName": "Dropped Connections",
            "unit": "Count(count)",
            "dimensions": ["nic"],
            "types": None,
        }
        created = httpx.put(url, json=body, headers=auth(own))
        assert created.status_code == 201, created.text
        assert created.json() == {
            "timeseriesId": "custom:firewall.connections.dropped",
            "displayName": "Dropped Connections",
            "dimensions": ["CUSTOM_DEVICE", "nic"],
            "aggregationTypes": AGGREGATIONS,
            "unit": "Count (count)",
            "filter": "CUSTOM",
            "detailedSource": "API",
            "types": [],
        }
        # An update changes what it gives and keeps the rest; an unknown unit is Count, with a warning.
        updated = httpx.put(url, json={"unit": "Bananas", "types": ["paloalto"]}, headers=auth(own))
        assert updated.status_code == 201, updated.text
        assert updated.json()["displayName"] == "Dropped Connections"
        assert updated.json()["types"] == ["paloalto"] and updated.json()["unit"] == "Count (count)"
        assert updated.json()["warnings"] == [
            "unit 'Bananas' is not a Dynatrace unit: the metric is registered as Count (count)"
        ]
        milli = httpx.put(url, json={"unit": "MilliSecond"}, headers=auth(own)).json()
        assert milli["unit"] == "MilliSecond (ms)" and "warnings" not in milli
        assert running.stop() == 0
        running = start_server(tmp_path / "data")
        url = running.url + PATH + "/custom:firewall.connections.dropped"
        kept = httpx.get(url, headers=auth(own))
        assert kept.status_code == 200, kept.text
        assert kept.json() == {**milli}
        assert httpx.get(running.url + PATH, headers=auth(own)).json() == [milli]
        # No data was sent for it: the data request answers no data points, and no entities.
        empty = httpx.post(url, json={"relativeTime": "hour", "aggregationType": "AVG"}, headers=auth(own))
        assert empty.json()["result"]["dataPoints"] == {} and empty.json()["result"]["entities"] == {}
        deleted = httpx.delete(url, headers=auth(own))
        assert deleted.status_code == 204 and deleted.content == b""
        assert running.stop() == 0
        running = start_server(tmp_path / "data")
        url = running.url + PATH + "/custom:firewall.connections.dropped"
        assert refused(httpx.get(url, headers=auth(own)), 404) == [
            ("timeseriesIdentifier", "PATH", "no such timeseries")
        ]
        refused(httpx.delete(url, headers=auth(own)), 404)
    finally:
        running.stop()


def test_the_dt_client_registers_a_custom_timeseries(server: RunningServer, org: dict[str, Any]) -> None:
    # Dynatrace's own Python client (`dt`), as its users call it.
    client = Dynatrace(server.url, token_of(org))
    metric = f"custom:dt.client.q{uuid.uuid4().hex[:8]}"
    registration = client.timeseries.create_timeseries(
        metric, "Queue depth", unit=Unit.COUNT, dimensions=["queue"]
    )
    answer = registration.put()
    assert answer.status_code == 201
    assert answer.json()["timeseriesId"] == metric
    assert answer.json()["unit"] == "Count (count)"
    assert answer.json()["dimensions"] == ["CUSTOM_DEVICE", "queue"]
    listed = httpx.get(server.url + PATH + "/" + metric, headers=auth(org))
    assert listed.json()["displayName"] == "Queue depth"


@pytest.mark.parametrize(
    ("timeseries_id", "body", "path", "location", "fragment"),
    [
        ("firewall.dropped", {"displayName": "x"}, "timeseriesIdentifier", "PATH", "starts with 'custom:'"),
        ("custom:fire wall", {"displayName": "x"}, "timeseriesIdentifier", "PATH", "letters and digits"),
        ("custom:fire.2wall", {"displayName": "x"}, "timeseriesIdentifier", "PATH", "starting with a letter"),
        ("custom:" + "a" * 194, {"displayName": "x"}, "timeseriesIdentifier", "PATH", "at most 200"),
        ("custom:new.one", {"unit": "Count"}, "displayName", "PAYLOAD_BODY", "required to register"),
        ("custom:new.one", {"displayName": " "}, "displayName", "PAYLOAD_BODY", "must not be empty"),
        ("custom:new.one", {"displayName": "x" * 257}, "displayName", "PAYLOAD_BODY", "at most 256"),
        (
            "custom:new.one",
            {"displayName": "x", "dimensions": ["n ic"]},
            "dimensions",
            "PAYLOAD_BODY",
            "not a dimension key",
        ),
        ("custom:new.one", {"displayName": "x", "types": [""]}, "types", "PAYLOAD_BODY", "must not be empty"),
        (
            "custom:new.one",
            {"displayName": "x", "colour": "red"},
            "body",
            "PAYLOAD_BODY",
            "unknown field `colour`",
        ),
        ("custom:new.one", {"displayName": 5}, "body", "PAYLOAD_BODY", "Expected `str | null`"),
    ],
)
def test_bad_registrations_are_refused(
    server: RunningServer, org: dict[str, Any], timeseries_id: str, body: dict[str, Any], path: str,
    location: str, fragment: str,
) -> None:  # fmt: skip
    response = httpx.put(server.url + f"{PATH}/{timeseries_id}", json=body, headers=auth(org))
    violations = refused(response)
    assert [(p, loc) for p, loc, _ in violations] == [(path, location)], violations
    assert fragment in violations[0][2]
    assert get(server, org, "/" + timeseries_id).status_code == 404


def test_an_ingested_metric_cannot_be_deleted(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    response = httpx.delete(server.url + f"{PATH}/{load.metric}", headers=auth(org))
    assert refused(response) == [
        (
            "timeseriesIdentifier",
            "PATH",
            "only custom timeseries registered with PUT can be deleted; this one is ingested data",
        )
    ]
    assert get(server, org, "/" + load.metric).status_code == 200


# --- authentication and tenants -----------------------------------------------------------------------------


def _create_token(server: RunningServer, org: dict[str, Any], *scopes: str) -> str:
    args = ["keys", "create", "--org", str(org["org_id"]), "--kind", "dynatrace_token", "--json"]
    for scope in scopes:
        args += ["--scope", scope]
    created: dict[str, Any] = json.loads(sextant(*args, "--data-dir", str(server.data_dir)).stdout)
    secret: str = created["secret"]
    return secret


REQUESTS = [
    ("GET", PATH, None),
    ("GET", PATH + "/agg.load", None),
    ("POST", PATH + "/agg.load", {"relativeTime": "hour", "aggregationType": "AVG"}),
    ("POST", PATH, {"timeseriesId": "agg.load", "relativeTime": "hour", "aggregationType": "AVG"}),
    ("PUT", PATH + "/custom:auth.check", {"displayName": "x"}),
    ("DELETE", PATH + "/custom:auth.check", None),
]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_tokens_are_checked_on_every_endpoint(
    server: RunningServer, org: dict[str, Any], load: Dataset, method: str, path: str, body: Any
) -> None:
    def send(headers: dict[str, str], params: dict[str, str] | None = None) -> httpx.Response:
        return httpx.request(method, server.url + path, json=body, headers=headers, params=params, timeout=60)

    (missing,) = [send({})]
    assert refused(missing, 401) == [] and "Missing authorization" in missing.json()["error"]["message"]
    bearer = send({"Authorization": f"Bearer {token_of(org)}"})
    assert refused(bearer, 401) == [] and "scheme is 'Bearer'" in bearer.json()["error"]["message"]
    unknown = send({"Authorization": "Api-Token dt0c01." + "A" * 24 + "." + "B" * 64})
    assert "unknown or has been revoked" in (refused(unknown, 401) or unknown.json()["error"]["message"])
    other_kind = send({"Authorization": f"Api-Token {org['keys']['dd_api_key']}"})
    assert (
        refused(other_kind, 401) == []
        and "not a Dynatrace API token" in other_kind.json()["error"]["message"]
    )
    no_scope = send({"Authorization": f"Api-Token {_create_token(server, org, 'metrics.ingest')}"})
    assert refused(no_scope, 403) == []
    assert no_scope.json()["error"]["message"] == "Token is missing required scope. Use one of: DataExport"
    by_query = send({}, {"api-token": _create_token(server, org, "DataExport")})
    assert by_query.status_code in (200, 201, 204), by_query.text


def test_another_organization_sees_none_of_it(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    other = provision(server.data_dir, f"dt-other-{uuid.uuid4().hex[:8]}")
    assert get(server, other).json() == []
    refused(get(server, other, "/" + load.metric), 404)
    response = httpx.post(
        server.url + f"{PATH}/{load.metric}",
        json={"relativeTime": "hour", "aggregationType": "AVG"},
        headers=auth(other),
    )
    refused(response, 404)
    refused(httpx.delete(server.url + f"{PATH}/{load.metric}", headers=auth(other)), 404)


# --- refusals -----------------------------------------------------------------------------------------------

QUERY_REFUSALS = [
    ({"relativeTime": "hour"}, "aggregationType", "required to read data points"),
    ({"aggregationType": "AVG"}, "relativeTime", "a timeframe is required"),
    (
        {"aggregationType": "mean", "relativeTime": "hour"},
        "aggregationType",
        "'mean' is not an aggregation type",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hours"},
        "relativeTime",
        "'hours' is not a relative timeframe",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "startTimestamp": "1"},
        "relativeTime",
        "mutually exclusive",
    ),
    (
        {"aggregationType": "AVG", "startTimestamp": "1700000000000"},
        "endTimestamp",
        "required with startTimestamp",
    ),
    (
        {"aggregationType": "AVG", "endTimestamp": "1700000000000"},
        "startTimestamp",
        "required with endTimestamp",
    ),
    (
        {"aggregationType": "AVG", "startTimestamp": "x", "endTimestamp": "1"},
        "startTimestamp",
        "a time in UTC milliseconds",
    ),
    (
        {"aggregationType": "AVG", "startTimestamp": "{now}", "endTimestamp": "{now-1}"},
        "startTimestamp",
        "must be earlier than endTimestamp",
    ),
    (
        {"aggregationType": "AVG", "startTimestamp": "{now-185d}", "endTimestamp": "{now}"},
        "startTimestamp",
        "maximum allowed timeframe is 6 months",
    ),
    (
        {"aggregationType": "PERCENTILE", "relativeTime": "hour"},
        "percentile",
        "required with aggregationType PERCENTILE",
    ),
    (
        {"aggregationType": "PERCENTILE", "percentile": "0", "relativeTime": "hour"},
        "percentile",
        "must be from 1 to 99, not 0",
    ),
    (
        {"aggregationType": "PERCENTILE", "percentile": "100", "relativeTime": "hour"},
        "percentile",
        "must be from 1 to 99, not 100",
    ),
    (
        {"aggregationType": "PERCENTILE", "percentile": "9.5", "relativeTime": "hour"},
        "percentile",
        "a whole number",
    ),
    (
        {"aggregationType": "AVG", "percentile": "50", "relativeTime": "hour"},
        "percentile",
        "applies only to aggregationType PERCENTILE",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "queryMode": "ALL"},
        "queryMode",
        "'ALL' is not a query mode",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "30mins", "queryMode": "TOTAL", "predict": "true"},
        "predict",
        "queryMode SERIES only",
    ),
    ({"aggregationType": "AVG", "relativeTime": "day", "predict": "true"}, "predict", "at most 30 minutes"),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "predict": "yes"},
        "predict",
        "must be true or false",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "includeParentIds": "1"},
        "includeParentIds",
        "must be true or false",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "considerMaintenanceWindowsForAvailability": "no"},
        "considerMaintenanceWindowsForAvailability",
        "must be true or false",
    ),
    ({"includeData": "maybe"}, "includeData", "must be true or false"),
    ({"aggregationType": "AVG", "relativeTime": "hour", "tag": ""}, "tag", "an empty tag matches nothing"),
    ({"aggregationType": "AVG", "relativeTime": "hour", "entity": " "}, "entity", "an empty entity id"),
    ({"aggregationType": ["AVG", "SUM"], "relativeTime": "hour"}, "aggregationType", "given 2 times"),
]


def _timestamps(params: dict[str, Any]) -> dict[str, Any]:
    now = now_ms()
    stamps = {"{now}": now, "{now-1}": now - 1, "{now-185d}": now - 185 * DAY}
    return {k: str(stamps[v]) if isinstance(v, str) and v in stamps else v for k, v in params.items()}


@pytest.mark.parametrize(("params", "path", "fragment"), QUERY_REFUSALS)
def test_bad_query_parameters_are_400_naming_the_parameter(
    server: RunningServer,
    org: dict[str, Any],
    load: Dataset,
    params: dict[str, Any],
    path: str,
    fragment: str,
) -> None:
    response = get(server, org, "/" + load.metric, **{"includeData": "true", **_timestamps(params)})
    violations = refused(response)
    assert [(p, loc) for p, loc, _ in violations] == [(path, "QUERY")], violations
    assert fragment in violations[0][2]
    assert response.json()["error"]["message"] == "Constraints violated."


BODY_REFUSALS = [
    ({"relativeTime": "hour"}, "aggregationType", "required to read data points"),
    (
        {"aggregationType": "avg", "relativeTime": "HOUR", "startTimestamp": 1},
        "relativeTime",
        "mutually exclusive",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "startTimestamp": "1"},
        "startTimestamp",
        "Expected `int | null`, got `str`",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "percentile": 5.5},
        "percentile",
        "Expected `int | null`, got `float`",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "entities": "HOST-1"},
        "entities",
        "Expected `array | null`",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "predict": "sure"},
        "predict",
        "must be true or false",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "filters": {"region": "eu"}},
        "filters.region",
        "not a filter key",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "filters": {"host": ""}},
        "filters.host",
        "an empty filter value",
    ),
    (
        {"aggregationType": "AVG", "relativeTime": "hour", "agregationType": "AVG"},
        "body",
        "unknown field `agregationType`",
    ),
    ({"aggregationType": "AVG", "relativeTime": "hour", "tags": [""]}, "tags", "an empty tag"),
]


@pytest.mark.parametrize(("body", "path", "fragment"), BODY_REFUSALS)
def test_bad_bodies_are_400_naming_the_field(
    server: RunningServer, org: dict[str, Any], load: Dataset, body: dict[str, Any], path: str, fragment: str
) -> None:
    response = httpx.post(server.url + f"{PATH}/{load.metric}", json=body, headers=auth(org))
    violations = refused(response)
    assert [(p, loc) for p, loc, _ in violations] == [(path, "PAYLOAD_BODY")], violations
    assert fragment in violations[0][2]


def test_bodies_that_are_not_a_query_message(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    for content, fragment in (
        (b"{", "not valid JSON"),
        (b"[]", "Expected `object`, got `array`"),
        (b"", "not valid JSON"),
    ):
        response = httpx.post(server.url + f"{PATH}/{load.metric}", content=content, headers=auth(org))
        ((path, location, message),) = refused(response)
        assert (path, location) == ("body", "PAYLOAD_BODY") and fragment in message, message
    nameless = httpx.post(
        server.url + PATH, json={"relativeTime": "hour", "aggregationType": "AVG"}, headers=auth(org)
    )
    assert refused(nameless) == [
        ("timeseriesId", "PAYLOAD_BODY", f"required when the path is {PATH}: name the timeseries to read")
    ]


def test_several_violations_are_reported_together(
    server: RunningServer, org: dict[str, Any], load: Dataset
) -> None:
    response = get(
        server,
        org,
        "/" + load.metric,
        includeData="true",
        aggregationType="avgx",
        relativeTime="hours",
        percentile="0",
    )
    assert sorted(p for p, _, _ in refused(response)) == ["aggregationType", "percentile", "relativeTime"]


def test_unknown_timeseries_are_404(server: RunningServer, org: dict[str, Any]) -> None:
    window = {"relativeTime": "hour", "aggregationType": "AVG"}
    for response in (
        get(server, org, "/no.such.metric"),
        get(server, org, "/no.such.metric", includeData="true", **window),
        httpx.post(server.url + PATH + "/no.such.metric", json=window, headers=auth(org)),
        httpx.post(server.url + PATH, json={"timeseriesId": "no.such.metric", **window}, headers=auth(org)),
        get(server, org, timeseriesId="no.such.metric", **window),
        httpx.delete(server.url + PATH + "/custom:no.such.metric", headers=auth(org)),
    ):
        assert refused(response, 404) == [("timeseriesIdentifier", "PATH", "no such timeseries")]
        assert response.json()["error"]["message"].startswith("Timeseries ")


def test_bodies_over_1_mib_are_413(server: RunningServer, org: dict[str, Any], load: Dataset) -> None:
    padding = " " * (1024 * 1024)
    at_limit = ('{"relativeTime":"hour","aggregationType":"AVG"}' + padding)[: 1024 * 1024]
    response = httpx.post(server.url + f"{PATH}/{load.metric}", content=at_limit, headers=auth(org))
    assert response.status_code == 200, response.text
    over = at_limit + " "
    for method, path in (("POST", f"{PATH}/{load.metric}"), ("POST", PATH), ("PUT", f"{PATH}/custom:big")):
        response = httpx.request(method, server.url + path, content=over, headers=auth(org))
        assert refused(response, 413) == [] and "1048576 bytes" in response.json()["error"]["message"]
