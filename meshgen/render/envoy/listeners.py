"""Listeners: inbound (mesh -> app), outbound HTTP (app -> dependencies), outbound TCP."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from meshgen.model.mesh import Instance, Mesh, Service
from meshgen.render.envoy import names
from meshgen.render.envoy.common import socket_address, typed
from meshgen.render.envoy.layout import SidecarPaths
from meshgen.render.envoy.observability import access_log, tracing_config
from meshgen.render.envoy.routes import (
    FAULT_FILTER,
    RATE_LIMIT_FILTER,
    http_dependencies,
    own_listener_dependencies,
    uses_faults,
    uses_outbound_rate_limits,
)
from meshgen.render.envoy.security import (
    TLS_INSPECTOR,
    downstream_tls,
    http_rbac,
    mtls_policies,
    network_rbac,
    plaintext_policies,
    takes_plaintext,
)

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
# Envoy's own default, written out so no timeout in a config is implicit.
TCP_IDLE_TIMEOUT = "3600s"


def file_source(path: PurePosixPath) -> dict[str, Any]:
    return {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}


def _http_filters(*, fault: bool, rate_limit: bool, rbac: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    # Authorization first: a refused call must not spend rate-limit tokens or reach anything else.
    filters = [http_rbac(rbac)] if rbac is not None else []
    if fault:
        # Empty here: each route that injects faults carries its own settings.
        filters.append(typed(FAULT_FILTER, "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"))
    if rate_limit:
        filters.append(
            typed(
                RATE_LIMIT_FILTER,
                "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                stat_prefix="http_local_rate_limiter",
            )
        )
    filters.append(
        typed("envoy.filters.http.router", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")
    )
    return filters


def http_connection_manager(
    mesh: Mesh,
    instance: Instance,
    *,
    stat_prefix: str,
    direction: str,
    route_config: str,
    paths: SidecarPaths,
    filters: list[dict[str, Any]],
    peer_identity: bool = False,
    default_host: str | None = None,
    edge: bool = False,
) -> dict[str, Any]:
    # Real apps still speak HTTP/1.0: nginx's proxy_pass does by default, and Envoy answers
    # HTTP/1.0 with 426 unless told to accept it. A request without Host gets `default_host`.
    http1: dict[str, Any] = {"accept_http_10": True}
    if default_host is not None:
        http1["default_host_for_http_10"] = default_host
    config: dict[str, Any] = {
        "@type": _HCM,
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "generate_request_id": True,
        "http_protocol_options": http1,
        "rds": {
            "route_config_name": route_config,
            "config_source": file_source(paths.file(names.rds_file(route_config))),
        },
        "http_filters": filters,
        "access_log": access_log(mesh.access_log, instance, direction),
    }
    if edge:
        # The way in from outside: the client is the connection's peer (no X-Forwarded-For
        # from outside is believed), and Envoy's internal headers sent from outside are dropped.
        config["use_remote_address"] = True
        config["xff_num_trusted_hops"] = 0
    if peer_identity:
        # The app learns who called it: x-forwarded-client-cert carries the caller's SPIFFE ID,
        # set by the sidecar (a value sent by the caller itself is dropped).
        config["forward_client_cert_details"] = "SANITIZE_SET"
        config["set_current_client_cert_details"] = {"uri": True}
    tracing = tracing_config(mesh, instance)
    if tracing is not None:
        config["tracing"] = tracing
    return {"name": "envoy.filters.network.http_connection_manager", "typed_config": config}


def _inbound_filters(
    mesh: Mesh, service: Service, instance: Instance, paths: SidecarPaths, *, tls: bool, rbac: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The inbound chain's network filters: authorization (if any), then HTTP or TCP to the app."""
    prefix = "inbound" if tls or not mesh.security.enabled else "inbound_plaintext"
    if service.is_http:
        hcm = http_connection_manager(
            mesh,
            instance,
            stat_prefix=f"{prefix}_http",
            direction="inbound",
            route_config=names.INBOUND_ROUTES,
            paths=paths,
            filters=_http_filters(fault=False, rate_limit=service.rate_limit is not None, rbac=rbac),
            peer_identity=tls,
        )
        return [hcm]
    proxy = typed(
        "envoy.filters.network.tcp_proxy",
        _TCP_PROXY,
        stat_prefix=f"{prefix}_tcp",
        cluster=names.LOCAL_APP_CLUSTER,
        idle_timeout=TCP_IDLE_TIMEOUT,
        access_log=access_log(mesh.access_log, instance, "inbound", tcp=True),
    )
    return [network_rbac(rbac, f"{prefix}_tcp"), proxy] if rbac is not None else [proxy]


