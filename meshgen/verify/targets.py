"""Where verification reaches the mesh: callers' outbound listeners, admins, apps."""

from __future__ import annotations

from dataclasses import dataclass

from meshgen.model.mesh import Dependency, Instance, Mesh, Service


@dataclass(frozen=True)
class Caller:
    """The sidecar verification speaks through, standing in for a caller's app."""

    instance: Instance
    service_dependencies: tuple[Dependency, ...] = ()

    @property
    def outbound(self) -> tuple[str, int]:
        """Where its app sends calls; for a gateway, where callers from outside do."""
        if self.instance.gateway:
            return self.instance.host.address, self.instance.inbound_port
        return self.instance.host.local_address, self.instance.outbound_port

    @property
    def admin(self) -> str:
        return f"{self.instance.host.local_address}:{self.instance.admin_port}"


def runs_own_app(service: Service) -> bool:
    """True when an instance of `service` runs its own command: its answers say nothing of
    versions, and it has none of the demo app's knobs (failures, delays, counters)."""
    return any(i.command is not None for i in service.instances)


def own_app_reason(service: Service) -> str:
    return f"{service.name} runs its own app, which has none of the demo app's knobs this check turns"


def instance_calling(service: Service, target: str) -> Instance | None:
    """The first instance of `service` whose version calls `target` (versions may call different things)."""
    return next((i for i in service.instances if target in service.version(i.version).calls), None)


def caller_of(mesh: Mesh, service: Service, among: tuple[str, ...] = ()) -> Caller | None:
    """The first instance (in catalog order) of a service that calls `service` over HTTP; with
    `among`, of one of those services only."""
    for candidate in mesh.callers_of(service.name):
        if among and candidate.name not in among:
            continue
        dependency = next(d for d in candidate.dependencies if d.target == service.name)
        instance = instance_calling(candidate, service.name)
        if dependency.is_http and instance is not None:
            return Caller(instance, candidate.calls(instance.version))
    return None


def app_address(instance: Instance) -> tuple[str, int]:
    return instance.host.local_address, instance.app_port


def inbound_address(instance: Instance) -> tuple[str, int]:
    return instance.host.address, instance.inbound_port
