"""How far an observed share may stray from the expected one before a check fails."""

from __future__ import annotations

import math

# 4.5 standard deviations: a correct mesh fails a check about once in 150,000 runs.
Z = 4.5


def tolerance(expected_share: float, samples: int) -> float:
    spread = math.sqrt(max(expected_share * (1 - expected_share), 0.0) / samples)
    return Z * spread + 1 / samples


def share_ok(observed: int, samples: int, expected_share: float) -> tuple[bool, float]:
    allowed = tolerance(expected_share, samples)
    return abs(observed / samples - expected_share) <= allowed, allowed
