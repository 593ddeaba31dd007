"""An unexpected failure is a 500 in each face's own error body, logged with the request id."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from google.rpc.status_pb2 import Status

from sextant.config import Settings
from sextant.core.timeutil import now_ms
from sextant.server import build_app, open_runtime
from tests.faces.otlp.exports import every_kind


def _post_with_failing_log(tmp_path: Path, path: str, headers: dict[str, str]) -> httpx.Response:
    runtime = open_runtime(Settings(data_dir=tmp_path / "data", access_log=False))
    assert runtime.bootstrapped is not None
    keys = runtime.bootstrapped.keys
    app = build_app(runtime)
    body = every_kind(now_ms()).SerializeToString()
    credentials = {
        "DD-API-KEY": keys["dd_api_key"],
        "Authorization": f"Bearer {keys['posthog_project_token']}",
    }

    async def scenario() -> httpx.Response:
        runtime.writer.start()
        # A read-only file under the ingest log's descriptor: the next append fails.
        assert runtime.writer._log._file is not None
        read_only = os.open(os.devnull, os.O_RDONLY)
        os.dup2(read_only, runtime.writer._log._file)
        os.close(read_only)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://sextant"
            ) as client:
                return await client.post(
                    path,
                    content=body,
                    headers={
                        "Content-Type": "application/x-protobuf",
                        "X-Request-Id": "req-456",
                        **credentials,
                        **headers,
                    },
                )
        finally:
            await runtime.writer.stop()
            runtime.store.close()
            runtime.directory.close()

    return asyncio.run(scenario())


def test_otlp_500_is_a_status(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = _post_with_failing_log(tmp_path, "/v1/metrics", {})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/x-protobuf"
    status = Status.FromString(response.content)
    assert (status.code, status.message) == (13, "Internal Server Error (request id req-456)")
    assert any("req-456" in record.getMessage() for record in caplog.records)


def test_posthog_capture_500_is_an_error_object(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = _post_with_failing_log(tmp_path, "/i/v1/metrics", {})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content) == {"error": "Internal server error (request id req-456)"}
    assert any("req-456" in record.getMessage() for record in caplog.records)
