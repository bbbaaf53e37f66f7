"""One sidecar = one directory: a bootstrap plus the dynamic resource files it watches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from meshgen.model.authorization import grants
from meshgen.model.mesh import Instance, Mesh, Service, timeout_text
from meshgen.render.document import to_config
from meshgen.render.envoy import names
from meshgen.render.envoy.bootstrap import bootstrap
from meshgen.render.envoy.clusters import dependency_clusters, local_app_cluster
from meshgen.render.envoy.documents import SidecarDocument, discovery_file, file_order
from meshgen.render.envoy.gateway import gateway_documents
from meshgen.render.envoy.layout import Layout, SidecarPaths
from meshgen.render.envoy.listeners import sidecar_listeners
from meshgen.render.envoy.routes import (
    dependency_route_config,
    http_dependencies,
    inbound_route_config,
    outbound_route_config,
    own_listener_dependencies,
)
from meshgen.render.envoy.security import SECRET_TYPE, sds_resources


def _identity(mesh: Mesh, instance: Instance) -> list[str]:
    return [
        f"meshgen sidecar for {instance.service} {instance.version} on host {instance.host.name} "
        f"(node {instance.id}), mesh {mesh.name}",
        "generated from the service catalog: edit the catalog, not this file",
    ]


# Each file's header describes only that file's content, so a change to routes rewrites the
# route files alone and Envoy swaps routes without touching listeners, clusters or the process.


def bootstrap_header(mesh: Mesh, service: Service, instance: Instance) -> list[str]:
    host = instance.host
    # Only what the bootstrap itself names: a bootstrap that changes restarts Envoy, so it must
    # not change when routes or secrets come and go (those files are named by these two).
    lines = [
        *_identity(mesh, instance),
        f"admin     {host.local_address}:{instance.admin_port} (loopback only)",
        f"stats     http://{host.inbound_bind}:{instance.stats_port}/stats/prometheus (read-only, nothing else; "
        f"labels mesh={mesh.name} service={instance.service} version={instance.version} instance={instance.id})",
        f"dynamic   {names.CDS_FILE}, {names.LDS_FILE} and the route and secret files they name "
        "(watched; changes apply live)",
    ]
    if mesh.tracing is not None:
        tracing = mesh.tracing
        lines.append(
            f"tracing   {tracing.provider} -> {tracing.collector_address}:{tracing.collector_port}, "
            f"{tracing.sample_percent:g}% sampled"
        )
    return lines


def listeners_header(mesh: Mesh, service: Service, instance: Instance) -> list[str]:
    host = instance.host
    lines = [
        *_identity(mesh, instance),
        f"inbound   {host.address}:{instance.inbound_port} -> app {host.local_address}:{instance.app_port} "
        f"({service.protocol}, {_inbound_security(mesh, service)})",
    ]
    if mesh.security.enabled:
        admitted = [f"{g.caller} ({g.describe()})" for g in grants(mesh, service)]
        lines.append("admits    " + ("; ".join(admitted) if admitted else "nobody (no caller declares it)"))
    http = http_dependencies(service.calls(instance.version))
    if http:
        targets = ", ".join(sorted(d.target for d in http))
        lines.append(f"outbound  {host.local_address}:{instance.outbound_port} (http, by Host header) -> {targets}")
    for dependency in service.calls(instance.version):
        listener = dependency.listener(host)
        if listener is not None:
            kind = "http, any Host" if dependency.is_http else "tcp"
            lines.append(f"outbound  {listener[0]}:{listener[1]} ({kind}) -> {dependency.target}")
    lines.append(f"access log {mesh.access_log.format} -> {mesh.access_log.path}")
    return lines


def _inbound_security(mesh: Mesh, service: Service) -> str:
    mode = mesh.security.mtls
    if mode == "off":
        return "plaintext"
    if mode == "permissive":
        return "mutual TLS or plaintext: permissive"
    return "mutual TLS, plaintext from outside" if service.edge else "mutual TLS only"


def clusters_header(mesh: Mesh, instance: Instance, clusters: list[dict[str, Any]]) -> list[str]:
    return [*_identity(mesh, instance), "clusters  " + ", ".join(c["name"] for c in clusters)]


def outbound_routes_header(mesh: Mesh, service: Service, instance: Instance) -> list[str]:
    lines = [*_identity(mesh, instance), "outbound routes, first match wins:"]
    for dependency in sorted(http_dependencies(service.calls(instance.version)), key=lambda d: d.target):
        if dependency.external:
            external = mesh.external(dependency.target)
            scheme = "https" if external.tls else "http"
            lines.append(
                f"  {dependency.target}: external {scheme}://{external.address}:{external.port}, "
                f"timeout {timeout_text(external.timeout)}"
            )
            continue
        for route in mesh.service(dependency.target).routes:
            if not route.match.applies_to(service.name):
                continue
            lines.append(
                f"  {dependency.target}/{route.name}: {route.match.describe()} -> {route.describe_weights()}"
                f", timeout {timeout_text(route.timeout)}, attempts {route.retries.attempts}"
            )
    return lines


def secrets_header(mesh: Mesh, instance: Instance, paths: SidecarPaths, file: str) -> list[str]:
    if file == names.SDS_FILES[names.IDENTITY_SECRET]:
        what = f"identity  {mesh.security.service_id(instance.service)}: certificate and key in {paths.identity_dir}"
    else:
        what = f"trust     the mesh CA bundle in {paths.trust_dir}"
    return [*_identity(mesh, instance), what + " (current/, swapped whole on rotation)"]


def inbound_routes_header(mesh: Mesh, service: Service, instance: Instance) -> list[str]:
    return [
        *_identity(mesh, instance),
        f"inbound route: everything -> local app, timeout {timeout_text(service.inbound_timeout)}",
    ]


def sidecar_documents(mesh: Mesh, instance: Instance, paths: SidecarPaths) -> dict[str, SidecarDocument]:
    """File name -> document for one instance's sidecar, whose files will live at `paths`."""
    if instance.gateway:
        return gateway_documents(mesh, instance, paths)  # a gateway's: the same files, no app
    service = mesh.service(instance.service)
    calls = service.calls(instance.version)
    clusters = [local_app_cluster(service, instance), *dependency_clusters(mesh, calls, paths)]
    documents = {
        names.CDS_FILE: SidecarDocument(
            discovery_file(names.CLUSTER_TYPE, clusters), clusters_header(mesh, instance, clusters)
        ),
        names.LDS_FILE: SidecarDocument(
            discovery_file(names.LISTENER_TYPE, sidecar_listeners(mesh, service, instance, paths)),
            listeners_header(mesh, service, instance),
        ),
    }
    if mesh.security.enabled:
        for name, secrets in sds_resources(paths).items():
            documents[name] = SidecarDocument(
                discovery_file(SECRET_TYPE, secrets), secrets_header(mesh, instance, paths, name)
            )
    if service.is_http:
        documents[names.RDS_FILES[names.INBOUND_ROUTES]] = SidecarDocument(
            discovery_file(names.ROUTE_CONFIG_TYPE, [inbound_route_config(service)]),
            inbound_routes_header(mesh, service, instance),
        )
    if http_dependencies(calls):
        documents[names.RDS_FILES[names.OUTBOUND_ROUTES]] = SidecarDocument(
            discovery_file(names.ROUTE_CONFIG_TYPE, [outbound_route_config(mesh, service, calls)]),
            outbound_routes_header(mesh, service, instance),
        )
    for dependency in own_listener_dependencies(calls):
        routes = dependency_route_config(mesh, service, dependency)
        documents[names.rds_file(routes["name"])] = SidecarDocument(
            discovery_file(names.ROUTE_CONFIG_TYPE, [routes]),
            [*_identity(mesh, instance), f"routes of {dependency.target} on its own listener, whatever the Host"],
        )
    documents[names.BOOTSTRAP_FILE] = SidecarDocument(
        bootstrap(mesh, instance, paths), bootstrap_header(mesh, service, instance)
    )
    return {name: documents[name] for name in sorted(documents, key=file_order)}