def _inbound_chains(mesh: Mesh, service: Service, instance: Instance, paths: SidecarPaths) -> list[dict[str, Any]]:
    if not mesh.security.enabled:
        return [{"filters": _inbound_filters(mesh, service, instance, paths, tls=False, rbac=None)}]
    mtls = {
        "transport_socket": downstream_tls(service, paths),
        "filters": _inbound_filters(mesh, service, instance, paths, tls=True, rbac=mtls_policies(mesh, service)),
    }
    if not takes_plaintext(mesh, service):
        return [mtls]
    plaintext = _inbound_filters(mesh, service, instance, paths, tls=False, rbac=plaintext_policies(mesh, service))
    return [
        {"filter_chain_match": {"transport_protocol": "tls"}, **mtls},
        {"filter_chain_match": {"transport_protocol": "raw_buffer"}, "filters": plaintext},
    ]


def inbound_listener(mesh: Mesh, service: Service, instance: Instance, paths: SidecarPaths) -> dict[str, Any]:
    listener: dict[str, Any] = {
        "name": names.INBOUND_LISTENER,
        "address": socket_address(instance.host.inbound_bind, instance.inbound_port),
        "traffic_direction": "INBOUND",
    }
    if mesh.security.enabled and takes_plaintext(mesh, service):
        # Picks the mutual-TLS chain or the plaintext one by the connection's first bytes.
        listener["listener_filters"] = [TLS_INSPECTOR]
    listener["filter_chains"] = _inbound_chains(mesh, service, instance, paths)
    return listener


def outbound_http_listener(mesh: Mesh, service: Service, instance: Instance, paths: SidecarPaths) -> dict[str, Any]:
    hcm = http_connection_manager(
        mesh,
        instance,
        stat_prefix="outbound_http",
        direction="outbound",
        route_config=names.OUTBOUND_ROUTES,
        paths=paths,
        filters=_http_filters(
            fault=uses_faults(mesh, service.calls(instance.version)),
            rate_limit=uses_outbound_rate_limits(service.calls(instance.version)),
        ),
    )
    return {
        "name": names.OUTBOUND_HTTP_LISTENER,
        "address": socket_address(instance.host.local_address, instance.outbound_port),
        "traffic_direction": "OUTBOUND",
        "filter_chains": [{"filters": [hcm]}],
    }


def own_http_listeners(mesh: Mesh, service: Service, instance: Instance, paths: SidecarPaths) -> list[dict[str, Any]]:
    """A listener per dependency that has a port of its own: plain http://ADDRESS:PORT/ reaches it,
    through the same routes, retries, timeouts, faults and tracing as the shared listener."""
    listeners = []
    for dependency in own_listener_dependencies(service.calls(instance.version)):
        listener = dependency.listener(instance.host)
        assert listener is not None
        hcm = http_connection_manager(
            mesh,
            instance,
            stat_prefix=f"outbound_http_{dependency.target}",
            direction="outbound",
            route_config=names.dependency_routes(dependency.target),
            paths=paths,
            default_host=dependency.target,
            filters=_http_filters(
                fault=uses_faults(mesh, (dependency,)), rate_limit=uses_outbound_rate_limits((dependency,))
            ),
        )
        listeners.append(
            {
                "name": names.http_listener(dependency.target),
                "address": socket_address(*listener),
                "traffic_direction": "OUTBOUND",
                "filter_chains": [{"filters": [hcm]}],
            }
        )
    return listeners


def _tcp_route(mesh: Mesh, target: str, external: bool) -> dict[str, Any]:
    if external:
        return {"cluster": names.external_cluster(target)}
    callee = mesh.service(target)
    weights = callee.routes[0].weights
    if len(weights) == 1:
        return {"cluster": names.version_cluster(target, weights[0][0])}
    return {
        "weighted_clusters": {"clusters": [{"name": names.version_cluster(target, v), "weight": w} for v, w in weights]}
    }


def outbound_tcp_listeners(mesh: Mesh, service: Service, instance: Instance) -> list[dict[str, Any]]:
    listeners = []
    for dependency in service.calls(instance.version):
        listener = dependency.listener(instance.host)
        if dependency.is_http or listener is None:
            continue
        listeners.append(
            {
                "name": names.tcp_listener(dependency.target),
                "address": socket_address(*listener),
                "traffic_direction": "OUTBOUND",
                "filter_chains": [
                    {
                        "filters": [
                            typed(
                                "envoy.filters.network.tcp_proxy",
                                _TCP_PROXY,
                                stat_prefix=f"outbound_tcp_{dependency.target}",
                                idle_timeout=TCP_IDLE_TIMEOUT,
                                access_log=access_log(mesh.access_log, instance, "outbound", tcp=True),
                                **_tcp_route(mesh, dependency.target, dependency.external),
                            )
                        ]
                    }
                ],
            }
        )
    return listeners


def sidecar_listeners(mesh: Mesh, service: Service, instance: Instance, paths: SidecarPaths) -> list[dict[str, Any]]:
    listeners = [inbound_listener(mesh, service, instance, paths)]
    if http_dependencies(service.calls(instance.version)):
        listeners.append(outbound_http_listener(mesh, service, instance, paths))
    listeners.extend(own_http_listeners(mesh, service, instance, paths))
    listeners.extend(outbound_tcp_listeners(mesh, service, instance))
    return listeners
