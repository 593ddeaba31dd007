"""PostHog's Metrics API (`/api/projects/{id}/metrics/...` and `/api/environments/{id}/metrics/...`)."""

from __future__ import annotations

from sextant.control.directory import Directory
from sextant.edge.endpoints import Endpoint
from sextant.storage.backend import Backend


class PostHogMetricsApi:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        return []
