"""Running the real `sextant` command in a subprocess, as users do, for end-to-end tests."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

_LISTENING = re.compile(r"Sextant listening on (http://\S+)")


def sextant(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI (`python -m sextant ...`) and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "sextant", *args], capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sextant {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def provision(data_dir: Path, name: str) -> dict[str, Any]:
    """`sextant orgs create NAME --json`: the organization's ids and keys."""
    out = sextant("orgs", "create", name, "--data-dir", str(data_dir), "--json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


@dataclass
class RunningServer:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.stdout_path.read_text()

    def errors(self) -> str:
        return self.stderr_path.read_text()


def start_server(data_dir: Path, *extra: str, timeout: float = 60) -> RunningServer:
    """Start `sextant serve` on a free port and wait until /ready answers 200."""
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir.parent / f"{data_dir.name}-logs"
    logs.mkdir(exist_ok=True)
    n = len(list(logs.glob("stdout-*")))
    stdout_path, stderr_path = logs / f"stdout-{n}.log", logs / f"stderr-{n}.log"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sextant", "serve", "--data-dir", str(data_dir), "--port", "0", *extra],
            stdout=out,
            stderr=err,
        )
    deadline = time.monotonic() + timeout
    url = None
    while url is None:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{stderr_path.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server did not start:\n{stderr_path.read_text()}")
        match = _LISTENING.search(stdout_path.read_text())
        if match:
            url = match.group(1)
        else:
            time.sleep(0.05)
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"server never became ready:\n{stderr_path.read_text()}")
        time.sleep(0.05)
    return RunningServer(url, data_dir, proc, stdout_path, stderr_path)
