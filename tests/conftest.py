from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import RunningServer, provision, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server for the session, on its own data dir."""
    running = start_server(tmp_path_factory.mktemp("shared") / "data")
    yield running
    code = running.stop()
    assert code == 0, running.errors()


@pytest.fixture(scope="session")
def acme(server: RunningServer) -> dict[str, Any]:
    """An organization created with the CLI while the server runs."""
    return provision(server.data_dir, "acme")


@pytest.fixture(scope="session")
def globex(server: RunningServer) -> dict[str, Any]:
    """A second organization, for tenant isolation."""
    return provision(server.data_dir, "globex")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
