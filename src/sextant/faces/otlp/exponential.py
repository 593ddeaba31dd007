"""OTLP exponential histograms flattened to explicit bounds and bucket counts.

At scale `s` the bucket boundaries are the powers of `base = 2^(2^-s)`: positive bucket `i` holds the
values in `(base^i, base^(i+1)]`, negative bucket `i` the values whose magnitude is in that range, and
the zero bucket the values within the zero threshold. `positive.offset` is the index of the first entry
of `positive.bucket_counts` (likewise for `negative`).

The stored form is the one of an OTLP explicit histogram: ascending `bounds` b0 < b1 < ... and
`len(bounds) + 1` counts for `(-inf, b0], (b0, b1], ..., (b_last, +inf)`:

    bounds = [-base^(n_hi+1), ..., -base^n_lo,   base^p_lo, ..., base^(p_hi+1)]
    counts = [0, negative counts from index n_hi down to n_lo, zero_count, positive counts, 0]

so every populated bucket keeps both of its boundaries, and the zero bucket spans the gap between the
innermost negative and positive boundaries (empty buckets at the ends of a range are left out). Without
negative buckets the zero bucket is the first one, `(-inf, base^p_lo]`; without positive buckets it is
the last one. A negative bucket becomes `(-base^(i+1), -base^i]` where OTLP's is
`[-base^(i+1), -base^i)`: the two differ only for values exactly on a boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# The OpenTelemetry data model's range of scales; outside it, boundaries are either coarser than a
# double's exponent range or finer than its precision.
MIN_SCALE = -10
MAX_SCALE = 20


class BoundsOutOfRange(ValueError):
    """A scale outside the data model's range, or a bucket boundary beyond what a double can hold."""


def bucket_bound(scale: int, index: int) -> float:
    """`base^index` with `base = 2^(2^-scale)`, i.e. `2^(index / 2^scale)`, as exactly as a double allows."""
    _check_scale(scale)
    try:
        if scale <= 0:
            # An integer power of two: exact.
            bound = math.ldexp(1.0, index << -scale)
        else:
            # 2^(q + r/2^scale) = 2^(r/2^scale) * 2^q: the fractional power is in [1, 2), so pow is within
            # an ulp, and ldexp is exact.
            whole, remainder = divmod(index, 1 << scale)
            bound = math.ldexp(2.0 ** (remainder / (1 << scale)), whole)
    except OverflowError:
        bound = math.inf
    if bound == 0.0 or math.isinf(bound):
        raise BoundsOutOfRange(
            f"bucket index {index} at scale {scale} has a boundary beyond the range of a double"
        )
    return bound


def _trimmed(offset: int, counts: Sequence[int]) -> tuple[int, Sequence[int]]:
    first = next((i for i, c in enumerate(counts) if c), len(counts))
    last = next((i for i in range(len(counts) - 1, -1, -1) if counts[i]), -1)
    return offset + first, counts[first : last + 1]


def _check_scale(scale: int) -> None:
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise BoundsOutOfRange(f"scale {scale} is outside the supported range {MIN_SCALE} to {MAX_SCALE}")


def flatten(
    scale: int,
    zero_count: int,
    positive_offset: int,
    positive_counts: Sequence[int],
    negative_offset: int,
    negative_counts: Sequence[int],
) -> tuple[list[float], list[int]]:
    """(bounds, counts) of the explicit histogram holding the same buckets (see the module docstring).

    Empty buckets at either end of a range hold nothing, and are left out: the SDKs send a range of
    one empty bucket for a histogram without negative values."""
    _check_scale(scale)
    positive_offset, positive_counts = _trimmed(positive_offset, positive_counts)
    negative_offset, negative_counts = _trimmed(negative_offset, negative_counts)
    bounds: list[float] = []
    counts: list[int] = []
    if negative_counts:
        top = negative_offset + len(negative_counts)
        bounds.extend(-bucket_bound(scale, i) for i in range(top, negative_offset - 1, -1))
        counts.append(0)
        counts.extend(reversed(negative_counts))
    counts.append(zero_count)
    if positive_counts:
        top = positive_offset + len(positive_counts)
        bounds.extend(bucket_bound(scale, i) for i in range(positive_offset, top + 1))
        counts.extend(positive_counts)
        counts.append(0)
    return bounds, counts
