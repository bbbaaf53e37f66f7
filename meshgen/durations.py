"""Durations as users write them (`250ms`, `2s`, `1m`) and as Envoy wants them (`0.250s`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from meshgen.errors import quote

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PATTERN = re.compile(r"^\s*(\d+)(?:\.(\d+))?\s*(ms|s|m|h)\s*$")
DURATION_PATTERN = r"^\d+(\.\d+)?(ms|s|m|h)$"


@dataclass(frozen=True, order=True)
class Duration:
    """A non-negative duration with millisecond resolution."""

    ms: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"expected a duration like 250ms, 2s, 1m or 1h, got {quote(text)}")
        whole, fraction, unit = match.groups()
        whole, fraction = whole.lstrip("0"), (fraction or "").rstrip("0")
        # Digits are counted before any arithmetic: a 400-digit number overflows a float, and
        # Python refuses to turn more than 4,300 digits into an int.
        if len(whole) > _MAX_WHOLE_DIGITS:
            raise ValueError(f"must be {_BOUND}, got {quote(text)}")
        if len(fraction) > _MAX_FRACTION_DIGITS:
            raise ValueError(f"durations have millisecond resolution, got {quote(text)}")
        # Exact arithmetic: a float would take 0.0010000000000000001s for 1ms.
        ms = Fraction(f"{whole or 0}.{fraction or 0}") * _UNITS_MS[unit]
        if ms.denominator != 1:
            raise ValueError(f"durations have millisecond resolution, got {quote(text)}")
        if ms > MAX_DURATION.ms:
            raise ValueError(f"must be {_BOUND}, got {quote(text)}")
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


# Envoy (1.40) turns every duration into int64 nanoseconds and refuses more whole seconds than
# fit, (2**63 - 1 - 999_999_999) // 10**9 = 9,223,372,035 ("Duration out-of-range"): about 292
# years, and far below google.protobuf.Duration's own limit of 315,576,000,000 s.
MAX_DURATION = Duration(9_223_372_035_999)
# No duration with more whole digits than this (in any unit) fits under MAX_DURATION, and none
# with more decimals is a whole number of milliseconds (1h is 2**7 * 5**5 * 9 ms: seven at most).
_MAX_WHOLE_DIGITS = len(str(MAX_DURATION.ms))
_MAX_FRACTION_DIGITS = 7
_BOUND = f"at most {MAX_DURATION.envoy()} (about 292 years)"


def _coerce(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, str):
        return Duration.parse(value)
    raise ValueError(f"expected a duration string like 250ms or 2s, got {quote(value)}")


def _coerce_positive(value: Any) -> Duration:
    duration = _coerce(value)
    if duration.ms == 0:
        raise ValueError(f"must be greater than 0, got {quote(value)}")
    return duration


# What JSON Schema can say of a duration: its pattern (which, for positive ones, also refuses
# zero) and, in words, its bounds. meshgen.catalog.schema adds the words back where a field's
# own description replaces its type's.
POSITIVE_DURATION_PATTERN = r"^(?!0*(\.0*)?(ms|s|m|h)$)\d+(\.\d+)?(ms|s|m|h)$"
DURATION_BOUNDS = {
    DURATION_PATTERN: f"a duration: 250ms, 2s, 1m or 1h; 0 or more, {_BOUND}",
    POSITIVE_DURATION_PATTERN: f"a duration: 250ms, 2s, 1m or 1h; greater than 0, {_BOUND}",
}


def _schema(pattern: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": pattern, "examples": ["250ms", "2s"], "description": DURATION_BOUNDS[pattern]}
    )


# Every duration of the catalog is one of these two, bounded like the Envoy field it becomes.
DurationField = Annotated[
    Duration,
    BeforeValidator(_coerce),
    PlainSerializer(str, return_type=str),
    _schema(DURATION_PATTERN),
]


def _coerce_timeout(value: Any) -> Duration:
    """`none` (or 0s) is no timeout at all, as Envoy reads a zero route timeout."""
    return Duration(0) if isinstance(value, str) and value.strip() == "none" else _coerce(value)


TIMEOUT_PATTERN = r"^(none|\d+(\.\d+)?(ms|s|m|h))$"
DURATION_BOUNDS[TIMEOUT_PATTERN] = f"a timeout: 250ms, 2s, 1m or 1h, {_BOUND}; none (or 0s) for no timeout"
# Timeouts of calls: `none` (or 0s) means the call may take as long as it takes.
TimeoutField = Annotated[
    Duration,
    BeforeValidator(_coerce_timeout),
    PlainSerializer(lambda d: "none" if d.ms == 0 else str(d), return_type=str),
    _schema(TIMEOUT_PATTERN),
]
# For the Envoy fields whose validate rules say `duration.gt: {}` (connect and health-check
# timeouts, outlier and health-check intervals, ejection time, back-off, fault delay, token
# bucket fill interval): Envoy refuses 0s.
PositiveDurationField = Annotated[
    Duration,
    BeforeValidator(_coerce_positive),
    PlainSerializer(str, return_type=str),
    _schema(POSITIVE_DURATION_PATTERN),
]
