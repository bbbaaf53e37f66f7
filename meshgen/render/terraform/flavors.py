"""The data each flavor's root configuration needs (terraform.tfvars.json). What each flavor
cannot honour of the catalog is in fidelity.py."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from meshgen.durations import Duration
from meshgen.model.addresses import app_environment, variable_prefix
from meshgen.model.mesh import (
    Gateway,
    GatewayRoute,
    HeaderMatch,
    HealthCheck,
    Host,
    Mesh,
    Route,
    Service,
    Version,
    longest,
)
from meshgen.render.terraform.ecs import TASK_LOOPBACK, discovery_name, task_paths


def _app_environment(mesh: Mesh, service: Service, version: Version, dependencies: dict[str, str]) -> dict[str, str]:
    first = version.instances[0]
    return {
        "MESHGEN_MESH": mesh.name,
        "MESHGEN_SERVICE": service.name,
        "MESHGEN_VERSION": version.name,
        "MESHGEN_LISTEN": f"{TASK_LOOPBACK}:{first.app_port}",
        "MESHGEN_OUTBOUND": f"{TASK_LOOPBACK}:{first.outbound_port}",
        "MESHGEN_PROTOCOL": "tcp" if service.protocol == "tcp" else "http",
        **dependencies,
        **dict(first.env),
    }


def _task_dependencies(mesh: Mesh, version: Version) -> dict[str, str]:
    """ecs-envoy: the variables that name each dependency, as on a host whose local address is
    the task's loopback (the Envoy of the task binds the same listeners there)."""
    first = version.instances[0]
    task = dataclasses.replace(first, host=Host(first.host.name, TASK_LOOPBACK, TASK_LOOPBACK))
    return app_environment(mesh, task)


def _connect_dependencies(mesh: Mesh, service: Service, version: Version) -> dict[str, str]:
    """service-connect: each dependency by the name and port Service Connect's proxy answers on;
    there is no sidecar listener of meshgen's to name."""
    found: dict[str, str] = {}
    for dependency in service.calls(version.name):
        prefix = variable_prefix(dependency.target)
        if dependency.external or prefix is None:
            continue
        callee = mesh.service(dependency.target)
        scheme = "http" if callee.is_http else "tcp"
        found[f"{prefix}_SERVICE_HOST"] = callee.name
        found[f"{prefix}_SERVICE_PORT"] = str(callee.port)
        found[f"{prefix}_URL"] = f"{scheme}://{callee.name}:{callee.port}"
    return found


def ecs_envoy_services(mesh: Mesh) -> dict[str, Any]:
    services = {}
    for service in mesh.services:
        for version in service.versions:
            first = version.instances[0]
            entry: dict[str, Any] = {
                "service": service.name,
                "version": version.name,
                "port": first.app_port,
                "desired_count": len(version.instances),
                "environment": _app_environment(mesh, service, version, _task_dependencies(mesh, version)),
                "inbound_port": first.inbound_port,
                "admin_port": first.admin_port,
                "stats_port": first.stats_port,
            }
            if version.image:
                entry["image"] = version.image
            if mesh.security.enabled:
                # The files the version's Envoy config names; its tasks write them from the service's secret.
                paths = task_paths(version)
                entry["tls"] = {
                    "cert_file": str(paths.cert),
                    "key_file": str(paths.key),
                    "ca_file": str(paths.trust_bundle),
                }
            services[discovery_name(service.name, version.name)] = entry
    return services


def metrics_namespace(mesh: Mesh) -> str:
    """The CloudWatch namespace of a mesh's Envoy metrics on AWS."""
    return f"meshgen/{mesh.name}"


def ecs_envoy_metrics(mesh: Mesh) -> dict[str, Any] | None:
    """ecs-envoy: with mesh.metrics, each task's CloudWatch agent publishes under the mesh's
    namespace; the Prometheus address of the catalog is the local mesh's, moot on AWS."""
    return None if mesh.metrics is None else {"namespace": metrics_namespace(mesh)}


def identities(mesh: Mesh) -> list[str]:
    """The services that get an identity secret: every one, with mutual TLS; none without."""
    return sorted(s.name for s in mesh.services) if mesh.security.enabled else []


def mesh_ports(services: dict[str, Any], flavor: str) -> list[int]:
    """The ports tasks reach each other on, from the flavor's services data: with ecs-envoy each
    version's Envoy inbound port (callers' Envoys connect there; the app, Envoy's admin interface
    and the tracing sidecar stay on the task's loopback), with service-connect each version's app
    port (the container port, where the callee's Service Connect proxy takes calls)."""
    key = "inbound_port" if flavor == "ecs-envoy" else "port"
    return sorted({entry[key] for entry in services.values()})


