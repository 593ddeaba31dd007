"""The metric intake in process: unexpected failures, and the cache of series it has seen."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path

import httpx
import pytest

from sextant.config import Settings
from sextant.core.metrics import series_id
from sextant.faces.datadog.metrics_intake import (
    InvalidSeries,
    SeriesIds,
    _decoder,
    _RawPointsPayload,
    _translate_v2,
)
from sextant.server import build_app, open_runtime


@pytest.mark.parametrize("path", ["/api/v2/series", "/api/v1/series", "/api/v1/distribution_points"])
def test_write_failure_is_a_datadog_500_with_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    runtime = open_runtime(Settings(data_dir=tmp_path / "data", access_log=False))
    assert runtime.bootstrapped is not None
    key = runtime.bootstrapped.keys["dd_api_key"]
    t = int(time.time())
    point = {"timestamp": t, "value": 1} if path.startswith("/api/v2") else [t, [1] if "dist" in path else 1]
    body = {"series": [{"metric": "m", "points": [point]}]}
    app = build_app(runtime)

    async def scenario() -> httpx.Response:
        runtime.writer.start()
        # Swap a read-only file in under the ingest log's descriptor: the next append fails.
        assert runtime.writer._log._file is not None
        read_only = os.open(os.devnull, os.O_RDONLY)
        os.dup2(read_only, runtime.writer._log._file)
        os.close(read_only)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://sextant"
            ) as client:
                return await client.post(
                    path, content=json.dumps(body), headers={"DD-API-KEY": key, "X-Request-Id": "req-7"}
                )
        finally:
            await runtime.writer.stop()
            runtime.store.close()
            runtime.directory.close()

    with caplog.at_level(logging.ERROR):
        response = asyncio.run(scenario())
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-7"
    assert response.json() == {"errors": ["Internal Server Error (request id req-7)"]}
    assert any("req-7" in record.getMessage() and path in record.getMessage() for record in caplog.records)


def get(ids: SeriesIds, metric: str, tags: tuple[str, ...]) -> tuple[int, tuple[str, ...]] | str:
    built: list[tuple[str, ...]] = []

    def build() -> tuple[str, ...]:
        built.append(tags)
        return tags

    return ids.get((metric, None, tags), build)


def test_series_ids_normalize_check_and_remember() -> None:
    ids = SeriesIds()
    known = get(ids, "m", ("b:2", "a:1", "b:2"))
    assert known == (series_id("m", ("a:1", "b:2")), ("a:1", "b:2"))
    # The same series sent with its tags in another order is the same series.
    assert get(ids, "m", ("a:1", "b:2"))[0] == known[0]
    assert get(ids, "", ("a:1",)) == "metric name is empty"
    assert get(ids, "m", ("",)) == "has an empty tag"


def test_a_known_series_is_not_put_together_again() -> None:
    ids = SeriesIds()
    calls: list[int] = []
    for _ in range(3):
        ids.get(("m", "host-1", ("env:prod",)), lambda: calls.append(1) or ("env:prod", "host:host-1"))
    assert len(calls) == 1


def test_series_ids_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SeriesIds, "MAX_ENTRIES", 3)
    ids = SeriesIds()
    for n in range(10):
        assert get(ids, f"m{n}", ()) == (series_id(f"m{n}", ()), ())
        assert len(ids._known) <= 3


def test_a_series_without_points_is_checked_but_not_registered() -> None:
    translate = _decoder(_RawPointsPayload, _translate_v2, SeriesIds())
    now = int(time.time() * 1000)
    body = {
        "series": [
            {"metric": "empty", "points": []},
            {"metric": "full", "points": [{"timestamp": now // 1000, "value": 1}], "tags": ["a"]},
        ]
    }
    batch = translate(json.dumps(body).encode(), 7, now)
    assert list(batch.series.values()) == [("full", ("a",))]
    assert len(batch) == 1
    refused = {"series": [{"metric": "empty", "points": [], "tags": [""]}]}
    with pytest.raises(InvalidSeries, match=r"series\[0\]: has an empty tag"):
        translate(json.dumps(refused).encode(), 7, now)
