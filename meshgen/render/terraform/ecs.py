"""The mesh as ECS sees it: one task shape per service version, found through Cloud Map DNS.

On ECS every task of a service version runs the same sidecar config, so configs are rendered per
version, not per instance: the inbound listener binds all addresses of the task, the app and the
admin interface stay on the task's loopback, and a dependency's endpoints are its Cloud Map name.
An ECS task gets its config once at start, so the config is one static bootstrap.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

from meshgen.model.mesh import Host, Mesh, Tracing
from meshgen.render.document import to_config
from meshgen.render.envoy.layout import Layout
from meshgen.render.envoy.sidecar import sidecar_documents
from meshgen.render.envoy.static import static_bootstrap_from_documents

TASK_LOOPBACK = "127.0.0.1"
XRAY_DAEMON = ("127.0.0.1", 2000)
OTEL_COLLECTOR = ("127.0.0.1", 4318)
TASK_LAYOUT = Layout(PurePosixPath("/etc/envoy"))


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


def ecs_mesh(mesh: Mesh, namespace: str, tracing: str) -> Mesh:
    """One pseudo-instance per version, addressed by its Cloud Map name."""
    services = []
    for service in mesh.services:
        versions = []
        for version in service.versions:
            name = discovery_name(service.name, version.name)
            host = Host(name=name, address=f"{name}.{namespace}", local_address=TASK_LOOPBACK, listen_address="0.0.0.0")
            task = dataclasses.replace(version.instances[0], host=host)
            versions.append(dataclasses.replace(version, instances=(task,)))
        services.append(dataclasses.replace(service, versions=tuple(versions)))
    return dataclasses.replace(mesh, services=tuple(services), tracing=ecs_tracing(mesh, tracing))


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
