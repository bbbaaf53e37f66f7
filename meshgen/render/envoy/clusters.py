"""Clusters: the local app, every version of every dependency, externals, the trace collector."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from meshgen.model.mesh import CircuitBreaker, Dependency, External, HealthCheck, Instance, Mesh, Service, Tracing
from meshgen.render.envoy import names
from meshgen.render.envoy.common import socket_address
from meshgen.render.envoy.layout import SidecarPaths
from meshgen.render.envoy.security import upstream_tls

_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _protocol_options(protocol: str, max_requests_per_connection: int | None = None) -> dict[str, Any]:
    if protocol == "tcp":
        return {}
    explicit: dict[str, Any] = (
        {"http2_protocol_options": {}} if protocol in ("http2", "grpc") else {"http_protocol_options": {}}
    )
    options: dict[str, Any] = {"@type": f"type.googleapis.com/{_HTTP_OPTIONS}", "explicit_http_config": explicit}
    if max_requests_per_connection is not None:
        options["common_http_protocol_options"] = {"max_requests_per_connection": max_requests_per_connection}
    return {"typed_extension_protocol_options": {_HTTP_OPTIONS: options}}


def _static(name: str, endpoints: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "endpoints": [
            {"lb_endpoints": [{"endpoint": {"address": socket_address(address, port)}} for address, port in endpoints]}
        ],
    }


def _panic_threshold(breaker: CircuitBreaker) -> dict[str, Any]:
    if breaker.panic_threshold is None:
        return {}
    return {"common_lb_config": {"healthy_panic_threshold": {"value": breaker.panic_threshold}}}


def _circuit_breakers(breaker: CircuitBreaker) -> dict[str, Any]:
    return {
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": breaker.max_connections,
                    "max_pending_requests": breaker.max_pending_requests,
                    "max_requests": breaker.max_requests,
                    "max_retries": breaker.max_retries,
                }
            ]
        }
    }


def _outlier_detection(breaker: CircuitBreaker) -> dict[str, Any]:
    return {
        "outlier_detection": {
            "consecutive_5xx": breaker.consecutive_5xx,
            "interval": breaker.interval.envoy(),
            "base_ejection_time": breaker.ejection_time.envoy(),
            "max_ejection_percent": breaker.max_ejection_percent,
        }
    }


def _health_checks(check: HealthCheck, protocol: str) -> dict[str, Any]:
    probe: dict[str, Any]
    if protocol == "tcp":
        # Healthy when the answer to `send` contains `expect`; with neither, when a connection opens.
        tcp: dict[str, Any] = {}
        if check.send is not None and check.expect is not None:
            tcp = {"send": {"text": check.send.encode().hex()}, "receive": [{"text": check.expect.encode().hex()}]}
        probe = {"tcp_health_check": tcp}
    elif check.grpc_service is not None:
        probe = {"grpc_health_check": {"service_name": check.grpc_service}}
    else:
        probe = {
            "http_health_check": {"path": check.path, "codec_client_type": "HTTP2" if protocol == "http2" else "HTTP1"}
        }
    return {
        "health_checks": [
            {
                "timeout": check.timeout.envoy(),
                "interval": check.interval.envoy(),
                # Envoy probes a cluster without traffic only every 60 s by default: a host that
                # failed its first probe (its sidecar not listening yet) stayed out for minutes.
                "no_traffic_interval": check.interval.envoy(),
                "no_traffic_healthy_interval": check.interval.envoy(),
                "unhealthy_threshold": check.unhealthy_threshold,
                "healthy_threshold": check.healthy_threshold,
                **probe,
            }
        ]
    }


def local_app_cluster(service: Service, instance: Instance) -> dict[str, Any]:
    local = instance.host.local_address
    return {
        "name": names.LOCAL_APP_CLUSTER,
        "type": "STATIC",
        "connect_timeout": service.connect_timeout.envoy(),
        "load_assignment": _static(names.LOCAL_APP_CLUSTER, [(local, instance.app_port)]),
        # The app sees its sidecar come from its own host's address, where hosts share a machine too.
        "upstream_bind_config": {"source_address": {"address": local, "port_value": 0}},
        **_protocol_options(service.protocol),
    }


def version_clusters(service: Service, transport_socket: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One cluster per version of `service`, its instances reached through their sidecars
    (over `transport_socket`, mutual TLS, when the mesh has identities)."""
    clusters = []
    for version in service.versions:
        name = names.version_cluster(service.name, version.name)
        endpoints = [(i.host.address, i.inbound_port) for i in version.instances]
        by_name = not all(_is_ip(address) for address, _ in endpoints)
        cluster = {
            "name": name,
            # Instances known by DNS name (Cloud Map on AWS) are re-resolved for every address.
            "type": "STRICT_DNS" if by_name else "STATIC",
            "connect_timeout": service.connect_timeout.envoy(),
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": _static(name, endpoints),
            **_circuit_breakers(service.circuit_breaker),
            **_protocol_options(service.protocol, service.circuit_breaker.max_requests_per_connection),
            **_panic_threshold(service.circuit_breaker),
        }
        if by_name:
            cluster["dns_lookup_family"] = "V4_ONLY"
            cluster["respect_dns_ttl"] = True
        if service.is_http:
            cluster.update(_outlier_detection(service.circuit_breaker))
        if service.health_check is not None:
            cluster.update(_health_checks(service.health_check, service.protocol))
        if transport_socket is not None:
            cluster["transport_socket"] = transport_socket
        clusters.append(cluster)
    return clusters