def render_sidecar(mesh: Mesh, instance: Instance, paths: SidecarPaths) -> dict[str, str]:
    """File name -> content for one instance's sidecar, whose files will live at `paths`."""
    return {
        name: to_config(file.document, file.header) for name, file in sidecar_documents(mesh, instance, paths).items()
    }


def render_envoy(mesh: Mesh, layout: Layout) -> dict[str, str]:
    """Relative path -> content for every sidecar in the mesh: one directory per instance, to live
    under `layout.config_root` when Envoy runs (absolute, since the bootstraps point into it)."""
    files: dict[str, str] = {}
    for sidecar in render_envoy_sidecars(mesh, layout):
        files.update(sidecar)
    return files


def render_envoy_sidecars(
    mesh: Mesh, layout: Layout, share: int = 0, of: int = 1, only: set[str] | None = None
) -> Iterator[dict[str, str]]:
    """render_envoy one sidecar at a time (relative path -> content), for output too large to
    hold at once; `share` of `of`: every `of`-th sidecar from the `share`-th, to split the work;
    `only`: the Envoys of these instance ids alone."""
    proxies = mesh.proxies if only is None else tuple(p for p in mesh.proxies if p.id in only)
    for instance in proxies[share::of]:
        yield {
            f"{instance.id}/{name}": content
            for name, content in render_sidecar(mesh, instance, layout.sidecar(instance.id)).items()
        }
