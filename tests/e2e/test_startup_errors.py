"""`sextant serve` refuses clearly when it cannot start."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tests.serverproc import sextant, start_server


def test_port_in_use_and_data_dir_in_use(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data")
    try:
        port = str(urlsplit(running.url).port)
        taken = sextant("serve", "--data-dir", str(tmp_path / "other"), "--port", port, check=False)
        assert taken.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in " ".join(taken.stderr.split())
        busy = sextant("serve", "--data-dir", str(tmp_path / "data"), "--port", "0", check=False)
        assert busy.returncode == 1
        assert "is `sextant serve` running on this data dir?" in " ".join(busy.stderr.split())
    finally:
        assert running.stop() == 0
