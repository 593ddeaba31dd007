"""What every benchmark here shares: wrk and CPU accounting, servers started and stopped, the machine
and code a number belongs to, and the generated sections of docs/performance.md.

Each benchmark owns one section of the doc, between its BEGIN and END markers; rewriting it leaves every
other section and the analysis written by hand as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DOC = REPO / "docs" / "performance.md"
WRK_SCRIPT = BENCH_DIR / "wrk_bodies.lua"
DOC_INTRO = """# Performance

Performance is measured in bench/, as ratios against a baseline measured in the same run (a bare app on
the same HTTP stack) where a baseline exists, and as absolute rates otherwise. Each benchmark rewrites
its own section of this file; the analysis under it is written by hand.
"""
_LISTENING = re.compile(r"listening on (http://\S+)")


class BenchError(Exception):
    """The benchmark cannot run or its measurement is not valid; the message says why."""


@dataclass(frozen=True)
class Server:
    """A server under test, running in its own process."""

    name: str
    url: str
    pid: int


@dataclass(frozen=True)
class Run:
    """One wrk run: what wrk's done() hook printed, and the CPU each party used meanwhile."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    wrk_cpu: float
    server_cpu: float
    # Everything else the machine ran meanwhile: this machine is shared, and this says how much.
    other_cpu: float
    # How long the server kept working after the load stopped (its store catching up), before the next
    # run was started on an idle server.
    settle_s: float = 0.0

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors


def ensure_wrk() -> str:
    """The path of wrk, installing the Debian package first if it is missing."""
    return ensure_command("wrk", "wrk")


