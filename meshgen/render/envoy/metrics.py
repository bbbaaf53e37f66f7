"""Metrics: who each sidecar's stats are from, and the listener Prometheus scrapes them at.

Every stat of a sidecar carries the labels mesh, service, version and instance (fixed tags of the
bootstrap: they never change while the sidecar runs, so the bootstrap stays stable). The stats
listener serves `/stats/prometheus` of the admin interface on the host's mesh address, and nothing
else: the admin interface itself, which can change and stop the proxy, stays on loopback. This is
what Istio does with its `prometheus_stats` listener on port 15090.
"""

from __future__ import annotations

from typing import Any

from meshgen.model.mesh import Instance, Mesh
from meshgen.render.envoy import names
from meshgen.render.envoy.common import socket_address, typed

STATS_PATH = "/stats/prometheus"
# Histograms (request times) are merged from the workers at each flush: every second, so a
# Prometheus scraping every 2 s, and `meshgen top`, see request times as fresh as counters.
STATS_FLUSH_INTERVAL = "1s"
# How long the stats listener waits on the admin interface: a scrape of a busy sidecar is a large
# page, but never a slow one. Written out: Envoy's implicit 15 s route timeout never applies.
STATS_TIMEOUT = "5s"

# Envoy's own tag extractors kept by name (their default regexes): response codes and classes,
# connection managers, listeners, TCP proxies, virtual hosts, RBAC and local rate limits.
_DEFAULT_TAGS = (
    "envoy.response_code",
    "envoy.response_code_class",
    "envoy.http_conn_manager_prefix",
    "envoy.listener_address",
    "envoy.tcp_prefix",
    "envoy.virtual_host",
    "envoy.virtual_cluster",
    "envoy.rds_route_config",
    "envoy.ssl_cipher",
    "envoy.rbac_prefix",
    "envoy.rbac_http_prefix",
    "envoy.rbac_policy_name",
    "envoy.local_http_ratelimit_prefix",
)
# Envoy's default cluster-name tag stops at the first dot, and meshgen's clusters are named
# <service>.<version> and external.<name>: `cluster.api.v1.upstream_rq_xx` would become the stat
# `cluster.v1.upstream_rq_xx` of cluster `api`. Names of meshgen's clusters are two dotted names of
# lower-case letters, digits and dashes, or one word with an underscore (local_app,
# tracing_collector, prometheus_stats); the tag takes whichever the stat starts with.
CLUSTER_NAME_TAG = r"^cluster\.(([a-z0-9-]+\.[a-z0-9-]+|[a-z0-9_]+)\.)"


def labels(mesh: Mesh, instance: Instance) -> dict[str, str]:
    """The labels on every metric of `instance`'s sidecar."""
    return {"mesh": mesh.name, "service": instance.service, "version": instance.version, "instance": instance.id}


def stats_config(mesh: Mesh, instance: Instance) -> dict[str, Any]:
    fixed = [{"tag_name": name, "fixed_value": value} for name, value in labels(mesh, instance).items()]
    return {
        # Listed by name, so the cluster-name tag below can replace Envoy's own.
        "use_all_default_tags": False,
        "stats_tags": [
            *fixed,
            {"tag_name": "envoy.cluster_name", "regex": CLUSTER_NAME_TAG},
            *({"tag_name": name} for name in _DEFAULT_TAGS),
        ],
    }


def stats_cluster(instance: Instance) -> dict[str, Any]:
    """The sidecar's own admin interface, on loopback, as the one upstream of the stats listener."""
    address = socket_address(instance.host.local_address, instance.admin_port)
    return {
        "name": names.PROMETHEUS_STATS_CLUSTER,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": names.PROMETHEUS_STATS_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
    }


def stats_listener(instance: Instance) -> dict[str, Any]:
    """GET /stats/prometheus on the mesh address, passed to the admin interface; any other path
    answers 404 from the listener itself. Plaintext and without authorization: it serves stats
    only, read-only, to whoever reaches the address (README: Metrics)."""
    route = {
        "match": {"path": STATS_PATH, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        "route": {"cluster": names.PROMETHEUS_STATS_CLUSTER, "timeout": STATS_TIMEOUT},
    }
    hcm = typed(
        "envoy.filters.network.http_connection_manager",
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix=names.STATS_LISTENER,
        codec_type="AUTO",
        route_config={
            "name": names.STATS_LISTENER,
            "virtual_hosts": [{"name": names.STATS_LISTENER, "domains": ["*"], "routes": [route]}],
        },
        http_filters=[
            typed("envoy.filters.http.router", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")
        ],
    )
    return {
        "name": names.STATS_LISTENER,
        "address": socket_address(instance.host.inbound_bind, instance.stats_port),
        "traffic_direction": "INBOUND",
        "filter_chains": [{"filters": [hcm]}],
    }
