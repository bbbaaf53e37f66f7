"""Small, pure statistics helpers shared by the sections."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is not positive."""
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


BOOTSTRAP_RESAMPLES = 2000


def median_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """A bootstrap confidence interval of the median (percentile method). The generator is
    seeded, so the same samples always give the same interval. None for fewer than 3 values."""
    if len(values) < 3:
        return None
    generator = random.Random(0)
    medians = sorted(statistics.median(generator.choices(values, k=len(values))) for _ in range(BOOTSTRAP_RESAMPLES))
    tail = (1 - confidence) / 2
    return float(medians[int(tail * BOOTSTRAP_RESAMPLES)]), float(medians[int((1 - tail) * BOOTSTRAP_RESAMPLES) - 1])
