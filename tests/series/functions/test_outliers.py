import math
import statistics

import numpy as np
import pytest

from sextant.series.functions import FunctionArgumentError, lookup, outliers
from tests.series.functions.builders import cells, frame


def five_hosts(deviant_offset: float, seed: int = 0) -> list[list[float | None]]:
    rng = np.random.default_rng(seed)
    base = 50 + 10 * np.sin(np.arange(60) / 6)
    rows = [list(base + rng.normal(0, 1, 60)) for _ in range(5)]
    rows[3] = list(np.array(rows[3]) + deviant_offset)
    return rows


@pytest.mark.parametrize("algorithm", outliers.ALGORITHMS)
@pytest.mark.parametrize("seed", range(3))
def test_one_deviating_group_of_five_is_the_outlier(algorithm: str, seed: int) -> None:
    rows = five_hosts(15, seed)
    rows[0][7] = None  # a gap is not a deviation
    f = frame(rows)
    flags = outliers.outlier_flags(f, algorithm, 3.0, 20)
    assert flags.tolist() == [False, False, False, True, False]
    out = outliers.outliers(f, algorithm, 3.0, 20)
    assert out.labels == [("h3",)]
    assert cells(out.values) == [cells(f.values)[3]]


@pytest.mark.parametrize("algorithm", outliers.ALGORITHMS)
def test_peers_alike_have_no_outlier(algorithm: str) -> None:
    assert not outliers.outlier_flags(frame(five_hosts(0)), algorithm, 3.0, 20).any()


def median_series(rows):
    return [statistics.median([r[j] for r in rows if r[j] is not None]) for j in range(len(rows[0]))]


def reference_dbscan(rows, tolerance):
    med = median_series(rows)
    points = [[med[j] if v is None else v for j, v in enumerate(r)] for r in rows]
    to_median = [math.dist(p, med) for p in points]
    epsilon = tolerance * statistics.median(to_median) * math.sqrt(2)
    n = len(points)
    cluster = [-1] * n
    label = 0
    for start in range(n):
        if cluster[start] >= 0:
            continue
        stack, cluster[start] = [start], label
        while stack:
            a = stack.pop()
            for b in range(n):
                if cluster[b] < 0 and math.dist(points[a], points[b]) <= epsilon:
                    cluster[b] = label
                    stack.append(b)
        label += 1
    sizes = [cluster.count(c) for c in range(label)]
    biggest = [c for c in range(label) if sizes[c] == max(sizes)]
    main = min(range(n), key=lambda i: (cluster[i] not in biggest, to_median[i]))
    return [cluster[i] != cluster[main] for i in range(n)]


def reference_mad(rows, tolerance, pct):
    med = median_series(rows)
    deviations = [[abs(v - med[j]) for j, v in enumerate(r) if v is not None] for r in rows]
    mad = statistics.median([d for ds in deviations for d in ds])
    return [sum(d > tolerance * mad for d in ds) / len(ds) * 100 > pct for ds in deviations]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tolerance", [0.5, 1.0, 3.0])
def test_dbscan_and_mad_match_their_definitions(seed: int, tolerance: float) -> None:
    rng = np.random.default_rng(seed)
    rows = [list(rng.normal(0, 1, 20) + rng.choice([0, 0, 0, 3])) for _ in range(7)]
    rows[2][5] = None
    f = frame(rows)
    assert outliers.outlier_flags(f, "DBSCAN", tolerance).tolist() == reference_dbscan(rows, tolerance)
    for pct in (10, 30):
        assert outliers.outlier_flags(f, "MAD", tolerance, pct).tolist() == reference_mad(
            rows, tolerance, pct
        )


def test_scaled_algorithms_ignore_differences_tiny_next_to_the_values() -> None:
    # Usable memory around 18 GB: one host 60 MB off, a fraction of a percent.
    rng = np.random.default_rng(4)
    rows = [list(18_000 + rng.normal(0, 2, 30)) for _ in range(5)]
    rows[1] = list(np.array(rows[1]) + 60)
    f = frame(rows)
    assert outliers.outlier_flags(f, "MAD", 3, 30).tolist() == [False, True, False, False, False]
    assert not outliers.outlier_flags(f, "scaledMAD", 3, 30).any()
    assert outliers.outlier_flags(f, "DBSCAN", 3).tolist() == [False, True, False, False, False]
    assert not outliers.outlier_flags(f, "scaledDBSCAN", 3).any()
    # A cache hit ratio at 90% among hosts at 99-100%: an outlier on either scale.
    ratios = [list(99.5 + rng.uniform(-0.5, 0.5, 30)) for _ in range(5)]
    ratios[4] = list(90 + rng.uniform(-0.5, 0.5, 30))
    for algorithm in outliers.ALGORITHMS:
        assert outliers.outlier_flags(frame(ratios), algorithm, 3, 30).tolist() == [False] * 4 + [True]


def test_fewer_than_three_groups_and_no_data_have_no_outliers() -> None:
    two = frame([[1.0, 1.0], [100.0, 100.0]])
    for algorithm in outliers.ALGORITHMS:
        assert outliers.outliers(two, algorithm).labels == []
    assert not outliers.outlier_flags(frame([[None, None]] * 4), "MAD").any()
    assert outliers.outliers(frame([], width=3), "DBSCAN").values.shape == (0, 3)


def test_registry_arguments() -> None:
    spec = lookup("outliers")
    f = frame(five_hosts(15))
    bound = spec.bind([f, "dbscan", 3.0])
    assert bound.arguments == {"query": f, "algorithm": "DBSCAN", "tolerance": 3.0, "pct": 20.0}
    assert bound.run().labels == [("h3",)]
    with pytest.raises(
        FunctionArgumentError,
        match=r"the 4th argument \(pct\) must be a number at least 0 and at most 100; got 150",
    ):
        spec.bind([f, "MAD", 3, 150])
    with pytest.raises(
        FunctionArgumentError,
        match=r"must be one of 'DBSCAN', 'scaledDBSCAN', 'MAD', 'scaledMAD'; got 'kmeans'",
    ):
        spec.bind([f, "kmeans"])
