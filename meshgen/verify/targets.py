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
        return self.instance.host.local_address, self.instance.outbound_port

    @property
    def admin(self) -> str:
        return f"{self.instance.host.local_address}:{self.instance.admin_port}"


def caller_of(mesh: Mesh, service: Service) -> Caller | None:
    """The first instance (in catalog order) of a service that calls `service` over HTTP."""
    for candidate in mesh.callers_of(service.name):
        dependency = next(d for d in candidate.dependencies if d.target == service.name)
        if dependency.local_port is None and candidate.instances:
            return Caller(candidate.instances[0], candidate.dependencies)
    return None


def app_address(instance: Instance) -> tuple[str, int]:
    return instance.host.local_address, instance.app_port


def inbound_address(instance: Instance) -> tuple[str, int]:
    return instance.host.address, instance.inbound_port
