"""A realistic Product Analytics event set of any size, as Datadog server-side events.

Users follow a power law (a few very active users, a long tail), each event belongs to one of the user's
sessions, event names are Zipf-distributed, and events carry nested custom attributes and numeric
measures. Generation is vectorized (numpy), so 10M events take seconds; `write_parquet` streams it to a
file that `sextant import events` reads.

    python bench/data.py --events 1000000 --app-id <uuid> --out events.parquet
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EVENT_NAMES = [
    "page.viewed", "button.clicked", "search.performed", "item.added_to_cart", "checkout.started",
    "payment.processed", "checkout.completed", "signup.completed", "invite.sent", "export.created",
    "report.viewed", "settings.changed", "payment.failed", "subscription.upgraded", "subscription.cancelled",
]  # fmt: skip
COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "ES", "IT", "NL", "SE", "PL", "AU", "MX"]
TIERS = ["free", "pro", "premium", "enterprise"]
PLANS = ["monthly", "annual"]
BROWSERS = ["chrome", "firefox", "safari", "edge"]
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Shape:
    events: int
    users: int
    days: int
    end_ms: int
    seed: int = 7


def default_shape(events: int, *, end_ms: int | None = None, days: int = 30, seed: int = 7) -> Shape:
    # About 40 events per user on average; at least a handful of users for tiny sets.
    users = max(5, events // 40)
    return Shape(
        events, users, days, end_ms if end_ms is not None else int(time.time() * 1000) - 60_000, seed
    )


def _zipf_choice(rng: np.random.Generator, n_items: int, size: int, a: float) -> np.ndarray[Any, Any]:
    weights = 1.0 / np.arange(1, n_items + 1) ** a
    return rng.choice(n_items, size=size, p=weights / weights.sum())


def generate_columns(shape: Shape, chunk: slice) -> dict[str, np.ndarray[Any, Any]]:
    """Columns for events `chunk` of the set; chunks are independent so they can stream."""
    start, stop = chunk.start, chunk.stop
    rng = np.random.default_rng([shape.seed, start])
    n = stop - start
    # Power-law activity: user k is picked with weight 1/(k+1)^1.1.
    user = _zipf_choice(rng, shape.users, n, 1.1)
    session = user * 1000 + rng.integers(0, 50, n)
    name = _zipf_choice(rng, len(EVENT_NAMES), n, 1.0)
    offset = rng.integers(0, shape.days * DAY_MS, n)
    # Attributes that belong to the user stay stable across their events.
    user_rng = np.random.default_rng([shape.seed, 1])
    user_country = user_rng.integers(0, len(COUNTRIES), shape.users)
    user_tier = _zipf_choice(user_rng, len(TIERS), shape.users, 1.3)
    user_account = user_rng.integers(0, max(1, shape.users // 8), shape.users)
    return {
        "user": user,
        "session": session,
        "name": name,
        "date": shape.end_ms - offset,
        "country": user_country[user],
        "tier": user_tier[user],
        "account": user_account[user],
        "plan": rng.integers(0, len(PLANS), n),
        "browser": rng.integers(0, len(BROWSERS), n),
        "amount": np.round(rng.lognormal(3.0, 1.0, n), 2),
        "duration_ms": rng.integers(5, 5000, n),
        "items": rng.integers(1, 8, n),
        "beta": rng.random(n) < 0.1,
    }


def to_arrow(columns: dict[str, np.ndarray[Any, Any]], app_id: str) -> pa.Table:
    n = len(columns["user"])

    def strings(prefix: str, values: np.ndarray[Any, Any]) -> pa.Array:
        return pa.array(np.char.add(prefix, values.astype(str)))

    def struct(**fields: pa.Array) -> pa.StructArray:
        return pa.StructArray.from_arrays(list(fields.values()), names=list(fields))

    def pick(options: list[str], index: np.ndarray[Any, Any]) -> pa.Array:
        return pa.array(np.asarray(options, dtype=object)[index])

    return pa.table(
        {
            "application": struct(id=pa.array([app_id] * n)),
            "event": struct(name=pick(EVENT_NAMES, columns["name"])),
            "type": pa.array(["server"] * n),
            "usr": struct(id=strings("user-", columns["user"]), plan=pick(PLANS, columns["plan"])),
            "session": struct(id=strings("session-", columns["session"])),
            "account": struct(id=strings("account-", columns["account"])),
            "date": pa.array(columns["date"], pa.int64()),
            "geo": struct(country=pick(COUNTRIES, columns["country"])),
            "customer": struct(tier=pick(TIERS, columns["tier"])),
            "browser": pick(BROWSERS, columns["browser"]),
            "amount": pa.array(columns["amount"], pa.float64()),
            "duration_ms": pa.array(columns["duration_ms"], pa.int64()),
            "cart": struct(items=pa.array(columns["items"], pa.int64())),
            "beta": pa.array(columns["beta"], pa.bool_()),
        }
    )


def chunks(shape: Shape, size: int = 500_000) -> Iterator[slice]:
    for start in range(0, shape.events, size):
        yield slice(start, min(start + size, shape.events))


def events(shape: Shape, app_id: str) -> list[dict[str, Any]]:
    """The whole set as event objects (for tests and small sets)."""
    out: list[dict[str, Any]] = []
    for chunk in chunks(shape):
        out.extend(to_arrow(generate_columns(shape, chunk), app_id).to_pylist())
    return out


def write_parquet(shape: Shape, app_id: str, path: Path) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks(shape):
            table = to_arrow(generate_columns(shape, chunk), app_id)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, required=True, help="how many events")
    parser.add_argument("--app-id", required=True, help="the application id the events name")
    parser.add_argument("--days", type=int, default=30, help="time span, ending now (default 30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True, help="output .parquet file")
    args = parser.parse_args()
    shape = default_shape(args.events, days=args.days, seed=args.seed)
    write_parquet(shape, args.app_id, args.out)
    print(f"wrote {shape.events} events of {shape.users} users to {args.out}")


if __name__ == "__main__":
    main()
