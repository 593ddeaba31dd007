"""Product Analytics query benchmark: each query through the HTTP API, and as hand-written DuckDB SQL on
the same file (the engine's floor), in the same run.

    .venv/bin/python bench/query.py [--events 10000000] [--repeat 15]

The data set (bench/data.py, imported with `sextant import events`) is built once and kept under
bench/.work/ for later runs. DuckDB lets one process open the file, so the two sides take turns: the
server answers its round, stops, then this process runs the SQL round; two rounds each, medians quoted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.data import default_shape, write_parquet

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
SEXTANT = [sys.executable, "-m", "sextant"]
APP_ID = "b3a9c0de-0000-4000-8000-000000000001"
DAY = 86_400_000
HOUR = 3_600_000
GOAL_RATIO = 1.3
GOAL_P50_MS = 200.0


@dataclass(frozen=True)
class Dataset:
    data_dir: Path
    keys: dict[str, str]
    org_id: int
    start: int
    end: int


def run(*args: str) -> str:
    return subprocess.run([*SEXTANT, *args], check=True, capture_output=True, text=True).stdout


def build_dataset(events: int) -> Dataset:
    """Generate and import the events once; later runs reuse the data dir."""
    data_dir = WORK / f"query-{events}"
    manifest = data_dir / "bench.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        return Dataset(data_dir, saved["keys"], saved["org_id"], saved["start"], saved["end"])
    if data_dir.exists():
        subprocess.run(["rm", "-rf", str(data_dir)], check=True)
    data_dir.mkdir(parents=True)
    org = json.loads(run("orgs", "create", "bench", "--data-dir", str(data_dir), "--json"))
    run("apps", "create", "bench", "--org", "bench", "--id", APP_ID, "--data-dir", str(data_dir))
    shape = default_shape(events, days=30)
    parquet = WORK / f"events-{events}.parquet"
    print(f"generating {events} events ...", flush=True)
    write_parquet(shape, APP_ID, parquet)
    print("importing (sextant import events) ...", flush=True)
    started = time.perf_counter()
    subprocess.run(
        [*SEXTANT, "import", "events", str(parquet), "--org", "bench", "--data-dir", str(data_dir)],
        check=True,
    )
    print(f"imported in {time.perf_counter() - started:.0f} s", flush=True)
    parquet.unlink()
    end = shape.end_ms + 1
    saved = {"keys": org["keys"], "org_id": org["org_id"], "start": end - 30 * DAY, "end": end}
    manifest.write_text(json.dumps(saved))
    return Dataset(data_dir, org["keys"], org["org_id"], saved["start"], saved["end"])


# --- the queries: the API request, and the SQL a person would write against the same tables -----------


@dataclass(frozen=True)
class Case:
    name: str
    endpoint: str
    query: dict[str, Any]
    interval: int | None
    sql: Callable[[Callable[[str], str]], str]  # given a column-for-attribute lookup


def _search(text: str, data_source: str = "product_analytics", **extra: Any) -> dict[str, Any]:
    return {"data_source": data_source, "search": {"query": text, **extra}}


CASES = [
    Case(
        "count by facet, filtered",
        "scalar",
        {
            "query": _search("@event.name:checkout.completed @customer.tier:premium"),
            "compute": {"aggregation": "count"},
            "group_by": [{"facet": "@geo.country", "limit": 10}],
        },
        None,
        lambda c: (
            f"SELECT coalesce({c('geo.country')}, 'N/A') AS k, count(*) AS n FROM events WHERE {{scope}} "
            f"AND event_name = 'checkout.completed' AND {c('customer.tier')} = 'premium' "
            "GROUP BY k ORDER BY n DESC LIMIT 10"
        ),
    ),
    Case(
        "daily unique users",
        "timeseries",
        {
            "query": _search("*"),
            "compute": {"aggregation": "cardinality", "metric": "@usr.id", "interval": DAY},
        },
        DAY,
        lambda c: (
            "SELECT time_ms - time_ms % 86400000 AS t, count(DISTINCT usr_key) FROM events "
            "WHERE {scope} GROUP BY t ORDER BY t"
        ),
    ),
    Case(
        "p95 of a measure by facet",
        "scalar",
        {
            "query": _search("*"),
            "compute": {"aggregation": "pc95", "metric": "@amount"},
            "group_by": [{"facet": "@customer.tier", "limit": 10}],
        },
        None,
        lambda c: (
            f"SELECT coalesce({c('customer.tier')}, 'N/A') AS k, "
            f"quantile_cont({c('amount', 'd')}, 0.95) AS v "
            "FROM events WHERE {scope} GROUP BY k ORDER BY v DESC LIMIT 10"
        ),
    ),
    Case(
        "occurrence: users with >= 3 payments",
        "scalar",
        {
            "query": _search(
                "@event.name:payment.processed",
                "product_analytics_occurrence",
                occurrences={"operator": ">=", "value": "3"},
            ),
            "compute": {"aggregation": "cardinality", "metric": "@usr.id"},
        },
        None,
        lambda c: (
            "SELECT count(*) FROM (SELECT usr_key FROM events "
            "WHERE {scope} AND event_name = 'payment.processed' "
            "GROUP BY usr_key HAVING count(*) >= 3)"
        ),
    ),
    Case(
        "audience: enterprise users, not cancelled",
        "scalar",
        {
            "query": _search("@event.name:checkout.completed"),
            "compute": {"aggregation": "count"},
            "audience_filters": {
                "users": [
                    {"name": "ent", "query": "@customer.tier:enterprise"},
                    {"name": "gone", "query": "@event.name:subscription.cancelled"},
                ],
                "formula": "ent AND NOT gone",
            },
        },
        None,
        lambda c: (
            "SELECT count(*) FROM events WHERE {scope} AND event_name = 'checkout.completed' "
            "AND usr_key IN (SELECT usr_key FROM events "
            f"WHERE {{scope}} AND {c('customer.tier')} = 'enterprise') "
            "AND usr_key NOT IN (SELECT usr_key FROM events "
            "WHERE {scope} AND event_name = 'subscription.cancelled')"
        ),
    ),
    Case(
        "timeseries, 30 days at 1 hour",
        "timeseries",
        {"query": _search("*"), "compute": {"aggregation": "count", "interval": HOUR}},
        HOUR,
        lambda c: (
            "SELECT time_ms - time_ms % 3600000 AS t, count(*) FROM events "
            "WHERE {scope} GROUP BY t ORDER BY t"
        ),
    ),
]


def _body(data: Dataset, case: Case) -> dict[str, Any]:
    attrs = {"from": data.start, "to": data.end, "query": case.query}
    return {"data": {"type": "formula_analytics_extended_request", "attributes": attrs}}


def _time(fn: Callable[[], None], repeat: int) -> list[float]:
    fn()  # warm: caches, and the first run of each query on the server
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def http_round(data: Dataset, repeat: int) -> dict[str, list[float]]:
    log = open(WORK / "server.log", "ab")  # noqa: SIM115 - closed below, after the server stops
    server = subprocess.Popen(
        [*SEXTANT, "serve", "--data-dir", str(data.data_dir), "--port", "0", "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = ""
        while not url:
            line = server.stdout.readline()
            if not line:
                raise SystemExit("the server exited; see bench/.work/server.log")
            match = re.search(r"listening on (http://\S+)", line)
            url = match.group(1) if match else ""
        headers = {"DD-API-KEY": data.keys["dd_api_key"], "DD-APPLICATION-KEY": data.keys["dd_app_key"]}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            for case in CASES:  # first queries ask for attribute columns: let them be built before timing
                client.post(f"/api/v2/product-analytics/analytics/{case.endpoint}", json=_body(data, case))
            while client.get("/ready").json().get("background_work"):
                time.sleep(0.5)
            results = {}
            for case in CASES:

                def call(case: Case = case) -> None:
                    response = client.post(
                        f"/api/v2/product-analytics/analytics/{case.endpoint}", json=_body(data, case)
                    )
                    response.raise_for_status()

                results[case.name] = _time(call, repeat)
        return results
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        log.close()


def sql_round(data: Dataset, repeat: int) -> dict[str, list[float]]:
    con = duckdb.connect(str(data.data_dir / "sextant.duckdb"), read_only=True)
    slots = dict(con.execute("SELECT path, slot FROM attribute_columns").fetchall())

    def column(path: str, kind: str = "s") -> str:
        return (
            f"a{slots[path]}_{kind}"
            if path in slots
            else (
                f"CAST(attributes->>'$.\"{path}\"' AS DOUBLE)"
                if kind == "d"
                else f"attributes->>'$.\"{path}\"'"
            )
        )

    scope = f"org_id = {data.org_id} AND time_ms >= {data.start} AND time_ms < {data.end}"
    results = {}
    for case in CASES:
        sql = case.sql(column).replace("{scope}", scope)
        results[case.name] = _time(lambda sql=sql: con.execute(sql).fetchall() and None, repeat)
    con.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per query per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = build_dataset(args.events)
    http: dict[str, list[float]] = {c.name: [] for c in CASES}
    sql: dict[str, list[float]] = {c.name: [] for c in CASES}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}: HTTP API ...", flush=True)
        for name, samples in http_round(data, args.repeat).items():
            http[name] += samples
        print(f"round {r + 1}/{args.rounds}: hand-written SQL ...", flush=True)
        for name, samples in sql_round(data, args.repeat).items():
            sql[name] += samples
    rows = []
    for case in CASES:
        api, floor = statistics.median(http[case.name]), statistics.median(sql[case.name])
        ratio = api / floor
        met = ratio <= GOAL_RATIO and api <= GOAL_P50_MS
        rows.append((case.name, api, floor, ratio, met))
    table = [
        "| query | API p50 (ms) | hand-written SQL p50 (ms) | ratio | goal (at most 1.3x and 200 ms) |",
        "|---|---:|---:|---:|---|",
    ]
    table += [f"| {n} | {a:.1f} | {f:.1f} | {r:.2f} | {'met' if m else 'missed'} |" for n, a, f, r, m in rows]
    print("\n".join(table))
    write_doc(args.doc, args.events, args.repeat * args.rounds, table)


def write_doc(doc: Path, events: int, samples: int, table: list[str]) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    section = "\n".join(
        [
            "## Product Analytics queries (`bench/query.py`)",
            "",
            f"Command: `.venv/bin/python bench/query.py --events {events}` ({datetime.now(UTC):%Y-%m-%d}, "
            f"{os.cpu_count()} cores, {cpu}). {events:,} events of {max(5, events // 40):,} users "
            "over 30 days "
            f"(bench/data.py), imported with `sextant import events`; {samples} timed runs per query "
            "on each side "
            "after a warm-up, medians quoted. The API side is a real HTTP round trip to `sextant serve` "
            "(JSON encoding included); the SQL side is what a person would write against the same file, "
            "using "
            "the typed attribute columns the server created and the integer user keys.",
            "",
            *table,
            "",
        ]
    )
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    start = text.find("## Product Analytics queries")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    doc.write_text(text)


if __name__ == "__main__":
    main()
