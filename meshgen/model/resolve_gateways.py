"""The catalog's gateways resolved: their instances on hosts, their routes checked against the
services they send to. A gateway route sends a request to a service whose own routes then apply,
so a route of the gateway that none of the service's routes can match is an error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meshgen.catalog import schema as s
from meshgen.catalog.positions import FieldPath
from meshgen.model import mesh as m
from meshgen.model.gateway_routes import compose

if TYPE_CHECKING:
    from meshgen.model.resolve import _Resolver

GATEWAY_VERSION = "gateway"


def resolve_gateways(
    resolver: _Resolver, hosts: dict[str, m.Host], services: dict[str, m.Service]
) -> tuple[m.Gateway, ...]:
    catalog = resolver.catalog
    sidecar = catalog.mesh.sidecar
    result = []
    for name, gateway in catalog.gateways.items():
        base: FieldPath = ("gateways", name)
        if name in catalog.services or name in catalog.external:
            resolver.problem(base, f"duplicate name: {name!r} is also a service or external service")
        instances = []
        for index, host_name in enumerate(gateway.hosts):
            host = hosts.get(host_name)
            if host is None:
                known = ", ".join(sorted(hosts)) or "none defined"
                resolver.problem((*base, "hosts", index), f"unknown host {host_name!r} (hosts: {known})")
                continue
            instances.append(
                m.Instance(
                    service=name,
                    version=GATEWAY_VERSION,
                    host=host,
                    app_port=gateway.port,
                    inbound_port=gateway.port,
                    outbound_port=gateway.port,
                    admin_port=gateway.admin_port or sidecar.admin_port,
                    stats_port=gateway.stats_port or sidecar.stats_port,
                    gateway=True,
                )
            )
        tls = gateway.tls
        if tls is not None:
            if (tls.cert is None) != (tls.key is None):
                resolver.problem((*base, "tls"), "give both cert and key, or neither (the mesh CA issues one)")
            elif tls.cert is None and catalog.mesh.security.mtls == "off":
                resolver.problem(
                    (*base, "tls"), "without cert and key the mesh CA issues the certificate: mtls is off, so none"
                )
            if tls.port == gateway.port:
                resolver.problem((*base, "tls", "port"), f"the HTTP listener already takes port {gateway.port}")
        routes = tuple(
            _route(resolver, name, (*base, "routes", index), route, services)
            for index, route in enumerate(gateway.routes)
        )
        result.append(
            m.Gateway(
                name=name,
                instances=tuple(instances),
                port=gateway.port,
                routes=tuple(r for r in routes if r is not None),
                tls_port=tls.port if tls else None,
                tls_cert=tls.cert if tls else None,
                tls_key=tls.key if tls else None,
                rate_limit=resolver.rate_limit(gateway.rate_limit, (*base, "rate_limit")),
            )
        )
    return tuple(result)


def _route(
    resolver: _Resolver,
    gateway: str,
    path: FieldPath,
    route: s.GatewayRoute,
    services: dict[str, m.Service],
) -> m.GatewayRoute | None:
    match = m.Match(
        prefix=route.match.prefix if route.match.path is None else None,
        path=route.match.path,
        headers=resolver.header_matches(route.match.headers, (*path, "match", "headers")),
        methods=tuple(route.match.methods or ()),
    )
    if route.match.prefix is not None and route.match.path is not None:
        resolver.problem((*path, "match"), "give either prefix or path, not both")
    service = services.get(route.service)
    if service is None:
        outside = route.service in resolver.catalog.external
        why = " (an external service: gateways route into the mesh)" if outside else ""
        resolver.problem((*path, "service"), f"unknown service {route.service!r}{why}")
        return None
    if not service.is_http:
        resolver.problem((*path, "service"), f"{service.name} speaks tcp: gateway routes are HTTP")
        return None
    resolved = m.GatewayRoute(
        name=route.name or f"route-{path[-1]}",
        domains=tuple(route.domains),
        match=match,
        service=service.name,
        rate_limit=resolver.rate_limit(route.rate_limit, (*path, "rate_limit")),
    )
    if not compose(resolved, service, gateway):
        resolver.problem(
            (*path, "match"),
            f"none of {service.name}'s routes can match a request within {match.describe()}",
        )
    return resolved
