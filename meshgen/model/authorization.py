"""Who may call a service, derived from the catalog: the single answer that the Envoy renderer
turns into RBAC, verification turns into requests that must pass or get 403, and lint checks.

Default deny: a service admits the services that declare it as a dependency and the gateways
that route to it (by their SPIFFE IDs) and, if it is an edge service, callers from outside the
mesh. The catalog's rules can only narrow that (to some callers, methods, path prefixes) or admit
a named client outside the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshgen.model.mesh import Mesh, Service

OUTSIDE = "outside"


@dataclass(frozen=True)
class Grant:
    """One caller admitted for some methods and path prefixes (empty: any)."""

    caller: str  # a service name, "client <name>", or OUTSIDE
    principal: str | None  # the SPIFFE ID it must present; None for callers from outside the mesh
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return not self.methods and not self.paths

    def describe(self) -> str:
        if self.unrestricted:
            return "any call"
        methods = ", ".join(self.methods) if self.methods else "any method"
        paths = ", ".join(f"{p}*" for p in self.paths) if self.paths else "any path"
        return f"{methods} on {paths}"

    def admits(self, method: str, path: str) -> bool:
        return (not self.methods or method in self.methods) and (
            not self.paths or any(path.startswith(p) for p in self.paths)
        )


def declared_callers(mesh: Mesh, service: Service) -> tuple[str, ...]:
    return tuple(sorted(caller.name for caller in mesh.callers_of(service.name)))


def gateway_caller(gateway: str) -> str:
    return f"gateway {gateway}"


def grants(mesh: Mesh, service: Service) -> tuple[Grant, ...]:
    """Everything `service` admits, in a stable order; what it does not list, it refuses."""
    security = mesh.security
    callers = declared_callers(mesh, service)
    gateways = tuple(g.name for g in mesh.gateways_to(service.name))
    if service.authorization is None:
        found = [Grant(name, security.service_id(name)) for name in callers]
        found += [Grant(gateway_caller(name), security.gateway_id(name)) for name in gateways]
        if service.edge:
            found.append(Grant(OUTSIDE, None))
        return tuple(found)
    found = []
    for rule in service.authorization:
        for name in rule.callers:
            # Rules narrow: a service that does not call this one, or a gateway with no route to
            # it, is never admitted.
            if name in callers:
                found.append(Grant(name, security.service_id(name), rule.methods, rule.paths))
            elif name in gateways:
                found.append(Grant(gateway_caller(name), security.gateway_id(name), rule.methods, rule.paths))
        for client in rule.clients:
            found.append(Grant(f"client {client}", security.client_id(client), rule.methods, rule.paths))
        if rule.outside and service.edge:
            found.append(Grant(OUTSIDE, None, rule.methods, rule.paths))
    return tuple(found)


def by_principal(found: tuple[Grant, ...]) -> dict[str, tuple[Grant, ...]]:
    """Grants of callers with a mesh identity, grouped by the SPIFFE ID they present."""
    grouped: dict[str, list[Grant]] = {}
    for grant in found:
        if grant.principal is not None:
            grouped.setdefault(grant.principal, []).append(grant)
    return {principal: tuple(group) for principal, group in grouped.items()}


def outside_grants(found: tuple[Grant, ...]) -> tuple[Grant, ...]:
    return tuple(g for g in found if g.principal is None)
