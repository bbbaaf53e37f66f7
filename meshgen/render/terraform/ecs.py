"""The mesh as ECS sees it: one task shape per service version, found through Cloud Map DNS.

On ECS every task of a service version runs the same sidecar config, so configs are rendered per
version, not per instance: the inbound listener binds all addresses of the task, the app and the
admin interface stay on the task's loopback, and a dependency's endpoints are its Cloud Map name.
An ECS task gets its config once at start, so the config is one static bootstrap.

With mutual TLS, every task of a service presents the service's one identity: ECS hands each
task the certificate and key of the service's secret (see terraform/modules/ecs-envoy-service),
which the Envoy container writes to the files its config names, under a memory file system.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

from meshgen.durations import Duration
from meshgen.errors import CatalogError
from meshgen.model.mesh import Host, Instance, Mesh, Tracing, Version
from meshgen.render.document import to_config
from meshgen.render.envoy.layout import Layout, SidecarPaths
from meshgen.render.envoy.sidecar import sidecar_documents
from meshgen.render.envoy.static import static_bootstrap_from_documents

TASK_LOOPBACK = "127.0.0.1"
XRAY_DAEMON = ("127.0.0.1", 2000)
OTEL_COLLECTOR = ("127.0.0.1", 4318)
# /dev/shm: a memory file system private to the Envoy container (Fargate runs every container
# in its own IPC namespace), writable by Envoy's user: the key is never on the task's disk.
TASK_LAYOUT = Layout(PurePosixPath("/etc/envoy"), PurePosixPath("/dev/shm/meshgen/tls"))


# A task reads its certificate once, at start; `meshgen aws certs rotate` renews it by replacing
# the tasks, which must be done within half the lifetime (renew at half, as everywhere else). A
# rolling deployment takes minutes; below an hour the renewal could not keep up.
ECS_MIN_LEAF_LIFETIME = Duration(3_600_000)


def check_leaf_lifetime(mesh: Mesh) -> None:
    """Refuse (exit 2) a leaf lifetime ECS tasks cannot be renewed within."""
    security = mesh.security
    if security.enabled and security.leaf_lifetime < ECS_MIN_LEAF_LIFETIME:
        problem = mesh.sources.problem(
            ("mesh", "security", "leaf_lifetime"),
            f"{security.leaf_lifetime} is too short for ECS: a task reads its certificate once, at start, and "
            f"`meshgen aws certs rotate` renews it by replacing the tasks, which must finish within half the "
            f"lifetime; at least {ECS_MIN_LEAF_LIFETIME}",
        )
        raise CatalogError([problem], heading="the catalog cannot go to AWS")


def discovery_name(service: str, version: str) -> str:
    return f"{service}-{version}"


def ecs_tracing(mesh: Mesh, kind: str) -> Tracing | None:
    """The tracing sidecar in each task replaces the catalog's collector."""
    percent = mesh.tracing.sample_percent if mesh.tracing else 100.0
    if kind == "xray":
        return Tracing("xray", *XRAY_DAEMON, collector_is_ip=True, sample_percent=percent)
    if kind == "otel":
        return Tracing("opentelemetry", *OTEL_COLLECTOR, collector_is_ip=True, sample_percent=percent)
    return None


def task_instance(version: Version, namespace: str) -> Instance:
    """The pseudo-instance standing for every task of a version, addressed by its Cloud Map name."""
    first = version.instances[0]
    name = discovery_name(first.service, first.version)
    host = Host(name=name, address=f"{name}.{namespace}", local_address=TASK_LOOPBACK, listen_address="0.0.0.0")
    return dataclasses.replace(first, host=host)


def task_paths(version: Version) -> SidecarPaths:
    """Where the Envoy of a version's tasks finds its files: what its config names."""
    return TASK_LAYOUT.sidecar(task_instance(version, "").id)


def ecs_mesh(mesh: Mesh, namespace: str, tracing: str) -> Mesh:
    """One pseudo-instance per version. Client certificates for externals are left out: they are
    files where meshgen runs, which nothing puts into a task (fidelity lists them as lost)."""
    services = []
    for service in mesh.services:
        versions = [dataclasses.replace(v, instances=(task_instance(v, namespace),)) for v in service.versions]
        services.append(dataclasses.replace(service, versions=tuple(versions)))
    externals = tuple(dataclasses.replace(e, client_cert=None, client_key=None) for e in mesh.externals)
    return dataclasses.replace(mesh, services=tuple(services), externals=externals, tracing=ecs_tracing(mesh, tracing))


def task_envoy_configs(mesh: Mesh, namespace: str, tracing: str) -> dict[str, str]:
    """`<service>-<version>` -> the complete Envoy config of that version's tasks."""
    tasks = ecs_mesh(mesh, namespace, tracing)
    configs = {}
    for instance in tasks.instances:
        # A static config names no config files, so the directory the renderer is told about is moot.
        documents = sidecar_documents(tasks, instance, TASK_LAYOUT.sidecar(instance.id))
        name = discovery_name(instance.service, instance.version)
        header = [
            f"meshgen sidecar for {instance.service} {instance.version} on ECS (Cloud Map {name}.{namespace}), "
            f"mesh {mesh.name}",
            "generated from the service catalog: edit the catalog, not this file",
        ]
        static = static_bootstrap_from_documents({file: doc.document for file, doc in documents.items()})
        # Compact: the config travels in the task definition, which ECS caps at 64 KiB.
        configs[name] = to_config(static, header, compact=True)
    return configs
