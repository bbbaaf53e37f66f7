"""Requests, errors and durations (RED) per service and per edge, from two samples of the sidecars'
counters and histograms, wherever the samples come from (the sidecars themselves, or Prometheus).

A service's numbers are its own sidecars' inbound side: every request that reached the service,
from callers in the mesh and from outside alike, as its sidecar answered it (a call its sidecar
refused, 403 or 429, included); a gateway's, its HTTP and HTTPS listeners'. An edge's numbers are
the caller's sidecars' (or gateway's) upstream side, towards every version of the callee: each try
counts, so a retried request counts once per try, as it reaches the callee. Errors are answers with
a 5xx status. Durations are Envoy's histograms, in milliseconds, and quantiles are read off them as
Prometheus's histogram_quantile reads them: linear within the bucket that holds the quantile, so
they are as fine as the buckets (Envoy's: 0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500 ms, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from meshgen.metrics.exposition import SeriesKey, Snapshot
from meshgen.model import Mesh
from meshgen.render.envoy import names
from meshgen.render.envoy.gateway import GATEWAY_HTTP, GATEWAY_HTTPS

# The series RED needs, as Envoy names them in Prometheus's format (with meshgen's tags).
INBOUND_REQUESTS = "envoy_http_downstream_rq_xx"  # envoy_response_code_class, envoy_http_conn_manager_prefix
INBOUND_TIME = "envoy_http_downstream_rq_time_bucket"  # le, envoy_http_conn_manager_prefix
EDGE_REQUESTS = "envoy_cluster_upstream_rq_xx"  # envoy_response_code_class, envoy_cluster_name
EDGE_TIME = "envoy_cluster_upstream_rq_time_bucket"  # le, envoy_cluster_name
METRICS = (INBOUND_REQUESTS, INBOUND_TIME, EDGE_REQUESTS, EDGE_TIME)
# The connection managers of inbound listeners: mutual TLS (or plaintext with mTLS off), the
# plaintext chain of an edge or a permissive sidecar, and a gateway's HTTP and HTTPS listeners.
INBOUND_PREFIXES = ("inbound_http", "inbound_plaintext_http", GATEWAY_HTTP, GATEWAY_HTTPS)
QUANTILES = (0.5, 0.99)
# A counter's value: Prometheus's samples are floats, Envoy's admin gives whole numbers.
Count = TypeVar("Count", int, float)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's histogram_quantile over cumulative `buckets` (upper bound -> count)."""
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        return None
    counts = []
    running = 0.0
    for bound in bounds:  # cumulative counts never fall; deltas of a restarted Envoy could
        running = max(running, buckets[bound])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, count in enumerate(counts) if count >= rank)
    if index == len(bounds) - 1:
        return bounds[-2] if len(bounds) > 1 else None  # in the +Inf bucket: the highest bound
    end, count = bounds[index], counts[index]
    start, below = (0.0, 0.0) if index == 0 else (bounds[index - 1], counts[index - 1])
    if index == 0 and end <= 0:
        return end
    return start + (end - start) * (rank - below) / (count - below)


@dataclass
class Red:
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def add(self, other: Red) -> None:
        self.requests += other.requests
        self.errors += other.errors
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0.0) + count

    def row(self, seconds: float) -> dict[str, Any]:
        requests = round(self.requests)
        return {
            "requests": requests,
            "rps": round(self.requests / seconds, 3) if seconds > 0 else None,
            "errors": round(self.errors),
            "error_percent": round(100 * self.errors / self.requests, 3) if requests else None,
            "p50_ms": _ms(quantile(0.5, self.buckets)),
            "p99_ms": _ms(quantile(0.99, self.buckets)),
        }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def grown(new: Count, old: Count) -> Count:
    """How much a counter rose from `old` to `new`; one that fell was reset (its Envoy restarted)
    and rose from 0."""
    return new - old if new >= old else new


