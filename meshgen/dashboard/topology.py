"""The graph the dashboard draws, derived from the resolved mesh: nodes of a few kinds and edges
caller -> callee, each edge with the Envoy counters that measure it.

Node kinds: `service` (a box around its versions), `version` (what calls and is called: clusters
are per `<service>.<version>`), `external`, `gateway` (an ingress gateway: outside callers in,
calls to the versions of the services it routes to out, both counted by its own Envoy) and
`outside` (callers outside the mesh, drawn when there is a gateway or an edge service). The page
styles nodes by kind and falls back to a plain style for a kind it does not know, so another kind
needs nodes and edges here, with readings from its own Envoy, and at most one style entry in app.js.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from meshgen.model.mesh import Gateway, Instance, Mesh, Service
from meshgen.render.envoy import names
from meshgen.render.envoy.gateway import GATEWAY_HTTP, GATEWAY_HTTPS

OUTSIDE = "outside"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # service | version | external | gateway | outside
    label: str
    parent: str | None = None  # the box it is drawn in
    details: str | None = None  # the API path of the panel a click opens
    title: str = ""  # its full name, where the label needs its box (api v1); default: the label

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "title": self.title or self.label,
            "parent": self.parent,
            "details": self.details,
        }


@dataclass(frozen=True)
class Reading:
    """One sidecar's count of an edge: the Envoy whose admin answers at `admin`, and the names of
    its stats for requests sent (connections, for TCP), those that failed, and their durations."""

    sidecar: str  # the instance id of that Envoy
    admin: str  # address:port
    requests: str  # counter
    errors: str  # counter
    latency: str | None  # histogram, milliseconds; None where Envoy keeps none that means a request


@dataclass(frozen=True)
class Edge:
    id: str
    source: str
    target: str
    protocol: str  # http, http2, grpc or tcp: tcp edges count connections
    readings: tuple[Reading, ...]  # empty: drawn, not measured


@dataclass(frozen=True)
class Topology:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def service_id(name: str) -> str:
    return f"service:{name}"


def version_id(service: str, version: str) -> str:
    return f"version:{service}/{version}"


def external_id(name: str) -> str:
    return f"external:{name}"


def gateway_id(name: str) -> str:
    return f"gateway:{name}"


def details_path(service: str) -> str:
    return f"/api/service/{quote(service, safe='')}"


def gateway_details_path(gateway: str) -> str:
    return f"/api/gateway/{quote(gateway, safe='')}"


def admin_of(instance: Instance) -> str:
    return f"{instance.host.local_address}:{instance.admin_port}"


def cluster_reading(instance: Instance, cluster: str, protocol: str) -> Reading:
    """What a caller's sidecar counts of the calls it sends to `cluster`."""
    stat = f"cluster.{cluster}"
    if protocol == "tcp":
        return Reading(
            instance.id, admin_of(instance), f"{stat}.upstream_cx_total", f"{stat}.upstream_cx_connect_fail", None
        )
    return Reading(
        instance.id,
        admin_of(instance),
        f"{stat}.upstream_rq_total",
        f"{stat}.upstream_rq_5xx",
        f"{stat}.upstream_rq_time",
    )


def listener_reading(instance: Instance, stat_prefix: str) -> Reading:
    """What an Envoy counts of the requests its HTTP connection manager `stat_prefix` answered."""
    stat = f"http.{stat_prefix}"
    return Reading(
        instance.id,
        admin_of(instance),
        f"{stat}.downstream_rq_total",
        f"{stat}.downstream_rq_5xx",
        f"{stat}.downstream_rq_time",
    )


def _outside_readings(mesh: Mesh, service: Service, instances: tuple[Instance, ...]) -> tuple[Reading, ...]:
    """Calls from outside the mesh, as the edge service's own sidecar counts them: with mutual TLS
    they arrive on the plaintext chain of its inbound listener, which nothing in the mesh uses (a
    gateway calls in with mutual TLS, as services do). Without it, every caller shares one chain,
    so outside calls are counted apart only when nothing in the mesh, service or gateway, calls
    this one."""
    if mesh.security.enabled:
        prefix = "inbound_plaintext_http"
    elif not mesh.callers_of(service.name) and not mesh.gateways_to(service.name):
        prefix = "inbound_http"
    else:
        return ()
    return tuple(listener_reading(i, prefix) for i in instances)


def _gateway(mesh: Mesh, gateway: Gateway) -> tuple[Node, list[Edge]]:
    """A gateway's node, the edge from outside into it (what its HTTP and HTTPS listeners answered)
    and an edge to each version of each service it routes to (what it sent to that version's
    cluster), all read from the gateway's own Envoy, as callers' sidecars are read for theirs."""
    node = Node(
        gateway_id(gateway.name),
        "gateway",
        gateway.name,
        details=gateway_details_path(gateway.name),
        title=f"gateway {gateway.name}",
    )
    listeners = [GATEWAY_HTTP] + ([GATEWAY_HTTPS] if gateway.tls_port is not None else [])
    entering = tuple(listener_reading(i, prefix) for i in gateway.instances for prefix in listeners)
    edges = [Edge(f"{OUTSIDE}->{node.id}", OUTSIDE, node.id, "http", entering)]
    for target in gateway.targets:
        service = mesh.service(target)
        for version in service.versions:
            callee = version_id(service.name, version.name)
            cluster = names.version_cluster(service.name, version.name)
            readings = tuple(cluster_reading(i, cluster, service.protocol) for i in gateway.instances)
            edges.append(Edge(f"{node.id}->{callee}", node.id, callee, service.protocol, readings))
    return node, edges


def topology(mesh: Mesh) -> Topology:
    nodes: list[Node] = []
    edges: list[Edge] = []
    if mesh.gateways or any(s.edge and s.is_http for s in mesh.services):
        nodes.append(Node(OUTSIDE, "outside", "outside the mesh"))
    for gateway in mesh.gateways:
        node, entering = _gateway(mesh, gateway)
        nodes.append(node)
        edges += entering
    for service in mesh.services:
        details = details_path(service.name)
        nodes.append(Node(service_id(service.name), "service", service.name, details=details))
        for version in service.versions:
            caller = version_id(service.name, version.name)
            nodes.append(
                Node(
                    caller,
                    "version",
                    version.name,
                    parent=service_id(service.name),
                    details=details,
                    title=f"{service.name} {version.name}",
                )
            )
            if service.edge and service.is_http:
                readings = _outside_readings(mesh, service, version.instances)
                edges.append(Edge(f"{OUTSIDE}->{caller}", OUTSIDE, caller, service.protocol, readings))
            for dependency in service.calls(version.name):
                if dependency.external:
                    targets = [(external_id(dependency.target), names.external_cluster(dependency.target))]
                else:
                    callee = mesh.service(dependency.target)
                    targets = [
                        (version_id(callee.name, v.name), names.version_cluster(callee.name, v.name))
                        for v in callee.versions
                    ]
                for target, cluster in targets:
                    readings = tuple(cluster_reading(i, cluster, dependency.protocol) for i in version.instances)
                    edges.append(Edge(f"{caller}->{target}", caller, target, dependency.protocol, readings))
    nodes += [Node(external_id(e.name), "external", e.name) for e in mesh.externals]
    return Topology(tuple(nodes), tuple(edges))
