"""Datadog logs intake: POST /api/v2/logs."""

from __future__ import annotations

from sextant.config import Limits
from sextant.control.directory import Directory
from sextant.edge.endpoints import Endpoint
from sextant.ingest.writer import GroupCommitWriter
from sextant.storage.backend import Backend


class DatadogLogsIntake:
    def __init__(
        self, directory: Directory, writer: GroupCommitWriter, store: Backend, limits: Limits
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._store = store
        self._limits = limits

    def endpoints(self) -> list[Endpoint]:
        return []
