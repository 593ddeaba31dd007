"""Aligned series: the series engine's one data structure.

A `SeriesFrame` holds n series over the same m epoch-aligned buckets: `values[i, j]` is series i at bucket
`times[j]`, NaN where it has no value (JSON null at the faces). Each series carries its labels (the values
of the group-by keys, None where a series lacks the key) and, for raw series from storage, its tags.
Computations return new frames; nothing mutates one in place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Labels = tuple[str | None, ...]


@dataclass(frozen=True)
class SeriesFrame:
    times: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    group_by: tuple[str, ...]
    labels: list[Labels]
    step_ms: int
    # The stored series behind each row (empty once rows are aggregated across series).
    tags: list[tuple[str, ...]] = field(default_factory=list)
    kind: str | None = None
    unit: str | None = None
    # An expected range per value (anomalies, forecast): same shape as `values`, NaN where there is none.
    lower: npt.NDArray[np.float64] | None = None
    upper: npt.NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.labels), len(self.times)):
            raise ValueError(
                f"values are {self.values.shape}, labels x times are {len(self.labels)} x {len(self.times)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def with_values(self, values: npt.NDArray[np.float64]) -> SeriesFrame:
        """The same series and buckets with other values (and no expected range)."""
        return dataclasses.replace(self, values=values, lower=None, upper=None)

    def group_tags(self, row: int) -> list[str]:
        """Datadog-style `key:value` labels of a row (keys whose value is missing are left out)."""
        return [f"{k}:{v}" for k, v in zip(self.group_by, self.labels[row], strict=True) if v is not None]


def label_sort_key(labels: Labels) -> tuple[tuple[int, str], ...]:
    """Orders label tuples by their values, a missing value after every present one."""
    return tuple((1, "") if v is None else (0, v) for v in labels)


def rows_by_labels(frame: SeriesFrame) -> dict[Labels, list[int]]:
    """The frame's rows of each distinct label tuple, the tuples in label order."""
    groups: dict[Labels, list[int]] = {}
    for row, labels in enumerate(frame.labels):
        groups.setdefault(labels, []).append(row)
    return {labels: groups[labels] for labels in sorted(groups, key=label_sort_key)}


def labels_of_rows(columns: list[list[object]], count: int) -> tuple[list[Labels], npt.NDArray[np.int64]]:
    """`count` result rows' group columns (none when ungrouped) as distinct label tuples (values as text,
    in order of first appearance) and, per row, the index of its label."""
    labels: list[Labels] = []
    index: dict[Labels, int] = {}
    rows = np.zeros(count, dtype=np.int64)
    for r in range(count):
        label = tuple(None if c[r] is None else str(c[r]) for c in columns)
        found = index.get(label)
        if found is None:
            found = index[label] = len(labels)
            labels.append(label)
        rows[r] = found
    return labels, rows


def empty_frame(times: npt.NDArray[np.int64], step_ms: int, group_by: tuple[str, ...] = ()) -> SeriesFrame:
    return SeriesFrame(times, np.empty((0, len(times))), group_by, [], step_ms)
