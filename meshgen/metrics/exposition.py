"""Prometheus's text exposition format, as Envoy's /stats/prometheus writes it, into samples."""

from __future__ import annotations

import math
import re
from collections.abc import Container

# A series: its metric name and its labels, sorted, so two samples of it compare equal.
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Snapshot = dict[SeriesKey, float]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _value(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


def parse_labels(text: str) -> tuple[tuple[str, str], ...]:
    labels = []
    position = 0
    while position < len(text):
        found = _LABEL.match(text, position)
        if found is None:
            if text[position:].strip(" ,"):
                raise ValueError(f"cannot read labels {text!r}")
            break
        value = re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], found.group(2))
        labels.append((found.group(1), value))
        position = found.end()
    return tuple(sorted(labels))


def parse(text: str, names: Container[str] | None = None) -> Snapshot:
    """Every sample in `text` (of the metrics named in `names`, if given); comments are skipped."""
    samples: Snapshot = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _SAMPLE.match(line)
        if found is None:
            raise ValueError(f"not a sample: {line!r}")
        name, labels, value = found.groups()
        if names is not None and name not in names:
            continue
        samples[(name, parse_labels(labels or ""))] = _value(value)
    return samples


def key(name: str, labels: dict[str, str]) -> SeriesKey:
    return name, tuple(sorted(labels.items()))
