"""Durations as users write them (`250ms`, `2s`, `1m`) and as Envoy wants them (`0.250s`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
DURATION_PATTERN = r"^\d+(\.\d+)?(ms|s|m|h)$"


@dataclass(frozen=True, order=True)
class Duration:
    """A non-negative duration with millisecond resolution."""

    ms: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"expected a duration like 250ms, 2s, 1m or 1h, got {text!r}")
        number, unit = match.groups()
        ms = float(number) * _UNITS_MS[unit]
        if ms != int(ms):
            raise ValueError(f"durations have millisecond resolution, got {text!r}")
        return cls(int(ms))

    @property
    def seconds(self) -> float:
        return self.ms / 1000

    def envoy(self) -> str:
        """Envoy's protobuf JSON form: seconds with up to millisecond digits."""
        whole, frac = divmod(self.ms, 1000)
        return f"{whole}s" if frac == 0 else f"{whole}.{frac:03d}s"

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.ms + other.ms)

    def __mul__(self, factor: int) -> Duration:
        return Duration(self.ms * factor)

    def __str__(self) -> str:
        for unit in ("h", "m", "s"):
            size = _UNITS_MS[unit]
            if self.ms and self.ms % size == 0:
                return f"{self.ms // size}{unit}"
        return f"{self.ms}ms"


def _coerce(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, str):
        return Duration.parse(value)
    raise ValueError(f"expected a duration string like 250ms or 2s, got {value!r}")


DurationField = Annotated[
    Duration,
    BeforeValidator(_coerce),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["250ms", "2s"]}),
]
