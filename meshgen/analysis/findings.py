"""What lint reports: a finding per problem, and the thresholds that decide some of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    max_amplification: int = 10
    min_timeout_margin_ms: int = 0


@dataclass(frozen=True)
class Finding:
    # amplification | retry-budget | timeout-budget | cycle | unreachable | shadowed-route | no-retry
    # | mtls | cert-lifetime | authorization | external-tls
    check: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"  # error: lint fails; warning: reported, lint passes
