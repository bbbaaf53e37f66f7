"""The data each flavor's root configuration needs (terraform.tfvars.json), and what each
flavor cannot honour of the catalog."""

from __future__ import annotations

import math
from typing import Any

from meshgen.model.mesh import IDEMPOTENT_METHODS, HeaderMatch, HealthCheck, Mesh, Route, Service, Version
from meshgen.render.terraform.ecs import TASK_LOOPBACK, discovery_name


def _app_environment(mesh: Mesh, service: Service, version: Version) -> dict[str, str]:
    first = version.instances[0]
    return {
        "MESHGEN_MESH": mesh.name,
        "MESHGEN_SERVICE": service.name,
        "MESHGEN_VERSION": version.name,
        "MESHGEN_LISTEN": f"{TASK_LOOPBACK}:{first.app_port}",
        "MESHGEN_OUTBOUND": f"{TASK_LOOPBACK}:{first.outbound_port}",
        "MESHGEN_PROTOCOL": "tcp" if service.protocol == "tcp" else "http",
        **dict(first.env),
    }


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
                "environment": _app_environment(mesh, service, version),
                "inbound_port": first.inbound_port,
                "admin_port": first.admin_port,
            }
            if version.image:
                entry["image"] = version.image
            services[discovery_name(service.name, version.name)] = entry
    return services


def primary_version(service: Service) -> str:
    """The version plain traffic goes to most: the largest share of the last catch-all route."""
    route = next((r for r in reversed(service.routes) if r.match.catch_all), service.routes[-1])
    return max(route.shares(), key=lambda pair: (pair[1], pair[0]))[0]


def service_connect_services(mesh: Mesh) -> dict[str, Any]:
    services = {}
    for service in mesh.services:
        primary = primary_version(service)
        longest = max(r.timeout for r in service.routes)
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
                connect["per_request_timeout_seconds"] = math.ceil(longest.seconds)
            entry: dict[str, Any] = {
                "service": service.name,
                "version": version.name,
                "port": first.app_port,
                "protocol": service.protocol,
                "desired_count": len(version.instances),
                "environment": _app_environment(mesh, service, version),
                "service_connect": connect,
            }
            if version.image:
                entry["image"] = version.image
            services[discovery_name(service.name, version.name)] = entry
    return services


def service_connect_limitations(mesh: Mesh) -> list[str]:
    """Per catalog feature: what ECS Service Connect will not do."""
    lost = []
    for service in mesh.services:
        name = service.name
        primary = primary_version(service)
        others = [v.name for v in service.versions if v.name != primary]
        if others:
            names = ", ".join(discovery_name(name, v) for v in others)
            dark = (
                f"version {others[0]} gets no traffic through the name `{name}` "
                f"(it is reachable only by its own discovery name {names})"
                if len(others) == 1
                else f"versions {', '.join(others)} get no traffic through the name `{name}` "
                f"(each is reachable only by its own discovery name: {names})"
            )
            lost.append(f"{name}: no traffic split: every call to `{name}` goes to version {primary}; {dark}")
        for route in service.routes:
            subject = f"{name}/{route.name}"
            if route.match.headers or route.match.methods or route.match.path or route.match.prefix not in (None, "/"):
                lost.append(f"{subject}: no request matching ({route.match.describe()}); the route is ignored")
            if route.retries.attempts > 1:
                lost.append(
                    f"{subject}: retries are Service Connect's fixed policy, not {route.retries.attempts} attempts "
                    f"on {', '.join(route.retries.on)}"
                )
            if route.retries.per_try_timeout is not None:
                lost.append(f"{subject}: no per-try timeout")
            if route.fault is not None:
                lost.append(f"{subject}: no fault injection")
            if route.mirror is not None:
                lost.append(f"{subject}: no traffic mirroring")
        timeouts = {r.timeout for r in service.routes}
        if service.is_http and (len(timeouts) > 1 or any(t.ms % 1000 for t in timeouts)):
            lost.append(f"{name}: one timeout per service in whole seconds, the longest route's rounded up")
        if service.rate_limit is not None:
            lost.append(f"{name}: no rate limit")
        if service.health_check is not None:
            lost.append(f"{name}: no active health checks by callers (ECS task health checks only)")
        lost.append(f"{name}: circuit breaking and outlier ejection are Service Connect's fixed defaults")
        for dependency in service.dependencies:
            if dependency.rate_limit is not None:
                lost.append(f"{name} -> {dependency.target}: no caller-side rate limit")
            if dependency.external:
                lost.append(
                    f"{name} -> {dependency.target}: external calls bypass the proxy (no timeout, retry, tracing)"
                )
    if mesh.tracing is not None:
        lost.append("tracing: Service Connect proxies emit no spans; only the apps' own tracing remains")
    lost.append("access logs: Service Connect's own format, not meshgen's unified field set")
    return lost