def increase(before: Snapshot, after: Snapshot, instances: set[str]) -> Snapshot:
    """How much each series of the instances in `instances` rose from `before` to `after`: a series
    missing before started at 0; one that fell was reset (a restarted Envoy) and rose from 0."""
    result: Snapshot = {}
    for series, value in after.items():
        if dict(series[1]).get("instance") not in instances:
            continue
        result[series] = grown(value, before.get(series, 0.0))
    return result


def edge_clusters(mesh: Mesh) -> dict[tuple[str, str], str]:
    """(caller, cluster) -> callee, for every HTTP dependency (a gateway's routes' services among
    them): a callee's clusters are its versions (an external's, its one cluster)."""
    clusters = {}
    for gateway in mesh.gateways:
        for target in gateway.targets:
            for version in mesh.service(target).versions:
                clusters[(gateway.name, names.version_cluster(target, version.name))] = target
    for service in mesh.services:
        for dependency in service.dependencies:
            if not dependency.is_http:
                continue
            if dependency.external:
                clusters[(service.name, names.external_cluster(dependency.target))] = dependency.target
                continue
            for version in mesh.service(dependency.target).versions:
                clusters[(service.name, names.version_cluster(dependency.target, version.name))] = dependency.target
    return clusters


def _fold(red: Red, name: str, labels: dict[str, str], value: float, *, requests: str, time: str) -> None:
    if name == requests:
        red.requests += value
        if labels.get("envoy_response_code_class") == "5":
            red.errors += value
    elif name == time and "le" in labels:
        bound = math.inf if labels["le"] in ("+Inf", "Inf") else float(labels["le"])
        red.buckets[bound] = red.buckets.get(bound, 0.0) + value


def red(mesh: Mesh, rises: Snapshot) -> tuple[dict[str, Red], dict[tuple[str, str], Red]]:
    """Per HTTP service and gateway, and per edge (caller, callee): what the series in `rises` add up to."""
    services = {g.name: Red() for g in mesh.gateways} | {s.name: Red() for s in mesh.services if s.is_http}
    clusters = edge_clusters(mesh)
    edges = {(caller, callee): Red() for (caller, _), callee in clusters.items()}
    for (name, pairs), value in rises.items():
        labels = dict(pairs)
        service = labels.get("service", "")
        if name in (INBOUND_REQUESTS, INBOUND_TIME):
            if service in services and labels.get("envoy_http_conn_manager_prefix") in INBOUND_PREFIXES:
                _fold(services[service], name, labels, value, requests=INBOUND_REQUESTS, time=INBOUND_TIME)
        elif name in (EDGE_REQUESTS, EDGE_TIME):
            callee = clusters.get((service, labels.get("envoy_cluster_name", "")))
            if callee is not None:
                _fold(edges[(service, callee)], name, labels, value, requests=EDGE_REQUESTS, time=EDGE_TIME)
    return services, edges


@dataclass(frozen=True)
class Samples:
    """Two samples of the same series, `seconds` apart, and the instances both reached."""

    before: Snapshot
    after: Snapshot
    seconds: float
    instances: set[str]


def report(mesh: Mesh, samples: Samples) -> dict[str, Any]:
    """The document `meshgen top --json` prints, less where the samples came from."""
    services, edges = red(mesh, increase(samples.before, samples.after, samples.instances))
    gateways = {g.name for g in mesh.gateways}
    return {
        "window_seconds": round(samples.seconds, 3),
        "services": [
            {"service": name, "kind": "gateway" if name in gateways else "service", **totals.row(samples.seconds)}
            for name, totals in services.items()
        ],
        "edges": [
            {"caller": caller, "callee": callee, **totals.row(samples.seconds)}
            for (caller, callee), totals in edges.items()
        ],
        "missing": sorted({i.id for i in mesh.proxies} - samples.instances),
    }


def series_instance(series: SeriesKey) -> str | None:
    return dict(series[1]).get("instance")
