"""Datadog metric intake: POST /api/v2/series, /api/v1/series, /api/v1/distribution_points; metadata."""

from __future__ import annotations

from sextant.config import Limits
from sextant.control.directory import Directory
from sextant.edge.endpoints import Endpoint
from sextant.ingest.writer import GroupCommitWriter
from sextant.storage.backend import Backend


class DatadogMetricsIntake:
    def __init__(
        self, directory: Directory, writer: GroupCommitWriter, store: Backend, limits: Limits
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._store = store
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        return []