# App Mesh's retry events, by the Envoy retry conditions they stand for.
_HTTP_EVENTS = {
    "5xx": "server-error",
    "gateway-error": "gateway-error",
    "retriable-4xx": "client-error",
    "refused-stream": "stream-error",
}
_TCP_EVENTS = {"reset", "connect-failure", "reset-before-request"}


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
    if route.match.methods:
        rendered["method"] = route.match.methods[0]
    if route.match.headers:
        rendered["headers"] = [_header(h) for h in route.match.headers]
    if service.is_http:
        rendered["timeout_ms"] = route.timeout.ms
    events = _app_mesh_retry_events(route)
    if route.retries.attempts > 1 and any(events.values()):
        rendered["retry"] = {
            "max_retries": route.retries.num_retries,
            "per_retry_timeout_ms": (route.retries.per_try_timeout or route.timeout).ms,
            **events,
        }
    return rendered


def _app_mesh_retry_events(route: Route) -> dict[str, list[str]]:
    on = set(route.retries.on)
    return {
        "http_retry_events": sorted({_HTTP_EVENTS[c] for c in on if c in _HTTP_EVENTS}),
        "tcp_retry_events": ["connection-error"] if on & _TCP_EVENTS else [],
    }


# App Mesh's accepted ranges: (field, catalog value in App Mesh units, lowest, highest).
def _app_mesh_health_check(check: HealthCheck) -> tuple[dict[str, Any], list[str]]:
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
                "port": service.port,
                "protocol": service.protocol,
                "backends": sorted(f"{d.target}.{namespace}" for d in service.dependencies if not d.external),
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
                node["health_check"], _ = _app_mesh_health_check(service.health_check)
            nodes[discovery_name(service.name, version.name)] = node
        virtual_services[f"{service.name}.{namespace}"] = {
            "port": service.port,
            "protocol": service.protocol,
            "routes": [_app_mesh_route(service, route) for route in service.routes],
        }
    return {"virtual_nodes": nodes, "virtual_services": virtual_services}


def app_mesh_limitations(mesh: Mesh) -> list[str]:
    lost = []
    for service in mesh.services:
        for route in service.routes:
            subject = f"{service.name}/{route.name}"
            if len(route.match.methods) > 1:
                lost.append(f"{subject}: one method per route; only {route.match.methods[0]} is matched")
            retries = route.retries
            if retries.attempts > 1 and not any(_app_mesh_retry_events(route).values()):
                lost.append(f"{subject}: no App Mesh retry event matches {', '.join(retries.on)}; no retries")
            if retries.attempts > 1 and retries.methods == "idempotent":
                idempotent = ", ".join(IDEMPOTENT_METHODS)
                lost.append(f"{subject}: App Mesh retries every method, not only {idempotent}")
            if retries.attempts > 1 and (retries.status_codes or not retries.another_host):
                lost.append(f"{subject}: no retriable status codes or same-host retries")
            if route.fault is not None:
                lost.append(f"{subject}: no fault injection")
            if route.mirror is not None:
                lost.append(f"{subject}: no traffic mirroring")
        if service.rate_limit is not None:
            lost.append(f"{service.name}: no rate limit")
        if service.health_check is not None:
            lost += [f"{service.name}: {note}" for note in _app_mesh_health_check(service.health_check)[1]]
        for dependency in service.dependencies:
            if dependency.rate_limit is not None:
                lost.append(f"{service.name} -> {dependency.target}: no caller-side rate limit")
    if mesh.externals:
        names = ", ".join(e.name for e in mesh.externals)
        lost.append(f"external services ({names}) are not modelled: egress is open (ALLOW_ALL) so they stay reachable")
    return lost
