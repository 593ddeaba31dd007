"""An unexpected failure is answered in the vendor's 500 format and logged with the request id."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import httpx
import pytest

from sextant.config import Settings
from sextant.server import build_app, open_runtime


def test_store_failure_is_a_datadog_500_with_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = open_runtime(Settings(data_dir=tmp_path / "data", access_log=False))
    assert runtime.bootstrapped is not None
    credentials = runtime.bootstrapped
    app = build_app(runtime)
    body = {
        "application": {"id": credentials.application_id},
        "event": {"name": "x"},
        "type": "server",
        "usr": {"id": "u"},
    }

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
                    "/api/v2/prodlytics",
                    content=json.dumps(body),
                    headers={"DD-API-KEY": credentials.keys["dd_api_key"], "X-Request-Id": "req-123"},
                )
        finally:
            await runtime.writer.stop()
            runtime.store.close()
            runtime.directory.close()

    with caplog.at_level(logging.ERROR):
        response = asyncio.run(scenario())
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-123"
    assert response.json() == {
        "errors": [
            {
                "status": "500",
                "title": "Internal Server Error",
                "detail": "Internal Server Error (request id req-123)",
            }
        ]
    }
    assert any("req-123" in record.getMessage() for record in caplog.records)
