"""Dynatrace Timeseries API v1 (`/api/v1/timeseries`): stored metrics as Dynatrace's clients read them."""

from __future__ import annotations

from sextant.control.directory import Directory
from sextant.edge.endpoints import Endpoint
from sextant.storage.backend import Backend


class DynatraceTimeseriesApi:
    def __init__(self, directory: Directory, store: Backend) -> None:
        self._directory = directory
        self._store = store

    def endpoints(self) -> list[Endpoint]:
        return []
