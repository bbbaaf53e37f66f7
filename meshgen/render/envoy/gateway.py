"""A gateway's Envoy: listeners on its host's address for callers from outside (HTTP, and HTTPS
when the catalog asks), routes by Host and path to the services it fronts, with those services'
own routes applied (versions, weights, retries, timeouts, faults, mirroring), and clusters that
reach their sidecars as a mesh client with the gateway's own identity. No app, no inbound hop.
The files are those of a sidecar, so everything that runs, swaps and checks sidecars runs it."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from meshgen.model.gateway_routes import compose
from meshgen.model.mesh import Dependency, Gateway, GatewayRoute, Instance, Mesh
from meshgen.render.envoy import names
from meshgen.render.envoy.bootstrap import bootstrap
from meshgen.render.envoy.clusters import dependency_clusters
from meshgen.render.envoy.common import local_rate_limit, socket_address, typed
from meshgen.render.envoy.documents import SidecarDocument, discovery_file, file_order
from meshgen.render.envoy.layout import SidecarPaths
from meshgen.render.envoy.listeners import http_connection_manager
from meshgen.render.envoy.routes import FAULT_FILTER, RATE_LIMIT_FILTER, service_route
from meshgen.render.envoy.security import SECRET_TYPE, sds_resources, served_certificate, tls_secret

GATEWAY_ROUTES = "gateway"
# The listeners' names and their connection managers' stat prefixes (http.<prefix>.downstream_rq_*).
GATEWAY_HTTP = "gateway_http"
GATEWAY_HTTPS = "gateway_https"
GATEWAY_TLS_SECRET = "gateway-tls"
GATEWAY_TLS_SDS_FILE = names.sds_file(GATEWAY_TLS_SECRET)
# Named apart from the per-route limiter, so the gateway-wide bucket and a route's both apply.
GATEWAY_LIMIT_FILTER = "meshgen.gateway_rate_limit"
_LOCAL_RATE_LIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"


def gateway_dependencies(mesh: Mesh, gateway: Gateway) -> tuple[Dependency, ...]:
    """The services a gateway routes to, as the dependencies of a caller."""
    return tuple(
        Dependency(target=name, external=False, local_port=None, rate_limit=None, protocol=mesh.service(name).protocol)
        for name in gateway.targets
    )


def _route_entries(mesh: Mesh, gateway: Gateway, route: GatewayRoute) -> list[dict[str, Any]]:
    service = mesh.service(route.service)
    entries = []
    for composed in compose(route, service, gateway.name):
        entry = service_route(service, composed)
        entry["name"] = f"{gateway.name}/{route.name}/{service.name}/{composed.name}"
        if route.rate_limit is not None:
            limit = local_rate_limit(route.rate_limit, f"gateway_{gateway.name}_{route.name}")
            entry.setdefault("typed_per_filter_config", {})[RATE_LIMIT_FILTER] = limit
        entries.append(entry)
    return entries


def gateway_route_config(mesh: Mesh, gateway: Gateway) -> dict[str, Any]:
    """One virtual host per exact Host name the routes name, then one for any Host; each holds,
    in catalog order, every route that answers its Host, so the first match still wins whatever
    virtual host Envoy picks."""
    virtual_hosts = []
    for domain in gateway.domains:
        routes = [r for r in gateway.routes if domain in r.domains or "*" in r.domains]
        virtual_hosts.append(
            {
                "name": domain,
                "domains": [domain, f"{domain}:*"],
                "routes": [e for r in routes for e in _route_entries(mesh, gateway, r)],
                "include_request_attempt_count": True,
            }
        )
    anywhere = [r for r in gateway.routes if "*" in r.domains]
    if anywhere:
        virtual_hosts.append(
            {
                "name": "any",
                "domains": ["*"],
                "routes": [e for r in anywhere for e in _route_entries(mesh, gateway, r)],
                "include_request_attempt_count": True,
            }
        )
    return {"name": GATEWAY_ROUTES, "virtual_hosts": virtual_hosts}


def _filters(mesh: Mesh, gateway: Gateway) -> list[dict[str, Any]]:
    filters = []
    if gateway.rate_limit is not None:
        filters.append(
            {
                "name": GATEWAY_LIMIT_FILTER,
                "typed_config": local_rate_limit(gateway.rate_limit, f"gateway_{gateway.name}"),
            }
        )
    services = [mesh.service(name) for name in gateway.targets]
    if any(route.fault is not None for service in services for route in service.routes):
        filters.append(typed(FAULT_FILTER, "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"))
    if any(route.rate_limit is not None for route in gateway.routes):
        filters.append(typed(RATE_LIMIT_FILTER, _LOCAL_RATE_LIMIT, stat_prefix="gateway_route_rate_limiter"))
    filters.append(
        typed("envoy.filters.http.router", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router")
    )
    return filters


def gateway_listeners(mesh: Mesh, gateway: Gateway, instance: Instance, paths: SidecarPaths) -> list[dict[str, Any]]:
    def hcm(stat_prefix: str) -> dict[str, Any]:
        manager = http_connection_manager(
            mesh,
            instance,
            stat_prefix=stat_prefix,
            direction="gateway",
            route_config=GATEWAY_ROUTES,
            paths=paths,
            filters=_filters(mesh, gateway),
            edge=True,
        )
        tracing = manager["typed_config"].get("tracing")
        if tracing is not None:
            # The gateway starts the trace (its server span) and gives each call into the mesh a
            # client span of its own, as a caller's sidecar does.
            tracing["spawn_upstream_span"] = True
        return manager

    host = instance.host
    listeners = [
        {
            "name": GATEWAY_HTTP,
            "address": socket_address(host.address, gateway.port),
            "traffic_direction": "INBOUND",
            "filter_chains": [{"filters": [hcm(GATEWAY_HTTP)]}],
        }
    ]
    if gateway.tls_port is not None:
        secret = names.IDENTITY_SECRET if gateway.tls_cert is None else GATEWAY_TLS_SECRET
        sds_file = names.SDS_FILES[names.IDENTITY_SECRET] if gateway.tls_cert is None else GATEWAY_TLS_SDS_FILE
        listeners.append(
            {
                "name": GATEWAY_HTTPS,
                "address": socket_address(host.address, gateway.tls_port),
                "traffic_direction": "INBOUND",
                "filter_chains": [
                    {
                        "filters": [hcm(GATEWAY_HTTPS)],
                        "transport_socket": served_certificate(secret, paths.file(sds_file)),
                    }
                ],
            }
        )
    return listeners


def gateway_secrets(mesh: Mesh, gateway: Gateway, paths: SidecarPaths) -> dict[str, list[dict[str, Any]]]:
    """SDS file name -> its secret: the gateway's mesh identity and trust (mutual TLS towards the
    services), and the certificate it serves on HTTPS when the catalog gives one."""
    secrets = dict(sds_resources(paths)) if mesh.security.enabled else {}
    if gateway.tls_cert is not None and gateway.tls_key is not None:
        cert, key = PurePosixPath(gateway.tls_cert), PurePosixPath(gateway.tls_key)
        secrets[GATEWAY_TLS_SDS_FILE] = [tls_secret(GATEWAY_TLS_SECRET, cert, key)]
    return secrets


def gateway_clusters(mesh: Mesh, gateway: Gateway, paths: SidecarPaths) -> list[dict[str, Any]]:
    return dependency_clusters(mesh, gateway_dependencies(mesh, gateway), paths)


def gateway_header(mesh: Mesh, gateway: Gateway, instance: Instance) -> list[str]:
    return [
        f"meshgen gateway {gateway.name} on host {instance.host.name} (node {instance.id}), mesh {mesh.name}",
        "generated from the service catalog: edit the catalog, not this file",
    ]


def gateway_documents(mesh: Mesh, instance: Instance, paths: SidecarPaths) -> dict[str, SidecarDocument]:
    """File name -> document for one gateway instance: the files of a sidecar without an app."""
    gateway = mesh.gateway(instance.service)
    header = gateway_header(mesh, gateway, instance)
    clusters = gateway_clusters(mesh, gateway, paths)
    documents = {
        names.CDS_FILE: SidecarDocument(
            discovery_file(names.CLUSTER_TYPE, clusters),
            [*header, "clusters  " + ", ".join(c["name"] for c in clusters)],
        ),
        names.LDS_FILE: SidecarDocument(
            discovery_file(names.LISTENER_TYPE, gateway_listeners(mesh, gateway, instance, paths)),
            [
                *header,
                f"listeners http {instance.host.address}:{gateway.port}"
                + (f", https {instance.host.address}:{gateway.tls_port}" if gateway.tls_port else ""),
            ],
        ),
        names.rds_file(GATEWAY_ROUTES): SidecarDocument(
            discovery_file(names.ROUTE_CONFIG_TYPE, [gateway_route_config(mesh, gateway)]),
            [*header, "routes by Host and path to " + ", ".join(gateway.targets) + ", first match wins"],
        ),
    }
    for name, secrets in gateway_secrets(mesh, gateway, paths).items():
        documents[name] = SidecarDocument(
            discovery_file(SECRET_TYPE, secrets), [*header, f"secret {secrets[0]['name']}"]
        )
    documents[names.BOOTSTRAP_FILE] = SidecarDocument(
        bootstrap(mesh, instance, paths),
        [
            *header,
            f"admin     {instance.host.local_address}:{instance.admin_port} (loopback only)",
            f"dynamic   {names.CDS_FILE}, {names.LDS_FILE} and the route and secret files they name "
            "(watched; changes apply live)",
        ],
    )
    return {name: documents[name] for name in sorted(documents, key=file_order)}