def ensure_command(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` first if it is missing."""
    found = shutil.which(command)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise BenchError(
            f"{command} is not installed and this script can only install it as root with apt-get; "
            f"install it yourself (Debian/Ubuntu: `sudo apt-get install {package}`) and rerun"
        )
    print(f"{command} is missing: installing {package} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        result = subprocess.run(step, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise BenchError(
                f"`{' '.join(step)}` failed, so {package} cannot be installed:\n{result.stderr[-2000:]}"
            )
    found = shutil.which(command)
    if not found:
        raise BenchError(f"apt-get installed {package} but {command} is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    # wrk has no --version flag: it prints its banner with the usage and exits 1.
    banner = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
    return banner.split(" [")[0].strip() or "wrk (unknown version)"


def process_cpu_seconds(pid: int) -> float:
    # utime and stime are the 12th and 13th fields after the parenthesised command name (proc(5)).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def processes_cpu_seconds() -> float:
    """CPU time all processes have used: user, nice and system in the first line of /proc/stat."""
    # Interrupt time (the loopback traffic itself) is left out, as it is from a process's utime + stime.
    user, nice, system = (int(v) for v in Path("/proc/stat").read_text().split(maxsplit=4)[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def write_bodies(directory: Path, bodies: Sequence[bytes]) -> Path:
    """Each body in its own file and a list of their paths: what wrk_bodies.lua reads (bodies may be
    binary, gzip for example)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, body in enumerate(bodies):
        path = directory / f"{number:06d}.body"
        path.write_bytes(body)
        paths.append(str(path))
    listing = directory / "bodies.txt"
    listing.write_text("\n".join(paths) + "\n")
    return listing


def mean_body_bytes(listing: Path) -> float:
    sizes = [Path(p).stat().st_size for p in listing.read_text().split()]
    return sum(sizes) / len(sizes)


def post_first_body(url: str, bodies: Path, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """POST the first body of a listing once, by hand: wrk counts statuses but never looks at a body."""
    body = Path(bodies.read_text().split()[0]).read_bytes()
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def run_wrk(
    wrk: str,
    *,
    url: str,
    bodies: Path,
    headers: Mapping[str, str],
    connections: int,
    seconds: float,
    server_pids: Sequence[int],
) -> Run:
    """POST the bodies listed in `bodies` to `url` in turn, from `connections` connections, for `seconds`."""
    command = [
        wrk,
        "--threads=1",  # two cores: one for wrk at most, the rest for the server
        f"--connections={connections}",
        f"--duration={seconds:g}s",
        "--timeout=10s",
        f"--script={WRK_SCRIPT}",
        url,
    ]
    header_lines = "\n".join(f"{name}: {value}" for name, value in headers.items())
    env = {**os.environ, "BENCH_HEADERS": header_lines, "BENCH_BODIES": str(bodies)}
    server_before = sum(process_cpu_seconds(pid) for pid in server_pids)
    wrk_before, all_before = children_cpu_seconds(), processes_cpu_seconds()
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60)
    elapsed = time.monotonic() - started
    server_cpu = (sum(process_cpu_seconds(pid) for pid in server_pids) - server_before) / elapsed
    wrk_cpu = (children_cpu_seconds() - wrk_before) / elapsed
    everyone = (processes_cpu_seconds() - all_before) / elapsed
    summary = _wrk_summary(result)
    settling = time.monotonic()
    # The kernel writes back what this run wrote for up to half a minute after it: the next run (of
    # another server, on the same disk) must not wait behind that in every fdatasync.
    os.sync()
    settle_s = time.monotonic() - settling + wait_idle(server_pids)
    return Run(
        requests_per_s=summary["requests"] / (summary["duration_us"] / 1e6),
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        non_2xx=summary["non_2xx_3xx"],
        socket_errors=sum(summary[k] for k in ("connect", "read", "write", "timeout")),
        wrk_cpu=wrk_cpu,
        server_cpu=server_cpu,
        other_cpu=max(0.0, everyone - server_cpu - wrk_cpu),
        settle_s=settle_s,
    )


def wait_idle(pids: Sequence[int], idle_cores: float = 0.05, limit_s: float = 120.0) -> float:
    """Wait until the processes use less than `idle_cores` of CPU over a 0.25 s sample; how long it took.
    A server that still stores what it acknowledged would otherwise slow the next scenario's run."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = sum(process_cpu_seconds(pid) for pid in pids)
        time.sleep(0.25)
        if (sum(process_cpu_seconds(pid) for pid in pids) - before) / 0.25 < idle_cores:
            break
    return time.monotonic() - started


def interleaved(
    scenarios: Mapping[str, Callable[[float], Run]], rounds: int, seconds: float, warmup: float
) -> dict[str, list[Run]]:
    """Every scenario's runs: a warm-up each, then `rounds` rounds in which each runs once in turn, so that
    drift in the machine's load spreads over every scenario instead of hitting one."""
    for run in scenarios.values():
        run(warmup)
    runs: dict[str, list[Run]] = {name: [] for name in scenarios}
    width = max(len(name) for name in scenarios)
    for number in range(1, rounds + 1):
        for name, run_scenario in scenarios.items():
            run = run_scenario(seconds)
            runs[name].append(run)
            print(
                f"round {number}/{rounds}  {name:<{width}} {run.requests_per_s:>9,.1f} req/s  "
                f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:7.2f} ms  non-2xx {run.non_2xx}  "
                f"CPU: server {run.server_cpu:4.0%}  wrk {run.wrk_cpu:4.0%}  others {run.other_cpu:4.0%}  "
                f"settled in {run.settle_s:.1f} s",
                flush=True,
            )
    return runs


def _wrk_summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return summary
    raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def sextant_command() -> list[str]:
    # `make bench` runs the venv's python; its `sextant` script is the one users run.
    script = Path(sys.executable).parent / "sextant"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sextant"]


def server_env() -> dict[str, str]:
    # Measure this checkout's src/ even when the venv's editable install points at another checkout.
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


@contextlib.contextmanager
def running(name: str, command: Sequence[str], log_dir: Path) -> Iterator[Server]:
    """Start a server on a free port, wait until /ready answers, and always stop it on the way out."""
    stdout_path, stderr_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    # stdout goes to a file: that is where the access log of a real deployment goes too (not a pipe that
    # the benchmark would have to keep draining).
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO, env=server_env())
    try:
        url = _wait_ready(proc, stdout_path, stderr_path, deadline=time.monotonic() + 60)
        yield Server(name, url, proc.pid)
    finally:
        stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path, deadline: float) -> str:
    url = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(
                f"{proc.args!r} exited with {proc.returncode}:\n{stderr_path.read_text()[-2000:]}"
            )
        if url is None:
            match = _LISTENING.search(stdout_path.read_text(errors="replace"))
            url = match.group(1) if match else None
        if url is not None:
            with contextlib.suppress(OSError), urllib.request.urlopen(url + "/ready", timeout=5) as response:
                if response.status == 200:
                    return url
        time.sleep(0.05)
    raise BenchError(f"{proc.args!r} did not become ready within 60 s:\n{stderr_path.read_text()[-2000:]}")


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout_s: float = 60) -> None:
    """Wait until `url` answers 200, failing early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args!r} exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise BenchError(
        f"{proc.args!r} did not answer {url} within {timeout_s:g} s:\n{log_path.read_text()[-2000:]}"
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        # Sextant commits and checkpoints everything it acknowledged before exiting; give it time.
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def provision(data_dir: Path, name: str = "bench") -> dict[str, Any]:
    """A fresh organization in `data_dir` (`sextant orgs create --json`), created before the server starts,
    as an operator would."""
    result = subprocess.run(
        [*sextant_command(), "orgs", "create", name, "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        env=server_env(),
    )
    if result.returncode != 0:
        raise BenchError(f"`sextant orgs create` failed:\n{result.stderr}")
    org: dict[str, Any] = json.loads(result.stdout)
    return org


def sextant_serve(data_dir: Path, *flags: str) -> list[str]:
    return [*sextant_command(), "serve", "--data-dir", str(data_dir), "--port", "0", *flags]


def code_revision() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "a source tree outside git"
    # Numbers belong to the code they were measured on: say so when that is not a commit.
    dirty = git("status", "--porcelain", "--", "src")
    return f"commit {head}" + (" with uncommitted changes in src/" if dirty else "")


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc), {model}; {platform.system()} {platform.release()}"


@dataclass(frozen=True)
class DocSection:
    """One benchmark's generated block in docs/performance.md, under its heading."""

    heading: str
    begin: str
    end: str

    def write(self, body: str) -> None:
        text = f"{self.begin}\n{body}\n{self.end}"
        current = DOC.read_text() if DOC.exists() else DOC_INTRO
        if self.begin in current and self.end in current:
            head, rest = current.split(self.begin, 1)
            updated = head + text + rest.split(self.end, 1)[1]
        else:
            updated = current.rstrip("\n") + f"\n\n{self.heading}\n\n{text}\n"
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(updated)
