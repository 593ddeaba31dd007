"""The contract every analytics store implements."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import pyarrow as pa

from sextant.core.events import EventBatch
from sextant.core.metrics import PointBatch
from sextant.query.events import EventListQuery, EventQuery
from sextant.query.metrics import SeriesQuery
from sextant.series.frame import SeriesFrame


class QueryTimeout(Exception):
    """A query ran past its time limit and was cancelled."""


class Backend(Protocol):
    def append_events(self, batch: EventBatch, first_event_id: int, log_seq: int | None = None) -> None:
        """Store `batch` in one transaction, durable when this returns; ids run from `first_event_id`.
        With `log_seq`, the same transaction records it as the last ingest-log record stored."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group several appends into one transaction: all of them are kept, or none."""

    def append_points(self, batch: PointBatch, log_seq: int | None = None) -> None:
        """Store metric points and the series they name that are new, durable when this returns. With
        `log_seq`, the same transaction records it as the last ingest-log record stored."""

    def known_series(self) -> set[tuple[int, int]]:
        """(org_id, series_id) of every stored series (a copy)."""

    def series_definitions(
        self, keys: set[tuple[int, int]]
    ) -> dict[tuple[int, int], tuple[str, tuple[str, ...]]]:
        """The name and tags of each of these stored series."""

    def read_points(self, org_id: int, metric: str, start_ms: int, end_ms: int, timeout_s: float) -> pa.Table:
        """Every point of `metric` in [start_ms, end_ms): `metric`, `tags`, `series_id`, then the point
        columns of PointBatch, by series and time."""

    def query_series(self, query: SeriesQuery, timeout_s: float) -> SeriesFrame:
        """The selected series, each rolled up into the query's epoch-aligned buckets (NaN where empty),
        labelled with its group-by values, with the metric's latest kind and unit."""

    def query_histogram_buckets(self, query: SeriesQuery, timeout_s: float) -> pa.Table:
        """Per selected series, bucket and bucket layout: `series_id`, `tags`, `bucket`, `bounds` and
        `counts`, the increases of the histogram bucket counts over the bucket's points (a delta point's
        counts; for cumulative ones the difference from the series' previous point in the range, the
        counts themselves after a reset, zeros for its first), added up count by count."""

    def metric_info(self, org_id: int, metric: str, timeout_s: float) -> tuple[str, str | None] | None:
        """The metric's latest kind and unit, or None when it has no points."""

    def metric_names(self, org_id: int, timeout_s: float) -> pa.Table:
        """One row per metric name: `metric`, `kind`, `unit`, `temporality`, `monotonic`,
        `first_seen_ms`, `last_seen_ms` (of the latest point)."""

    def loaded_log_seq(self) -> int:
        """The last ingest-log record stored (0: none)."""

    def max_event_id(self) -> int:
        """The largest event id stored, 0 when there is none."""

    @property
    def has_maintenance(self) -> bool:
        """Whether background work is waiting for the writer thread."""

    def maintain(self) -> None:
        """Do one bounded step of background work; called by the writer thread between commits."""

    def delete_events_before(self, time_ms: int) -> int:
        """Drop events older than `time_ms` (retention); returns how many were dropped."""

    def delete_points_before(self, time_ms: int) -> int:
        """Drop metric points older than `time_ms` (retention); returns how many were dropped."""

    def query_events(self, query: EventQuery, timeout_s: float) -> pa.Table:
        """Columns `k0..kn` (group values), `bucket` (timeseries only) and `value`, one row per result."""

    def list_events(self, query: EventListQuery, timeout_s: float) -> tuple[pa.Table, int]:
        """The matching events (`event_id`, `time_ms`, standard fields named by path, `attributes` and the
        requested columns `c0..cn` as JSON text) and how many match in all."""

    def close(self) -> None:
        """Flush and release the store."""
