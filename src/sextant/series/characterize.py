"""Anomaly characterization ("what changed when this metric jumped"), as PostHog's Metrics API computes it.

Pure computation on aligned arrays: a metric's buckets over a baseline and an anomaly window (one grid,
`present` marking the buckets that had data, NaN values being aggregates that are not finite), and the
same per label value of a candidate key. The steps and constants are PostHog's (`products/metrics/
backend/anomaly.py`):

- Windows: the baseline ends at `anomaly_from` and is as long as the anomaly window unless given; it must
  end at or before `anomaly_from`. Buckets between the two windows are plotted but left out of the
  statistics.
- The statistics take every bucket with a finite value: the baseline's mean and population standard
  deviation, the anomaly's mean and peak (its maximum, whichever way the metric moved), the change ratio
  (anomaly mean over baseline mean; the anomaly mean itself over a zero baseline) and the direction
  (`flat` within 5 % of the baseline mean).
- Onset: the first anomaly bucket that deviates, in the direction of the change, by more than 3 baseline
  standard deviations, half the baseline mean, or 1e-9, whichever is largest.
- Movers: per label value of each candidate key, the mean of its baseline and anomaly buckets; values
  within 5 % of each other are left out; all keys' movers are ranked by |log(ratio)| weighted by the
  larger of the two means (the plain difference where the ratio is not positive or the baseline is 0),
  largest first, and the first 8 kept.
- Candidate keys, when the caller names none: the 4 tag keys carried by the most series that reported in
  the anomaly window, `service.name` read as `service_name`, which is always among them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

MAX_CANDIDATE_KEYS = 4
MAX_TOP_MOVERS = 8
ONSET_STDDEV_THRESHOLD = 3.0
ONSET_RELATIVE_FLOOR = 0.5
MAX_COMBINED_BUCKETS = 2000
# Two means this close (relative, absolute) are the same level.
SAME_RELATIVE = 0.05
SAME_ABSOLUTE = 1e-12
SERVICE_KEY = "service_name"

Direction = Literal["up", "down", "flat"]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Windows:
    """Epoch ms; each window is [from, to)."""

    baseline_from: int
    baseline_to: int
    anomaly_from: int
    anomaly_to: int


def resolve_windows(
    anomaly_from: int, anomaly_to: int, baseline_from: int | None, baseline_to: int | None
) -> Windows:
    """The windows with their defaults; ValueError (PostHog's message) for windows that do not fit."""
    if anomaly_to <= anomaly_from:
        raise ValueError("anomaly_to must be after anomaly_from")
    if baseline_to is None:
        baseline_to = anomaly_from
    if baseline_from is None:
        baseline_from = baseline_to - (anomaly_to - anomaly_from)
    if baseline_to > anomaly_from:
        raise ValueError("the baseline window must end at or before anomaly_from")
    if baseline_to <= baseline_from:
        raise ValueError("baseline_to must be after baseline_from")
    return Windows(baseline_from, baseline_to, anomaly_from, anomaly_to)


def combined_interval(ladder: Sequence[tuple[str, int]], finest: str, windows: Windows) -> str:
    """The interval of the combined query: `finest` (the one the anomaly window alone would get), coarsened
    along `ladder` (name, step ms; finest first) while the whole span would have more than
    MAX_COMBINED_BUCKETS buckets."""
    names = [name for name, _ in ladder]
    index = names.index(finest)
    span = windows.anomaly_to - windows.baseline_from
    while index < len(ladder) - 1 and span / ladder[index][1] > MAX_COMBINED_BUCKETS:
        index += 1
    return ladder[index][0]


def _same(a: FloatArray | float, b: FloatArray | float) -> BoolArray:
    """math.isclose(a, b, rel_tol=5 %, abs_tol=1e-12), elementwise."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    tolerance = np.maximum(SAME_RELATIVE * np.maximum(np.abs(a_), np.abs(b_)), SAME_ABSOLUTE)
    result: BoolArray = np.abs(a_ - b_) <= tolerance
    return result


def _ratio(anomaly: float, baseline: float) -> float:
    return anomaly / baseline if baseline else anomaly


@dataclass(frozen=True)
class WindowStatistics:
    baseline_mean: float
    baseline_stddev: float
    anomaly_mean: float
    anomaly_peak: float
    change_ratio: float
    direction: Direction
    # Index into the buckets of the onset, or None.
    onset: int | None


def window_masks(times: npt.NDArray[np.int64], windows: Windows) -> tuple[BoolArray, BoolArray]:
    """Which buckets (by their start) belong to the baseline and which to the anomaly window."""
    baseline: BoolArray = (times >= windows.baseline_from) & (times < windows.baseline_to)
    anomaly: BoolArray = times >= windows.anomaly_from
    return baseline, anomaly


def window_statistics(
    times: npt.NDArray[np.int64], values: FloatArray, present: BoolArray, windows: Windows
) -> WindowStatistics:
    """The statistics of one series (`values` at `times`, `present` where its bucket had data)."""
    finite = present & np.isfinite(values)
    in_baseline, in_anomaly = window_masks(times, windows)
    baseline = values[finite & in_baseline]
    anomaly = values[finite & in_anomaly]
    baseline_mean = float(baseline.mean()) if len(baseline) else 0.0
    baseline_stddev = float(baseline.std()) if len(baseline) > 1 else 0.0
    anomaly_mean = float(anomaly.mean()) if len(anomaly) else 0.0
    anomaly_peak = float(anomaly.max()) if len(anomaly) else 0.0
    direction: Direction
    if _same(anomaly_mean, baseline_mean):
        direction = "flat"
    else:
        direction = "up" if anomaly_mean > baseline_mean else "down"
    onset = None
    if direction != "flat":
        threshold = max(
            ONSET_STDDEV_THRESHOLD * baseline_stddev, ONSET_RELATIVE_FLOOR * abs(baseline_mean), 1e-9
        )
        with np.errstate(invalid="ignore"):
            deviation = values - baseline_mean if direction == "up" else baseline_mean - values
            beyond = np.flatnonzero(finite & in_anomaly & (deviation > threshold))
        onset = int(beyond[0]) if len(beyond) else None
    return WindowStatistics(
        baseline_mean=baseline_mean,
        baseline_stddev=baseline_stddev,
        anomaly_mean=anomaly_mean,
        anomaly_peak=anomaly_peak,
        change_ratio=_ratio(anomaly_mean, baseline_mean),
        direction=direction,
        onset=onset,
    )


@dataclass(frozen=True)
class Mover:
    key: str
    label: str
    baseline_value: float
    anomaly_value: float
    change_ratio: float

    @property
    def magnitude(self) -> float:
        """How much the label value moved: relative change weighted by scale, so that neither a tiny
        series that tripled nor a large one that barely moved dominates."""
        if self.baseline_value == 0 or self.change_ratio <= 0:
            return abs(self.anomaly_value - self.baseline_value)
        scale = max(abs(self.anomaly_value), abs(self.baseline_value))
        return abs(math.log(self.change_ratio)) * scale


def movers_of_key(
    key: str,
    labels: Sequence[str],
    times: npt.NDArray[np.int64],
    values: FloatArray,
    present: BoolArray,
    windows: Windows,
) -> list[Mover]:
    """The label values of `key` (one row of `values` each) whose level changed between the windows."""
    if not len(labels):
        return []
    finite = present & np.isfinite(values)
    in_baseline, in_anomaly = window_masks(times, windows)
    clean = np.where(finite, values, 0.0)
    baseline_means = _row_means(clean, finite & in_baseline)
    anomaly_means = _row_means(clean, finite & in_anomaly)
    movers = []
    # A label value with no finite bucket in either window is no evidence either way.
    reported = (finite & (in_baseline | in_anomaly)).any(axis=1)
    unchanged = _same(baseline_means, anomaly_means)
    for row in np.flatnonzero(reported & ~unchanged):
        baseline, anomaly = float(baseline_means[row]), float(anomaly_means[row])
        movers.append(Mover(key, labels[int(row)], baseline, anomaly, _ratio(anomaly, baseline)))
    return movers


def _row_means(values: FloatArray, mask: BoolArray) -> FloatArray:
    """Each row's mean over its `mask`ed buckets, 0 where it has none."""
    counts = mask.sum(axis=1)
    sums = np.where(mask, values, 0.0).sum(axis=1)
    means: FloatArray = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    return means


def top_movers(movers: Iterable[Mover]) -> list[Mover]:
    """The MAX_TOP_MOVERS largest movers, by magnitude, then key and label."""
    ranked = sorted(movers, key=lambda m: (-m.magnitude, m.key, m.label))
    return ranked[:MAX_TOP_MOVERS]


def discover_candidate_keys(series_keys: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """The keys to drill into: the MAX_CANDIDATE_KEYS keys carried by the most series (`series_keys`: the
    keys of each series that reported in the anomaly window), ties by name, `service.name` taken as
    `service_name`, and `service_name` always among them."""
    counts: Counter[str] = Counter()
    for carried in series_keys:
        counts.update(carried)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_CANDIDATE_KEYS]
    keys: list[str] = []
    for key, _ in ranked:
        name = SERVICE_KEY if key == "service.name" else key
        if name not in keys:
            keys.append(name)
    if SERVICE_KEY not in keys:
        keys.insert(0, SERVICE_KEY)
    return tuple(keys[:MAX_CANDIDATE_KEYS])
