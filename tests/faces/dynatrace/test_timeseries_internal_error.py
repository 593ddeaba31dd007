"""An unexpected failure of the Timeseries API v1 is Dynatrace's 500 envelope, logged with the request id."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from sextant.config import Settings
from sextant.server import build_app, open_runtime


def test_a_store_failure_is_a_dynatrace_500_with_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = open_runtime(Settings(data_dir=tmp_path / "data", access_log=False))
    assert runtime.bootstrapped is not None
    token = runtime.bootstrapped.keys["dynatrace_token"]
    app = build_app(runtime)

    async def scenario() -> httpx.Response:
        runtime.writer.start()
        await runtime.writer.stop()
        # The store is gone under the face: its next read fails.
        runtime.store.close()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://sextant"
            ) as client:
                return await client.get(
                    "/api/v1/timeseries",
                    headers={"Authorization": f"Api-Token {token}", "X-Request-Id": "req-dt-1"},
                )
        finally:
            runtime.directory.close()

    with caplog.at_level(logging.ERROR):
        response = asyncio.run(scenario())
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-dt-1"
    assert response.json() == {
        "error": {"code": 500, "message": "Internal Server Error (request id req-dt-1)"}
    }
    assert any("req-dt-1" in record.getMessage() for record in caplog.records)