def primary_version(service: Service) -> str:
    """The version plain traffic goes to most: the largest share of the last catch-all route."""
    route = next((r for r in reversed(service.routes) if r.match.catch_all), service.routes[-1])
    return max(route.shares(), key=lambda pair: (pair[1], pair[0]))[0]


def service_connect_services(mesh: Mesh) -> dict[str, Any]:
    services = {}
    for service in mesh.services:
        primary = primary_version(service)
        slowest = longest(r.timeout for r in service.routes)
        for version in service.versions:
            first = version.instances[0]
            connect: dict[str, Any] = {"port_name": "app"}
            if version.name == primary:
                # Callers reach the service by its catalog name and port, as in the local mesh.
                connect["discovery_name"] = service.name
                connect["client_aliases"] = [{"port": service.port, "dns_name": service.name}]
            else:
                connect["discovery_name"] = discovery_name(service.name, version.name)
            if service.protocol != "tcp":
                # 0 turns Service Connect's per-request timeout off, as no timeout does in the catalog.
                connect["per_request_timeout_seconds"] = 0 if slowest is None else math.ceil(slowest.seconds)
            entry: dict[str, Any] = {
                "service": service.name,
                "version": version.name,
                "port": first.app_port,
                "protocol": service.protocol,
                "desired_count": len(version.instances),
                "environment": _app_environment(mesh, service, version, _connect_dependencies(mesh, service, version)),
                "service_connect": connect,
            }
            if version.image:
                entry["image"] = version.image
            services[discovery_name(service.name, version.name)] = entry
    return services


def service_connect_tls(mesh: Mesh) -> dict[str, Any] | None:
    """TLS between the Service Connect proxies unless mtls is off: the mesh's Private CA lives as
    long as the catalog's CA lifetime, in whole days."""
    if not mesh.security.enabled:
        return None
    return {"ca_validity_days": math.ceil(mesh.security.ca_lifetime.ms / 86_400_000)}


# App Mesh's retry events, by the Envoy retry conditions they stand for.
_HTTP_EVENTS = {
    "5xx": "server-error",
    "gateway-error": "gateway-error",
    "retriable-4xx": "client-error",
    "refused-stream": "stream-error",
}
_TCP_EVENTS = {"reset", "connect-failure", "reset-before-request"}
# gRPC status conditions keep their names; App Mesh takes them on grpc routes only.
_GRPC_EVENTS = {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}


def _header(match: HeaderMatch) -> dict[str, Any]:
    rendered: dict[str, Any] = {"name": match.name}
    for key in ("exact", "prefix", "regex", "present"):
        value = getattr(match, key)
        if value is not None:
            rendered[key] = value
    return rendered


def _app_mesh_route(service: Service, route: Route) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "name": route.name,
        "targets": [{"virtual_node": discovery_name(service.name, v), "weight": w} for v, w in route.weights],
    }
    # App Mesh TCP routes match nothing: they only split connections by weight.
    if service.is_http and route.match.path is not None:
        rendered["path"] = route.match.path
    elif service.is_http:
        rendered["prefix"] = route.match.prefix or "/"
    # App Mesh matches methods on http and http2 routes; a gRPC call is always a POST.
    if route.match.methods and service.protocol in ("http", "http2"):
        rendered["method"] = route.match.methods[0]
    if route.match.headers:
        rendered["headers"] = [_header(h) for h in route.match.headers]
    if service.is_http:
        rendered["timeout_ms"] = 0 if route.timeout is None else route.timeout.ms  # 0: no timeout
    events = app_mesh_retry_events(service, route)
    # TCP connections are not retried (meshgen's Envoy does not either); App Mesh rejects a retry there.
    if service.is_http and route.retries.attempts > 1 and any(events.values()):
        rendered["retry"] = {
            "max_retries": route.retries.num_retries,
            # App Mesh needs a per-retry limit: the catalog's, else the route's, else App Mesh's 15s.
            "per_retry_timeout_ms": (route.retries.per_try_timeout or route.timeout or Duration(15_000)).ms,
            **events,
        }
    return rendered


def app_mesh_retry_events(service: Service, route: Route) -> dict[str, list[str]]:
    """App Mesh's retry events for the route's retry conditions (grpc_retry_events on grpc services only)."""
    on = set(route.retries.on)
    events = {
        "http_retry_events": sorted({_HTTP_EVENTS[c] for c in on if c in _HTTP_EVENTS}),
        "tcp_retry_events": ["connection-error"] if on & _TCP_EVENTS else [],
    }
    if service.protocol == "grpc":
        events["grpc_retry_events"] = sorted(on & _GRPC_EVENTS)
    return events