# Every caller's sidecar asks this again about the same few addresses: parse each once.
@functools.lru_cache(maxsize=65_536)
def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def external_cluster(external: External) -> dict[str, Any]:
    name = names.external_cluster(external.name)
    cluster: dict[str, Any] = {
        "name": name,
        # One DNS answer at a time, re-resolved on new connections: the right type for an
        # internet endpoint behind many rotating addresses.
        "type": "STATIC" if _is_ip(external.endpoint[0]) or not external.reachable else "LOGICAL_DNS",
        "connect_timeout": external.connect_timeout.envoy(),
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": _static(name, [external.endpoint] if external.reachable else []),
        **_circuit_breakers(external.circuit_breaker),
        **_protocol_options(external.protocol, external.circuit_breaker.max_requests_per_connection),
        **_panic_threshold(external.circuit_breaker),
    }
    if cluster["type"] == "LOGICAL_DNS":
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if external.is_http:
        cluster.update(_outlier_detection(external.circuit_breaker))
    if external.tls:
        assert external.sni is not None
        context: dict[str, Any] = {
            "validation_context": {
                "trusted_ca": {"filename": external.ca_file},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": external.sni}}],
            }
        }
        if external.client_cert and external.client_key:
            # Only when the catalog asks: a mesh identity is never sent outside the mesh.
            context["tls_certificates"] = [
                {
                    "certificate_chain": {"filename": external.client_cert},
                    "private_key": {"filename": external.client_key},
                }
            ]
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": external.sni,
                "common_tls_context": context,
            },
        }
    return cluster


def tracing_cluster(tracing: Tracing) -> dict[str, Any]:
    return {
        "name": names.TRACING_CLUSTER,
        "type": "STATIC" if tracing.collector_is_ip else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": _static(names.TRACING_CLUSTER, [(tracing.collector_address, tracing.collector_port)]),
        **_protocol_options("http"),
    }


def dependency_clusters(mesh: Mesh, calls: tuple[Dependency, ...], paths: SidecarPaths) -> list[dict[str, Any]]:
    """Exactly the clusters a sidecar needs to reach what its app calls: nothing else in the mesh."""
    clusters: list[dict[str, Any]] = []
    for dependency in calls:
        if dependency.external:
            clusters.append(external_cluster(mesh.external(dependency.target)))
        else:
            callee = mesh.service(dependency.target)
            tls = upstream_tls(mesh, callee, paths) if mesh.security.enabled else None
            clusters.extend(version_clusters(callee, tls))
    return clusters
