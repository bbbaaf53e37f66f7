"""Live numbers per edge: request rate, error rate and p99, behind one small interface.

`EdgeMetrics` is what the dashboard asks every few seconds; `EnvoyAdminMetrics` answers from the
callers' sidecars and gateways, reading their counters and latency histograms through each Envoy's
admin interface and turning successive samples into rates over a sliding window. Another source (a
Prometheus server, say) implements the same one method.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from meshgen.dashboard.topology import Edge, Reading, Topology
from meshgen.metrics.red import grown
from meshgen.verify.http import send

# A histogram as Envoy's admin details it: (lower bound, width) of each bin, ms -> count so far.
Bins = dict[tuple[float, float], int]

# Error shares at and above which an edge is drawn amber and red.
DEGRADED = 0.0
FAILING = 0.05


@dataclass(frozen=True)
class EdgeStats:
    """What one edge carried over the last `window` seconds. None: not known (a sidecar did not
    answer, no second sample yet, or no request to take a share or a percentile of)."""

    rate: float | None  # requests per second (TCP: connections)
    errors: float | None  # share of those that failed (5xx; TCP: failed connects), 0 to 1
    p99: float | None  # milliseconds
    window: float  # seconds the numbers cover

    @property
    def health(self) -> str:
        """unknown, idle (nothing sent), ok, degraded (some failed) or failing (FAILING or more)."""
        if self.rate is None:
            return "unknown"
        if self.errors is None:
            return "idle"
        if self.errors >= FAILING:
            return "failing"
        if self.errors > DEGRADED:
            return "degraded"
        return "ok"


class EdgeMetrics(Protocol):
    """A source of edge numbers. `sample` is called every few seconds with the current graph and
    returns what it knows, by edge id (an edge left out is shown as unknown)."""

    description: str  # for the page: where the numbers come from

    async def sample(self, topology: Topology) -> dict[str, EdgeStats]: ...


@dataclass(frozen=True)
class Snapshot:
    """One admin's stats at one moment."""

    taken: float  # time.monotonic()
    counters: dict[str, int]
    histograms: dict[str, Bins]


def read_admin(admin: str, names: list[str]) -> Snapshot | None:
    """The named counters and histograms of the Envoy whose admin answers at `admin`; None when it
    does not answer. Counters Envoy has not created yet (no 5xx so far) are absent: zero."""
    address, _, port = admin.rpartition(":")
    pattern = "^(" + "|".join(re.escape(n) for n in sorted(set(names))) + ")$"
    path = f"/stats?format=json&histogram_buckets=detailed&filter={quote(pattern, safe='')}"
    taken = time.monotonic()
    reply = send(address, int(port), path, timeout=5)
    if reply.status != 200 or not isinstance(reply.body, dict):
        return None
    counters: dict[str, int] = {}
    histograms: dict[str, Bins] = {}
    for stat in reply.body.get("stats", []):
        if "name" in stat and "value" in stat:
            counters[str(stat["name"])] = int(stat["value"])
        for detail in stat.get("histograms", {}).get("details", []) if "histograms" in stat else []:
            histograms[str(detail["name"])] = {
                (float(b["lower_bound"]), float(b["width"])): int(b["count"]) for b in detail.get("totals", [])
            }
    return Snapshot(taken, counters, histograms)


def bins_grown(new: Bins, old: Bins) -> Bins:
    if any(new.get(key, 0) < count for key, count in old.items()):
        return dict(new)  # reset
    return {key: count - old.get(key, 0) for key, count in new.items() if count > old.get(key, 0)}


def quantile(bins: Bins, q: float) -> float | None:
    """The q-quantile (0 to 1) of a histogram, interpolating within its bin; None when empty."""
    total = sum(bins.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for (lower, width), count in sorted(bins.items()):
        if seen + count >= rank:
            return lower + width * (rank - seen) / count
        seen += count
    lower, width = max(bins)
    return lower + width


@dataclass
class EnvoyAdminMetrics:
    """Edge numbers from the callers' own sidecars and gateways: every `sample` reads each Envoy
    admin once (all the stats the graph needs from it in one request, every admin at the same time)
    and compares with the oldest sample still inside `window` seconds. Envoy merges histograms when
    it flushes stats (every 5 s by default), so p99 trails the counters by up to that long."""

    window: float = 10.0
    read: Callable[[str, list[str]], Snapshot | None] = read_admin
    description: str = "the sidecars' and gateways' Envoy admin /stats"
    _history: dict[str, deque[Snapshot]] = field(default_factory=dict)

    async def sample(self, topology: Topology) -> dict[str, EdgeStats]:
        wanted: dict[str, list[str]] = {}
        for edge in topology.edges:
            for reading in edge.readings:
                names = wanted.setdefault(reading.admin, [])
                names += [reading.requests, reading.errors] + ([reading.latency] if reading.latency else [])
        admins = sorted(wanted)
        snapshots = await asyncio.gather(*(asyncio.to_thread(self.read, a, wanted[a]) for a in admins))
        for admin in set(self._history) - set(admins):
            del self._history[admin]
        for admin, snapshot in zip(admins, snapshots, strict=True):
            if snapshot is None:
                self._history.pop(admin, None)  # gone: start afresh when it answers again
                continue
            history = self._history.setdefault(admin, deque())
            history.append(snapshot)
            # Keep the newest sample at least `window` old as the base, drop the older ones.
            while len(history) > 2 and snapshot.taken - history[1].taken >= self.window:
                history.popleft()
        return {edge.id: self._edge(edge) for edge in topology.edges}

    def _edge(self, edge: Edge) -> EdgeStats:
        if not edge.readings:
            return EdgeStats(None, None, None, 0.0)
        rate = 0.0
        requests = errors = 0
        latency: Bins = {}
        spans = []
        for reading in edge.readings:
            measured = self._reading(reading)
            if measured is None:
                return EdgeStats(None, None, None, 0.0)
            seconds, sent, failed, bins = measured
            spans.append(seconds)
            rate += sent / seconds
            requests += sent
            errors += failed
            for key, count in bins.items():
                latency[key] = latency.get(key, 0) + count
        p99 = quantile(latency, 0.99)
        return EdgeStats(rate, errors / requests if requests else None, p99, min(spans))

    def _reading(self, reading: Reading) -> tuple[float, int, int, Bins] | None:
        history = self._history.get(reading.admin)
        if not history or len(history) < 2:
            return None
        old, new = history[0], history[-1]
        sent = grown(new.counters.get(reading.requests, 0), old.counters.get(reading.requests, 0))
        failed = grown(new.counters.get(reading.errors, 0), old.counters.get(reading.errors, 0))
        bins: Bins = {}
        if reading.latency:
            bins = bins_grown(new.histograms.get(reading.latency, {}), old.histograms.get(reading.latency, {}))
        return new.taken - old.taken, sent, min(failed, sent), bins