def app_mesh_unmapped_retry_conditions(service: Service, route: Route) -> list[str]:
    """The route's retry conditions App Mesh has no retry event for."""
    mapped = set(_HTTP_EVENTS) | _TCP_EVENTS | (_GRPC_EVENTS if service.protocol == "grpc" else set())
    return [c for c in route.retries.on if c not in mapped]


# App Mesh's accepted ranges: (field, catalog value in App Mesh units, lowest, highest).
def app_mesh_health_check(check: HealthCheck) -> tuple[dict[str, Any], list[str]]:
    """The health check App Mesh accepts nearest to the catalog's, and what had to move."""
    wanted = {
        "interval_millis": (check.interval.ms, 5_000, 300_000),
        "timeout_millis": (check.timeout.ms, 2_000, 60_000),
        "healthy_threshold": (check.healthy_threshold, 2, 10),
        "unhealthy_threshold": (check.unhealthy_threshold, 2, 10),
    }
    rendered: dict[str, Any] = {}
    moved = []
    for name, (value, lowest, highest) in wanted.items():
        rendered[name] = min(max(value, lowest), highest)
        if rendered[name] != value:
            moved.append(
                f"health check {name} {value} is outside App Mesh's {lowest}-{highest}; using {rendered[name]}"
            )
    if check.path is not None:
        rendered["path"] = check.path
    return rendered, moved


def app_mesh_data(mesh: Mesh, namespace: str) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    virtual_services: dict[str, Any] = {}
    for service in mesh.services:
        breaker = service.circuit_breaker
        for version in service.versions:
            node: dict[str, Any] = {
                "hostname": f"{discovery_name(service.name, version.name)}.{namespace}",
                # The port the version's app listens on: App Mesh's Envoy forwards inbound traffic there.
                "port": version.instances[0].app_port,
                "protocol": service.protocol,
                "backends": sorted(f"{d.target}.{namespace}" for d in service.calls(version.name) if not d.external),
            }
            # App Mesh limits connections for http and tcp, requests for http2 and grpc.
            if service.protocol in ("http", "tcp"):
                node["max_connections"] = breaker.max_connections
            if service.protocol == "http":
                node["max_pending_requests"] = breaker.max_pending_requests
            if service.protocol in ("http2", "grpc"):
                node["max_requests"] = breaker.max_requests
            if service.is_http:
                node["outlier_detection"] = {
                    "max_server_errors": breaker.consecutive_5xx,
                    "interval_millis": breaker.interval.ms,
                    "base_ejection_millis": breaker.ejection_time.ms,
                    "max_ejection_percent": breaker.max_ejection_percent,
                }
            if service.health_check is not None:
                node["health_check"], _ = app_mesh_health_check(service.health_check)
            nodes[discovery_name(service.name, version.name)] = node
        virtual_services[f"{service.name}.{namespace}"] = {
            "port": service.port,
            "protocol": service.protocol,
            "routes": [_app_mesh_route(service, route) for route in service.routes],
        }
    # A gateway none of whose routes this flavor renders gets no virtual gateway (its lines say so).
    gateways = {
        g.name: _app_mesh_gateway(mesh, g, namespace) for g in mesh.gateways if app_mesh_gateway_routes(mesh, g)
    }
    return {"virtual_nodes": nodes, "virtual_services": virtual_services, "virtual_gateways": gateways}


def app_mesh_gateway_routes(mesh: Mesh, gateway: Gateway) -> list[GatewayRoute]:
    """The gateway's routes this flavor renders: those to http services (its virtual gateway
    listens for http; routes to http2 and grpc services are listed as lost)."""
    return [r for r in gateway.routes if mesh.service(r.service).protocol == "http"]


def _app_mesh_gateway(mesh: Mesh, gateway: Gateway, namespace: str) -> dict[str, Any]:
    """A virtual gateway: its http listener, and a gateway route per route and Host name (App Mesh
    matches one exact hostname per gateway route; `*` is no hostname match), in the catalog's order."""
    routes = []
    for route in app_mesh_gateway_routes(mesh, gateway):
        hostnames: list[str | None] = [None] if "*" in route.domains else list(route.domains)
        for index, hostname in enumerate(hostnames, 1):
            rendered: dict[str, Any] = {
                "name": route.name if len(hostnames) == 1 else f"{route.name}-{index}",
                "virtual_service": f"{route.service}.{namespace}",
            }
            if hostname is not None:
                rendered["hostname"] = hostname
            if route.match.path is not None:
                rendered["path"] = route.match.path
            else:
                rendered["prefix"] = route.match.prefix or "/"
            if route.match.headers:
                rendered["headers"] = [_header(h) for h in route.match.headers]
            routes.append(rendered)
    return {"port": gateway.port, "routes": routes}
