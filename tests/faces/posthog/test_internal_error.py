"""An unexpected failure of a Metrics API query is a 500 in PostHog's error body, with the request id."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from sextant.config import Settings
from sextant.server import build_app, open_runtime


def test_store_failure_is_a_posthog_500_with_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = open_runtime(Settings(data_dir=tmp_path / "data", access_log=False))
    assert runtime.bootstrapped is not None
    credentials = runtime.bootstrapped
    app = build_app(runtime)
    # The store's connection goes away under the server: the query cannot run.
    runtime.store._con.close()
    body = {
        "query": {"metricName": "m", "dateFrom": "2024-05-01T00:00:00Z", "dateTo": "2024-05-02T00:00:00Z"}
    }

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://sextant") as client:
            return await client.post(
                f"/api/projects/{credentials.posthog_project_id}/metrics/query",
                json=body,
                headers={
                    "Authorization": f"Bearer {credentials.keys['posthog_personal_key']}",
                    "X-Request-Id": "req-789",
                },
            )

    try:
        with caplog.at_level(logging.ERROR):
            response = asyncio.run(scenario())
    finally:
        runtime.directory.close()
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-789"
    assert response.json() == {
        "type": "server_error",
        "code": "error",
        "detail": "Internal Server Error (request id req-789)",
        "attr": None,
    }
    assert any("req-789" in record.getMessage() for record in caplog.records)
