"""Route configurations: what the outbound listener does per dependency, and the inbound hop."""

from __future__ import annotations

from typing import Any

from meshgen.model.mesh import IDEMPOTENT_METHODS, Dependency, External, Mesh, Retries, Route, Service
from meshgen.render.envoy import names
from meshgen.render.envoy.common import envoy_timeout, fraction, header_matcher, local_rate_limit

FAULT_FILTER = "envoy.filters.http.fault"
RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit"


def retry_policy(retries: Retries) -> dict[str, Any] | None:
    """None when the policy allows a single attempt: Envoy then never retries."""
    if retries.num_retries == 0:
        return None
    policy: dict[str, Any] = {
        "retry_on": ",".join(retries.on),
        "num_retries": retries.num_retries,
    }
    if retries.per_try_timeout is not None:
        policy["per_try_timeout"] = retries.per_try_timeout.envoy()
    policy["retry_back_off"] = {
        "base_interval": retries.backoff_base.envoy(),
        "max_interval": retries.backoff_max.envoy(),
    }
    if retries.status_codes:
        policy["retriable_status_codes"] = list(retries.status_codes)
    if retries.another_host:
        policy["retry_host_predicate"] = [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ]
        policy["host_selection_retry_max_attempts"] = 5
    if retries.methods == "idempotent":
        # Retrying a POST can charge a card twice; only methods that are safe to repeat are retried.
        policy["retriable_request_headers"] = [
            {"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(IDEMPOTENT_METHODS)}}}
        ]
    return policy


def _match(route: Route) -> dict[str, Any]:
    match: dict[str, Any] = (
        {"path": route.match.path} if route.match.path is not None else {"prefix": route.match.prefix or "/"}
    )
    headers = [header_matcher(h) for h in route.match.headers]
    if route.match.methods:
        headers.append({"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(route.match.methods)}}})
    if headers:
        match["headers"] = headers
    return match


def _fault(route: Route) -> dict[str, Any]:
    assert route.fault is not None
    fault: dict[str, Any] = {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}
    if route.fault.delay is not None:
        fault["delay"] = {"fixed_delay": route.fault.delay.envoy(), "percentage": fraction(route.fault.delay_percent)}
    if route.fault.abort_status is not None:
        fault["abort"] = {"http_status": route.fault.abort_status, "percentage": fraction(route.fault.abort_percent)}
    if route.fault.headers:
        fault["headers"] = [header_matcher(h) for h in route.fault.headers]
    return fault


def service_route(service: Service, route: Route) -> dict[str, Any]:
    action: dict[str, Any] = {}
    if len(route.weights) == 1:
        action["cluster"] = names.version_cluster(service.name, route.weights[0][0])
    else:
        action["weighted_clusters"] = {
            "clusters": [
                {"name": names.version_cluster(service.name, version), "weight": weight}
                for version, weight in route.weights
            ]
        }
    action["timeout"] = envoy_timeout(route.timeout)
    policy = retry_policy(route.retries)
    if policy is not None:
        action["retry_policy"] = policy
    if route.mirror is not None:
        action["request_mirror_policies"] = [
            {
                "cluster": names.version_cluster(service.name, route.mirror.version),
                "runtime_fraction": {"default_value": fraction(route.mirror.percent)},
            }
        ]
    rendered: dict[str, Any] = {
        "name": f"{service.name}/{route.name}",
        "match": _match(route),
        "route": action,
        "decorator": {"operation": f"{service.name}/{route.name}"},
    }
    if route.fault is not None:
        rendered["typed_per_filter_config"] = {FAULT_FILTER: _fault(route)}
    return rendered


def external_route(external: External) -> dict[str, Any]:
    action: dict[str, Any] = {
        "cluster": names.external_cluster(external.name),
        "timeout": envoy_timeout(external.timeout),
        # The outside service expects its own name in Host, not the mesh alias.
        "host_rewrite_literal": external.address,
    }
    policy = retry_policy(external.retries)
    if policy is not None:
        action["retry_policy"] = policy
    return {
        "name": f"{external.name}/default",
        "match": {"prefix": "/"},
        "route": action,
        "decorator": {"operation": f"{external.name}/external"},
    }


def _virtual_host(
    caller: Service, dependency: Dependency, routes: list[dict[str, Any]], domains: list[str]
) -> dict[str, Any]:
    target = dependency.target
    host: dict[str, Any] = {
        "name": target,
        "domains": domains,
        # The demo app and verification read x-envoy-attempt-count to fail exact attempts.
        "include_request_attempt_count": True,
        "routes": routes,
    }
    if dependency.rate_limit is not None:
        host["typed_per_filter_config"] = {
            RATE_LIMIT_FILTER: local_rate_limit(dependency.rate_limit, f"outbound_{caller.name}_to_{target}")
        }
    return host


def http_dependencies(calls: tuple[Dependency, ...]) -> list[Dependency]:
    """The HTTP calls: all reach the shared outbound listener by Host (TCP ones have ports of their own)."""
    return [d for d in calls if d.is_http]


def own_listener_dependencies(calls: tuple[Dependency, ...]) -> list[Dependency]:
    """The HTTP calls with a listener of their own, for apps that dial an address, not a name."""
    return [d for d in calls if d.is_http and d.local_port is not None]


def _dependency_routes(mesh: Mesh, service: Service, dependency: Dependency) -> list[dict[str, Any]]:
    if dependency.external:
        return [external_route(mesh.external(dependency.target))]
    callee = mesh.service(dependency.target)
    return [service_route(callee, route) for route in callee.routes if route.match.applies_to(service.name)]


def _domains(mesh: Mesh, dependency: Dependency) -> list[str]:
    names_ = [dependency.target]
    if dependency.external:
        names_ += list(mesh.external(dependency.target).hosts)  # its real names, as apps write them
    return [domain for name in names_ for domain in (name, f"{name}:*")]


def outbound_route_config(mesh: Mesh, service: Service, calls: tuple[Dependency, ...]) -> dict[str, Any]:
    """Routes of what `service` calls (`calls`: one version's), each as the caller is to see it,
    chosen by Host."""
    virtual_hosts = [
        _virtual_host(service, dependency, _dependency_routes(mesh, service, dependency), _domains(mesh, dependency))
        for dependency in sorted(http_dependencies(calls), key=lambda d: d.target)
    ]
    return {"name": names.OUTBOUND_ROUTES, "virtual_hosts": virtual_hosts}


def dependency_route_config(mesh: Mesh, service: Service, dependency: Dependency) -> dict[str, Any]:
    """The same routes for a dependency's own listener, whatever Host the app sends."""
    host = _virtual_host(service, dependency, _dependency_routes(mesh, service, dependency), ["*"])
    return {"name": names.dependency_routes(dependency.target), "virtual_hosts": [host]}


# Envoy's HTTP health checker sends this User-Agent: it tells callers' probes from requests.
HEALTH_CHECKER_USER_AGENT = "Envoy/HC"
GRPC_HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"


def _health_check_route(service: Service, to_app: dict[str, Any]) -> dict[str, Any] | None:
    """Callers' probes reach the app untraced: every caller probes every instance each interval,
    and their spans would bury the requests' in the trace store."""
    check = service.health_check
    if check is None or service.protocol == "tcp":
        return None
    if check.grpc_service is not None:
        match: dict[str, Any] = {"path": GRPC_HEALTH_CHECK_PATH}
    else:
        user_agent = {"name": "user-agent", "string_match": {"exact": HEALTH_CHECKER_USER_AGENT}}
        match = {"path": check.path, "headers": [user_agent]}
    return {
        "name": f"{service.name}/health-check",
        "match": match,
        "route": to_app,
        "tracing": {"overall_sampling": {"numerator": 0}},
    }


def inbound_route_config(service: Service) -> dict[str, Any]:
    # The caller's route bounds each call; this only stops a request that outlives every
    # caller, so it is the longest timeout any caller may use.
    to_app = {"cluster": names.LOCAL_APP_CLUSTER, "timeout": envoy_timeout(service.inbound_timeout)}
    inbound = {
        "name": f"{service.name}/inbound",
        "match": {"prefix": "/"},
        "route": to_app,
        "decorator": {"operation": f"{service.name}/inbound"},
    }
    probes = _health_check_route(service, to_app)
    host: dict[str, Any] = {
        "name": service.name,
        "domains": ["*"],
        "routes": [inbound] if probes is None else [probes, inbound],
    }
    if service.rate_limit is not None:
        host["typed_per_filter_config"] = {
            RATE_LIMIT_FILTER: local_rate_limit(service.rate_limit, f"inbound_{service.name}")
        }
    return {"name": names.INBOUND_ROUTES, "virtual_hosts": [host]}


def uses_faults(mesh: Mesh, calls: tuple[Dependency, ...]) -> bool:
    return any(
        route.fault is not None
        for dependency in http_dependencies(calls)
        if not dependency.external
        for route in mesh.service(dependency.target).routes
    )


def uses_outbound_rate_limits(calls: tuple[Dependency, ...]) -> bool:
    return any(d.rate_limit is not None for d in http_dependencies(calls))
