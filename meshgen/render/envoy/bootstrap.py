"""The bootstrap: identity, admin on loopback, and where the dynamic resources live."""

from __future__ import annotations

from typing import Any

from meshgen.model.mesh import Instance, Mesh
from meshgen.render.envoy import names
from meshgen.render.envoy.clusters import tracing_cluster
from meshgen.render.envoy.common import socket_address
from meshgen.render.envoy.layout import SidecarPaths
from meshgen.render.envoy.listeners import file_source
from meshgen.render.envoy.metrics import STATS_FLUSH_INTERVAL, stats_cluster, stats_config, stats_listener


def bootstrap(mesh: Mesh, instance: Instance, paths: SidecarPaths) -> dict[str, Any]:
    config: dict[str, Any] = {
        "node": {
            "id": instance.id,
            "cluster": instance.service,
            "metadata": {
                "mesh": mesh.name,
                "service": instance.service,
                "version": instance.version,
                "host": instance.host.name,
            },
        },
        # Admin can change and stop the proxy: it listens on the host's loopback address only.
        "admin": {"address": socket_address(instance.host.local_address, instance.admin_port)},
        # Listeners, routes and clusters come from files Envoy watches, so a changed file goes
        # live without a restart; only a change to this file needs one.
        "dynamic_resources": {
            "cds_config": file_source(paths.file(names.CDS_FILE)),
            "lds_config": file_source(paths.file(names.LDS_FILE)),
        },
    }
    # Every metric says which mesh, service, version and instance it is from.
    config["stats_config"] = stats_config(mesh, instance)
    config["stats_flush_interval"] = STATS_FLUSH_INTERVAL
    config["overload_manager"] = {
        "resource_monitors": [
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                    "downstream_connections.v3.DownstreamConnectionsConfig",
                    "max_active_downstream_connections": mesh.max_downstream_connections,
                },
            }
        ]
    }
    # Prometheus's listener is static: it serves from the start, whatever the watched files hold.
    static: dict[str, Any] = {"listeners": [stats_listener(instance)], "clusters": [stats_cluster(instance)]}
    if mesh.tracing is not None and mesh.tracing.provider != "xray":
        # Tracers need their collector cluster before any dynamic resource arrives.
        static["clusters"].append(tracing_cluster(mesh.tracing))
    config["static_resources"] = static
    return config
