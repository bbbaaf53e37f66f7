"""Where an app finds what it calls: each dependency's address, the environment variables that
name it, and the names a host's hosts file gives it. Every target's app launcher reads these."""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshgen.model.mesh import Host, Instance, Mesh

MESH_DOMAIN = "mesh"  # details.mesh: the name Kuma and Consul users write


@dataclass(frozen=True)
class DependencyAddress:
    target: str
    scheme: str  # http (also for http2 and grpc) or tcp
    listener: tuple[str, int] | None  # its own listener; None: through HTTP_PROXY, by name


def dependency_addresses(mesh: Mesh, instance: Instance) -> list[DependencyAddress]:
    service = mesh.service(instance.service)
    return [
        DependencyAddress(d.target, "http" if d.is_http else "tcp", d.listener(instance.host))
        for d in sorted(service.calls(instance.version), key=lambda d: d.target)
    ]


def variable_prefix(name: str) -> str | None:
    """DETAILS for details, ORDER_DB for order-db, as Kubernetes names service variables; None
    for a name that starts with a digit, which no variable name may."""
    prefix = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    return None if prefix[0].isdigit() else prefix


def app_environment(mesh: Mesh, instance: Instance) -> dict[str, str]:
    """For each dependency: <NAME>_SERVICE_HOST and _PORT when it has a listener of its own (an
    address any client can dial), and <NAME>_URL always; HTTP_PROXY to the shared outbound
    listener for clients that honour it, with NO_PROXY sparing the listeners dialled directly."""
    local = instance.host.local_address
    env: dict[str, str] = {}
    direct = {"localhost", "127.0.0.1", "::1", local}
    proxied = False
    for address in dependency_addresses(mesh, instance):
        prefix = variable_prefix(address.target)
        if address.listener is None:
            proxied = True
            if prefix is not None:
                env[f"{prefix}_URL"] = f"http://{address.target}"
            continue
        host, port = address.listener
        direct.add(host)
        if prefix is not None:
            env[f"{prefix}_SERVICE_HOST"] = host
            env[f"{prefix}_SERVICE_PORT"] = str(port)
            env[f"{prefix}_URL"] = f"{address.scheme}://{_host_in_url(host)}:{port}"
    if proxied:
        proxy = f"http://{_host_in_url(local)}:{instance.outbound_port}"
        no_proxy = ",".join(sorted(direct))
        # curl reads only the lower-case names; most other clients read either.
        env.update({"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": no_proxy, "no_proxy": no_proxy})
    return env


def routed_headers(mesh: Mesh) -> list[str]:
    """Every request header a route or a fault matches on, anywhere in the mesh."""
    found = set()
    for service in mesh.services:
        for route in service.routes:
            found |= {h.name for h in route.match.headers}
            if route.fault is not None:
                found |= {h.name for h in route.fault.headers}
    return sorted(found)


def instance_environment(mesh: Mesh, instance: Instance) -> dict[str, str]:
    """Everything an instance's app is told, the same wherever it runs (a local mesh, on-prem
    hosts): who it is and where it listens (MESHGEN_*), then where its dependencies are
    (app_environment), then the instance's own `env`, which wins."""
    service = mesh.service(instance.service)
    local = instance.host.local_address
    return {
        "MESHGEN_MESH": mesh.name,
        "MESHGEN_SERVICE": instance.service,
        "MESHGEN_VERSION": instance.version,
        "MESHGEN_INSTANCE": instance.id,
        "MESHGEN_LISTEN": f"{local}:{instance.app_port}",
        "MESHGEN_PROTOCOL": "tcp" if service.protocol == "tcp" else "http",
        "MESHGEN_OUTBOUND": f"{local}:{instance.outbound_port}",
        # The demo app passes on what the mesh's routes match on, as a well-behaved app would.
        "MESHGEN_FORWARD_HEADERS": ",".join(routed_headers(mesh)),
        **app_environment(mesh, instance),
        **dict(instance.env),
    }


def _host_in_url(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def hosts_file_entries(mesh: Mesh, host: Host) -> dict[str, tuple[str, ...]]:
    """address -> the names a hosts file gives it on `host`: every dependency with an address
    of its own, called by an instance there, by its name, its name in the mesh domain, and an
    external's other names. Empty unless the host has hosts_file set."""
    if not host.hosts_file:
        return {}
    entries: dict[str, set[str]] = {}
    for instance in mesh.instances:
        if instance.host.name != host.name:
            continue
        for dependency in mesh.service(instance.service).calls(instance.version):
            if dependency.local_address is None:
                continue
            names = {dependency.target, f"{dependency.target}.{MESH_DOMAIN}"}
            if dependency.external:
                names |= set(mesh.external(dependency.target).hosts)
            entries.setdefault(dependency.local_address, set()).update(names)
    return {address: tuple(sorted(names)) for address, names in sorted(entries.items())}


def name_conflicts(mesh: Mesh, host: Host) -> dict[str, tuple[str, ...]]:
    """Names the hosts file of `host` would give two addresses: name -> the addresses."""
    by_name: dict[str, set[str]] = {}
    for address, names in hosts_file_entries(mesh, host).items():
        for name in names:
            by_name.setdefault(name, set()).add(address)
    return {name: tuple(sorted(found)) for name, found in sorted(by_name.items()) if len(found) > 1}
