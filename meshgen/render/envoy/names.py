"""Names shared by the pieces of a sidecar config: clusters, listeners, route configs, files."""

from __future__ import annotations

LOCAL_APP_CLUSTER = "local_app"
TRACING_CLUSTER = "tracing_collector"
PROMETHEUS_STATS_CLUSTER = "prometheus_stats"  # the sidecar's own admin interface
STATS_LISTENER = "prometheus_stats"
INBOUND_LISTENER = "inbound"
OUTBOUND_HTTP_LISTENER = "outbound_http"
INBOUND_ROUTES = "inbound"
OUTBOUND_ROUTES = "outbound"

BOOTSTRAP_FILE = "envoy.yaml"
CDS_FILE = "cds.yaml"
LDS_FILE = "lds.yaml"
RDS_FILES = {INBOUND_ROUTES: "rds-inbound.yaml", OUTBOUND_ROUTES: "rds-outbound.yaml"}


def dependency_routes(target: str) -> str:
    """The route configuration of a dependency's own listener: its routes, whatever the Host."""
    return f"{OUTBOUND_ROUTES}.{target}"


def rds_file(route_config: str) -> str:
    return RDS_FILES.get(route_config) or f"rds-{route_config}.yaml"


# SDS: the sidecar's own certificate and key, and the CA bundle it trusts (mutual TLS only).
IDENTITY_SECRET = "identity"
TRUST_SECRET = "trust"
SDS_FILES = {IDENTITY_SECRET: "sds-identity.yaml", TRUST_SECRET: "sds-trust.yaml"}


def sds_file(secret: str) -> str:
    """The file a secret is delivered in: one secret per file, named after it."""
    return SDS_FILES.get(secret) or f"sds-{secret}.yaml"


LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_CONFIG_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def version_cluster(service: str, version: str) -> str:
    return f"{service}.{version}"


def external_cluster(name: str) -> str:
    return f"external.{name}"


def tcp_listener(target: str) -> str:
    return f"outbound_tcp.{target}"


def http_listener(target: str) -> str:
    return f"outbound_http.{target}"
