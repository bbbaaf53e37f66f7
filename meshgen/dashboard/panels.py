"""What the dashboard's side panel and trace view show, as JSON the page renders without knowing
what it shows: a panel is a title and sections, each a small table whose cells are text or
{"text", "state"} (state ok, warn or bad colours the cell). A new kind of node gets a panel by
returning the same shape, with no change to the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from meshgen.deploy.local.processes import alive, http_ok
from meshgen.deploy.local.state import MeshState, Process
from meshgen.model.authorization import OUTSIDE, gateway_caller, grants
from meshgen.model.gateway_routes import compose
from meshgen.model.mesh import (
    CircuitBreaker,
    Gateway,
    GatewayRoute,
    Instance,
    Mesh,
    RateLimit,
    Retries,
    Route,
    Service,
    timeout_text,
)
from meshgen.render.envoy import names
from meshgen.verify.http import send

Cell = str | dict[str, str]


def section(title: str, columns: list[str], rows: list[list[Cell]], empty: str = "none") -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows, "empty": empty}


def state_cell(text: str, state: str) -> dict[str, str]:
    return {"text": text, "state": state}


def describe_retries(retries: Retries) -> str:
    if retries.attempts <= 1:
        return "none (1 attempt)"
    per_try = f", {retries.per_try_timeout} per try" if retries.per_try_timeout else ""
    host = ", another host" if retries.another_host else ""
    return f"{retries.attempts} attempts{per_try}, on {', '.join(retries.on)}; {retries.methods} methods{host}"


def describe_rate_limit(limit: RateLimit) -> str:
    return f"{limit.requests} per {limit.per}, burst {limit.burst}"


def describe_breaker(breaker: CircuitBreaker) -> str:
    limits = (
        f"at most {breaker.max_connections} connections, {breaker.max_pending_requests} pending, "
        f"{breaker.max_requests} requests, {breaker.max_retries} retries"
    )
    ejection = (
        f"eject after {breaker.consecutive_5xx} consecutive 5xx for {breaker.ejection_time} "
        f"(checked every {breaker.interval}, at most {breaker.max_ejection_percent}%)"
    )
    return f"{limits}; {ejection}"


def _route_row(route: Route) -> list[Cell]:
    fault = "none"
    if route.fault is not None:
        parts = []
        if route.fault.delay is not None:
            parts.append(f"delay {route.fault.delay} on {route.fault.delay_percent:g}%")
        if route.fault.abort_status is not None:
            parts.append(f"abort {route.fault.abort_status} on {route.fault.abort_percent:g}%")
        if route.fault.headers:
            parts.append("when " + ", ".join(h.describe() for h in route.fault.headers))
        fault = "; ".join(parts)
    mirror = f"{route.mirror.percent:g}% to {route.mirror.version}" if route.mirror else "none"
    return [
        route.name,
        "any request" if route.match.catch_all else route.match.describe(),
        route.describe_weights(),
        timeout_text(route.timeout),
        describe_retries(route.retries),
        fault,
        mirror,
    ]


def _policies(service: Service) -> list[list[Cell]]:
    rows: list[list[Cell]] = [
        [
            "protocol",
            f"{service.protocol}, port {service.port}" + (", edge (called from outside)" if service.edge else ""),
        ],
        ["timeout", timeout_text(service.timeout) + " (routes may set their own)"],
        ["inbound timeout", timeout_text(service.inbound_timeout) + " (sidecar to app)"],
        ["connect timeout", str(service.connect_timeout)],
        ["circuit breaker", describe_breaker(service.circuit_breaker)],
    ]
    check = service.health_check
    if check is not None:
        probe = check.path or (f"grpc {check.grpc_service}" if check.grpc_service else "tcp connect")
        rows.append(
            [
                "health check",
                f"{probe} every {check.interval}, {check.timeout} timeout, "
                f"{check.unhealthy_threshold} to fail, {check.healthy_threshold} to recover",
            ]
        )
    limit = service.rate_limit
    if limit is not None:
        rows.append(["rate limit", f"{describe_rate_limit(limit)} (per instance)"])
    return rows


def _authorization(mesh: Mesh, service: Service) -> list[list[Cell]]:
    if not mesh.security.enabled:
        return [["anyone", "mutual TLS is off: no identities, no authorization"]]
    rows: list[list[Cell]] = []
    for grant in grants(mesh, service):
        who = "outside the mesh" if grant.caller == OUTSIDE else grant.caller
        rows.append([who, grant.describe()])
    return rows


def callers_view(mesh: Mesh, service: Service) -> dict[str, str]:
    """What the callers' sidecars (and the Envoys of gateways routing to it) think of each instance
    (by mesh address), where they do not all think it healthy: ejected by outlier detection,
    failing active health checks. One /clusters read per caller."""
    seen: dict[str, dict[str, list[str]]] = {}
    clusters = {names.version_cluster(service.name, v.name) for v in service.versions}
    calling = [
        instance
        for caller in mesh.callers_of(service.name)
        for instance in caller.instances
        if service.name in caller.version(instance.version).calls
    ]
    calling += [instance for gateway in mesh.gateways_to(service.name) for instance in gateway.instances]
    for instance in calling:
        reply = send(instance.host.local_address, instance.admin_port, "/clusters?format=json", timeout=3)
        if not isinstance(reply.body, dict):
            continue
        for status in reply.body.get("cluster_statuses", []):
            if status.get("name") not in clusters:
                continue
            for host in status.get("host_statuses", []):
                socket = host.get("address", {}).get("socket_address", {})
                address = f"{socket.get('address')}:{socket.get('port_value')}"
                health = host.get("health_status", {})
                for flag, what in (
                    ("failed_outlier_check", "ejected by"),
                    ("failed_active_health_check", "failing health checks of"),
                ):
                    if health.get(flag):
                        seen.setdefault(address, {}).setdefault(what, []).append(instance.id)
    return {
        address: "; ".join(f"{what} {', '.join(ids)}" for what, ids in found.items()) for address, found in seen.items()
    }


def envoy_cell(instance: Instance, process: Process | None) -> Cell:
    """A sidecar's or gateway's Envoy: down (not running, per the state file), not ready, or up."""
    if process is None or not alive(process):
        return state_cell("down", "bad")
    if http_ok(f"http://{instance.host.local_address}:{instance.admin_port}/ready", "LIVE"):
        return state_cell("up", "ok")
    return state_cell("not ready", "warn")


def _instances(mesh: Mesh, service: Service, state: MeshState | None) -> list[list[Cell]]:
    processes = {(p.instance, p.kind): p for p in state.processes} if state else {}
    view = callers_view(mesh, service)
    rows: list[list[Cell]] = []
    for instance in service.instances:
        address = f"{instance.host.address}:{instance.inbound_port}"
        app = processes.get((instance.id, "app"))
        envoy = processes.get((instance.id, "envoy"))
        app_cell = state_cell("up", "ok") if app and alive(app) else state_cell("down", "bad")
        callers = state_cell(view[address], "warn") if address in view else state_cell("healthy", "ok")
        rows.append([instance.id, address, app_cell, envoy_cell(instance, envoy), callers])
    return rows


def service_panel(mesh: Mesh, service: Service, state: MeshState | None) -> dict[str, Any]:
    versions = ", ".join(f"{v.name} ({len(v.instances)})" for v in service.versions)
    calls = ", ".join(d.target for d in service.dependencies) or "nothing"
    callers = ", ".join(
        [c.name for c in mesh.callers_of(service.name)]
        + [gateway_caller(g.name) for g in mesh.gateways_to(service.name)]
    )
    return {
        "title": service.name,
        "subtitle": f"versions {versions}; calls {calls}; called by {callers or 'nobody in the mesh'}",
        "sections": [
            section(
                "Routes (first match wins)",
                ["route", "match", "to", "timeout", "retries", "fault", "mirror"],
                [_route_row(r) for r in service.routes],
            ),
            section("Policies", ["policy", "value"], _policies(service)),
            section("Authorization (who may call it)", ["caller", "may make"], _authorization(mesh, service)),
            section(
                "Instances",
                ["instance", "mesh address", "app", "sidecar", "callers see"],
                _instances(mesh, service, state),
            ),
        ],
    }


def _one_or_each(routes: tuple[Route, ...], text: Callable[[Route], str]) -> str:
    """What the service routes a gateway route folds in say of one thing: once when they agree,
    else per service route."""
    said = [text(r) for r in routes]
    if len(set(said)) <= 1:
        return said[0] if said else "none"
    return "; ".join(f"{r.name}: {t}" for r, t in zip(routes, said, strict=True))


def _gateway_route_row(mesh: Mesh, gateway: Gateway, route: GatewayRoute) -> list[Cell]:
    applied = compose(route, mesh.service(route.service), gateway.name)
    limit = route.rate_limit
    return [
        route.name,
        ", ".join("any Host" if d == "*" else d for d in route.domains),
        "any request" if route.match.catch_all else route.match.describe(),
        route.service,
        _one_or_each(applied, lambda r: timeout_text(r.timeout)),
        _one_or_each(applied, lambda r: describe_retries(r.retries)),
        describe_rate_limit(limit) if limit else "none of its own",
    ]


def _gateway_policies(mesh: Mesh, gateway: Gateway) -> list[list[Cell]]:
    if gateway.tls_port is None:
        https = "none"
    elif gateway.tls_cert is None:
        https = f"port {gateway.tls_port}, a certificate of the mesh CA for " + (
            ", ".join(gateway.domains) or "its address"
        )
    else:
        https = f"port {gateway.tls_port}, {gateway.tls_cert}"
    limit = gateway.rate_limit
    rows: list[list[Cell]] = [
        ["http", f"port {gateway.port}"],
        ["https", https],
        [
            "rate limit",
            f"{describe_rate_limit(limit)} (per instance, every route; routes may add their own)" if limit else "none",
        ],
    ]
    identity = mesh.security.gateway_id(gateway.name) if mesh.security.enabled else "none (mutual TLS is off)"
    rows.append(["identity towards the mesh", identity])
    return rows


def gateway_panel(mesh: Mesh, gateway: Gateway, state: MeshState | None) -> dict[str, Any]:
    processes = {(p.instance, p.kind): p for p in state.processes} if state else {}
    return {
        "title": f"gateway {gateway.name}",
        "subtitle": f"{len(gateway.instances)} instance(s); routes to {', '.join(gateway.targets)}, "
        "whose own routes (versions, weights, retries, timeouts) apply at the gateway",
        "sections": [
            section(
                "Routes (first match wins)",
                ["route", "domains", "match", "service", "timeout", "retries", "rate limit"],
                [_gateway_route_row(mesh, gateway, r) for r in gateway.routes],
            ),
            section("Listeners and limits", ["policy", "value"], _gateway_policies(mesh, gateway)),
            section(
                "URLs",
                ["instance", "url"],
                [[i.id, url] for i in gateway.instances for url in (gateway.http_url(i), gateway.https_url(i)) if url],
            ),
            section(
                "Instances",
                ["instance", "host", "envoy"],
                [[i.id, i.host.address, envoy_cell(i, processes.get((i.id, "envoy")))] for i in gateway.instances],
            ),
        ],
    }
