"""What each AWS flavor does with every field of the catalog, and the lines that list what it loses.

`FIELDS[flavor]` maps every leaf field of the catalog schema, written as a path
(`services.*.circuit_breaker.max_retries`: `*` stands for a name, `[]` for a list item), to
its fate in that flavor:

- `Carried(how)`: the generated root does what the field says;
- `Lost(what)`: the flavor cannot; when a catalog uses the field, a line of LIMITATIONS.md
  (also printed on stderr) names the service, route or dependency and the value lost. "Uses"
  means a value other than the built-in default, except for the few defaults that are meshgen
  behaviour a flavor drops (its access log, idempotent-only retries, strict mutual TLS and the
  authorization derived from the catalog), which are listed as such;
- `Moot(why)`: the field has no counterpart in this flavor: where a host is, the ports of
  meshgen's own sidecar in a flavor that runs none, hints for `meshgen lint`.

tests/test_aws_fidelity.py walks the schema: a field added to the catalog fails it until it is
classified here for every flavor; each field a flavor loses must produce its line, and each field
it carries must change the generated root.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from meshgen.catalog.schema import Sidecar
from meshgen.durations import Duration
from meshgen.model.addresses import hosts_file_entries
from meshgen.model.authorization import grants
from meshgen.model.defaults import BUILTIN
from meshgen.model.mesh import (
    IDEMPOTENT_METHODS,
    CircuitBreaker,
    External,
    Fault,
    Gateway,
    HealthCheck,
    Instance,
    Mesh,
    RateLimit,
    Retries,
    Service,
    longest,
    timeout_text,
)
from meshgen.render.terraform.ecs import discovery_name
from meshgen.render.terraform.flavors import (
    app_mesh_gateway_routes,
    app_mesh_health_check,
    app_mesh_retry_events,
    app_mesh_unmapped_retry_conditions,
    primary_version,
)


@dataclass(frozen=True)
class Carried:
    how: str


@dataclass(frozen=True)
class Lost:
    what: str


@dataclass(frozen=True)
class Moot:
    why: str


Fate = Carried | Lost | Moot


def _under(prefix: str, fates: Mapping[str, Fate]) -> dict[str, Fate]:
    return {f"{prefix}.{name}": fate for name, fate in fates.items()}


def _each(prefixes: tuple[str, ...], fates: Mapping[str, Fate]) -> dict[str, Fate]:
    return {path: fate for prefix in prefixes for path, fate in _under(prefix, fates).items()}


# Where the same catalog objects appear: route policies inherit mesh defaults and the service's.
_ROUTE_RETRIES = ("mesh.defaults.retries", "services.*.retries", "services.*.routes[].retries")
_SERVICE_BREAKERS = ("mesh.defaults.circuit_breaker", "services.*.circuit_breaker")
_TIMEOUTS = ("mesh.defaults.timeout", "services.*.timeout", "services.*.routes[].timeout")
_CONNECT_TIMEOUTS = ("mesh.defaults.connect_timeout", "services.*.connect_timeout")
_RETRY_FIELDS = (
    "attempts",
    "retry_on",
    "on",
    "status_codes",
    "per_try_timeout",
    "backoff.base",
    "backoff.max",
    "methods",
    "another_host",
)
_BREAKER_FIELDS = (
    "max_connections",
    "max_pending_requests",
    "max_requests",
    "max_retries",
    "consecutive_5xx",
    "interval",
    "ejection_time",
    "max_ejection_percent",
    "max_requests_per_connection",
    "panic_threshold",
)
# Envoy's own: meshgen's Envoy config sets them on a service's clusters, not on an external's.
_CLUSTER_ONLY_BREAKER_FIELDS = ("max_requests_per_connection", "panic_threshold")
_EXTERNAL_FIELDS = ("address", "port", "protocol", "tls", "sni", "ca_file", "timeout", "connect_timeout", "hosts")
_HEADER_FIELDS = ("exact", "prefix", "regex", "present")
_HEALTH_FIELDS = (
    "path",
    "grpc_service",
    "send",
    "expect",
    "interval",
    "timeout",
    "unhealthy_threshold",
    "healthy_threshold",
)
_DEPENDENCY_FIELDS = ("service", "local_port", "address", *(f"rate_limit.{f}" for f in ("requests", "per", "burst")))
# A dependency of one version only: the same fields, each version's tasks (or virtual node) get their own.
_DEPENDENCIES = ("services.*.dependencies[]", "services.*.versions.*.dependencies[]")
_RATE_FIELDS = ("requests", "per", "burst")
_SIDECAR_FIELDS = ("inbound_port", "outbound_port", "admin_port", "stats_port", "max_downstream_connections")
_ACCESS_LOG_FIELDS = ("format", "path")

_NO_HOSTS = Moot("ECS gives every task its own address, found through Cloud Map; apps bind the task's loopback")
_PLACEMENT = Moot("ECS places the tasks; the number of instances is carried as the desired count")
_LINT_ONLY = Moot("an entry point for `meshgen lint`; nothing is deployed differently")
_LINT_IGNORES = {
    f"mesh.lint.ignore[].{name}": Moot("accepted `meshgen lint` findings; nothing is deployed differently")
    for name in ("check", "subject", "reason")
}
_LABELS = Moot("descriptive metadata; no target renders labels")
_FIRST_INSTANCE = "one task definition per version, from its first instance; instances that differ are listed"
_ENVOY = Carried("in the version's Envoy config, as in the local mesh")
_NO_SIDECAR = Moot("no meshgen sidecar: the Service Connect proxy takes traffic on the app's port")
_APP_MESH_TASKS = Moot("this flavor builds the mesh, not the tasks (one line of LIMITATIONS.md says so)")
_APP_MESH_ENVOY = Moot("App Mesh's Envoy takes traffic through the task's proxy configuration, not on catalog ports")
_CLOUDWATCH_AGENT = Carried(
    "a CloudWatch agent in every task scrapes its Envoy's stats listener and publishes inbound request counts per "
    "service and version (by response code class) to the CloudWatch namespace meshgen/<mesh>; the Prometheus address "
    "is the local mesh's, and request times are listed as lost"
)
_SC_METRICS = Lost(
    "Service Connect's own CloudWatch metrics (AWS/ECS: RequestCount, HTTPCode_Target_5XX_Count, TargetResponseTime by "
    "ECS service and discovery name) instead of meshgen's; no stats listener, no Prometheus labels"
)
_APP_MESH_METRICS = Lost(
    "this flavor builds no tasks to run a CloudWatch agent in; App Mesh's Envoy stats stay unscraped"
)


_AUTHORIZATION_FIELDS = ("callers", "clients", "outside", "methods", "paths")
_CLIENT_CERTIFICATE = ("external.*.client_certificate.cert", "external.*.client_certificate.key")
_OWN_CA = Moot(
    "not in the root: `meshgen aws certs push` issues every service's certificate from this CA where meshgen runs; "
    "the CA's key never goes to AWS"
)
_NO_TLS = Moot("no TLS in this flavor, so no identities or CA: mutual TLS is listed as lost (mesh.security.mtls)")


def _routes(fates: Mapping[str, Fate], match_headers: Fate, fault_headers: Fate) -> dict[str, Fate]:
    """Every route field: `fates` keyed relative to a route, plus the header matches of its match and fault."""
    return {
        **_under("services.*.routes[]", fates),
        **_under("services.*.routes[].match.headers.*", dict.fromkeys(_HEADER_FIELDS, match_headers)),
        **_under("services.*.routes[].fault.headers.*", dict.fromkeys(_HEADER_FIELDS, fault_headers)),
    }


_GATEWAY_FIELDS = (
    "hosts",
    "port",
    "admin_port",
    "stats_port",
    *(f"rate_limit.{f}" for f in _RATE_FIELDS),
    "tls.port",
    "tls.cert",
    "tls.key",
    *(
        f"routes[].{f}"
        for f in (
            "name",
            "domains",
            "match.prefix",
            "match.path",
            "match.methods",
            *(f"match.headers.*.{h}" for h in _HEADER_FIELDS),
            "service",
            *(f"rate_limit.{r}" for r in _RATE_FIELDS),
        )
    ),
)


def _gateways(fate: Fate) -> dict[str, Fate]:
    return _under("gateways.*", dict.fromkeys(_GATEWAY_FIELDS, fate))


_NOT_BUILT = Lost("the flavor builds no gateway: one line per gateway names everything it would do")
_LOCAL_DASHBOARD = Moot("`meshgen up` serves it on the local mesh only; nothing is deployed for it")
_NO_HOSTS_FILE = Moot("on-prem only: ECS tasks and App Mesh virtual nodes have no catalog hosts")


ECS_ENVOY: dict[str, Fate] = {
    "mesh.name": Carried("names the ECS cluster, the Cloud Map namespace and the log group"),
    **dict.fromkeys(_TIMEOUTS + _CONNECT_TIMEOUTS, _ENVOY),
    **_each((*_ROUTE_RETRIES, "external.*.retries"), dict.fromkeys(_RETRY_FIELDS, _ENVOY)),
    **_each(_SERVICE_BREAKERS, dict.fromkeys(_BREAKER_FIELDS, _ENVOY)),
    **_under("external.*.circuit_breaker", dict.fromkeys(_BREAKER_FIELDS, _ENVOY)),
    "mesh.tracing.provider": Moot("each task traces to its own sidecar chosen by --tracing (X-Ray or OpenTelemetry)"),
    "mesh.tracing.collector": Moot("each task traces to its own sidecar chosen by --tracing, on the task's loopback"),
    "mesh.tracing.sample_percent": Carried("Envoy's sampling; with --tracing none all tracing is listed as lost"),
    "mesh.metrics.prometheus": _CLOUDWATCH_AGENT,
    "mesh.dashboard": _LOCAL_DASHBOARD,
    "mesh.access_log.format": _ENVOY,
    "mesh.access_log.path": Carried("inside the Envoy container; /dev/stdout reaches CloudWatch Logs"),
    **_under("mesh.sidecar", dict.fromkeys(_SIDECAR_FIELDS, _ENVOY)),
    "mesh.sidecar.stats_port": Carried("the Envoy config's stats listener, and the CloudWatch agent's scrape target"),
    "hosts.*.address": _NO_HOSTS,
    "hosts.*.local_address": _NO_HOSTS,
    "hosts.*.hosts_file": Lost("ECS tasks get no /etc/hosts entries (Fargate has no extraHosts)"),
    **_LINT_IGNORES,
    "services.*.port": Carried("the app container's port and the callers' Envoy routes"),
    "services.*.protocol": _ENVOY,
    "services.*.edge": _LINT_ONLY,
    "services.*.versions.*.image": Carried("the app container's image"),
    "services.*.versions.*.labels": _LABELS,
    "services.*.versions.*.instances[].host": _PLACEMENT,
    **_under(
        "services.*.versions.*.instances[]",
        {
            "port": Carried(_FIRST_INSTANCE),
            "inbound_port": Carried(_FIRST_INSTANCE),
            "outbound_port": Carried(_FIRST_INSTANCE),
            "admin_port": Carried(_FIRST_INSTANCE),
            "stats_port": Carried(_FIRST_INSTANCE),
            "env": Carried(_FIRST_INSTANCE),
            "command": Lost("ECS runs the image's own command"),
            "workdir": Lost("the command's working directory: ECS runs the image's own command"),
        },
    ),
    **_each(_DEPENDENCIES, dict.fromkeys(_DEPENDENCY_FIELDS, _ENVOY)),
    **_routes(
        dict.fromkeys(
            (
                "name",
                "match.prefix",
                "match.path",
                "match.methods",
                "match.callers",
                "to",
                "fault.delay.duration",
                "fault.delay.percent",
                "fault.abort.status",
                "fault.abort.percent",
                "mirror.to",
                "mirror.percent",
            ),
            _ENVOY,
        ),
        _ENVOY,
        _ENVOY,
    ),
    **_under("services.*.health_check", dict.fromkeys(_HEALTH_FIELDS, _ENVOY)),
    **_under("services.*.rate_limit", dict.fromkeys(_RATE_FIELDS, _ENVOY)),
    **_under("external.*", dict.fromkeys(_EXTERNAL_FIELDS, _ENVOY)),
    "mesh.security.mtls": Carried(
        "the Envoy configs' TLS and authorization; with mtls on, one identity secret per service, read by its "
        "tasks at start"
    ),
    "mesh.security.trust_domain": Carried("the SPIFFE IDs in the Envoy configs and in the certificates pushed"),
    "mesh.security.ca.cert": _OWN_CA,
    "mesh.security.ca.key": _OWN_CA,
    "mesh.security.ca_lifetime": _OWN_CA,
    "mesh.security.leaf_lifetime": Lost(
        "renewal at half the lifetime: a task reads its certificate once, at start; `meshgen aws certs rotate` "
        "renews by replacing the tasks"
    ),
    **_under("services.*.authorization[]", dict.fromkeys(_AUTHORIZATION_FIELDS, _ENVOY)),
    **dict.fromkeys(_CLIENT_CERTIFICATE, Lost("the files are where meshgen runs; nothing puts them into a task")),
    **_gateways(_NOT_BUILT),
}

_SC_RETRIES = Lost("Service Connect retries by its own fixed policy")
_SC_BREAKER = Lost("Service Connect's connection limits and outlier detection are fixed")
_SC_EXTERNAL = Lost("calls to externals bypass the Service Connect proxy")

SERVICE_CONNECT: dict[str, Fate] = {
    "mesh.name": Carried("names the ECS cluster, the Cloud Map namespace and the log group"),
    **dict.fromkeys(_TIMEOUTS, Lost("one per-request timeout per service, in whole seconds")),
    **dict.fromkeys(_CONNECT_TIMEOUTS, Lost("Service Connect has no connect timeout setting")),
    **_each(_ROUTE_RETRIES, dict.fromkeys(_RETRY_FIELDS, _SC_RETRIES)),
    **_each(_SERVICE_BREAKERS, dict.fromkeys(_BREAKER_FIELDS, _SC_BREAKER)),
    **_under("mesh.tracing", dict.fromkeys(("provider", "collector", "sample_percent"), Lost("no proxy spans"))),
    **_under("mesh.access_log", dict.fromkeys(_ACCESS_LOG_FIELDS, Lost("Service Connect's own access logs"))),
    "mesh.sidecar.inbound_port": _NO_SIDECAR,
    "mesh.sidecar.outbound_port": _NO_SIDECAR,
    "mesh.sidecar.admin_port": _NO_SIDECAR,
    "mesh.sidecar.stats_port": _NO_SIDECAR,
    "mesh.metrics.prometheus": _SC_METRICS,
    "mesh.dashboard": _LOCAL_DASHBOARD,
    "mesh.sidecar.max_downstream_connections": Lost("the proxy's connection limit is not configurable"),
    "hosts.*.address": _NO_HOSTS,
    "hosts.*.local_address": _NO_HOSTS,
    "hosts.*.hosts_file": Moot(
        "Service Connect answers every service by its catalog name and port in each task: no hosts file is needed"
    ),
    **_LINT_IGNORES,
    "services.*.port": Carried("the client alias port callers use"),
    "services.*.protocol": Carried("the port mapping's appProtocol"),
    "services.*.edge": _LINT_ONLY,
    "services.*.versions.*.image": Carried("the app container's image"),
    "services.*.versions.*.labels": _LABELS,
    "services.*.versions.*.instances[].host": _PLACEMENT,
    **_under(
        "services.*.versions.*.instances[]",
        {
            "port": Carried(_FIRST_INSTANCE),
            "inbound_port": _NO_SIDECAR,
            "outbound_port": _NO_SIDECAR,
            "admin_port": _NO_SIDECAR,
            "stats_port": _NO_SIDECAR,
            "env": Carried(_FIRST_INSTANCE),
            "command": Lost("ECS runs the image's own command"),
            "workdir": Lost("the command's working directory: ECS runs the image's own command"),
        },
    ),
    **_each(
        _DEPENDENCIES,
        {
            "service": Lost("every task may call every service of the namespace"),
            "local_port": Lost("apps connect to the callee's name and port"),
            "address": Lost("apps connect to the callee's name and port"),
            **{f"rate_limit.{f}": Lost("no caller-side rate limit") for f in _RATE_FIELDS},
        },
    ),
    **_routes(
        {
            "name": Moot("Service Connect has no routes; each route's losses are listed by its name"),
            "match.prefix": Lost("no request matching"),
            "match.path": Lost("no request matching"),
            "match.methods": Lost("no request matching"),
            "match.callers": Lost("no request matching"),
            "to": Lost("no traffic split: calls go to the primary version"),
            "fault.delay.duration": Lost("no fault injection"),
            "fault.delay.percent": Lost("no fault injection"),
            "fault.abort.status": Lost("no fault injection"),
            "fault.abort.percent": Lost("no fault injection"),
            "mirror.to": Lost("no traffic mirroring"),
            "mirror.percent": Lost("no traffic mirroring"),
        },
        Lost("no request matching"),
        Lost("no fault injection"),
    ),
    **_under("services.*.health_check", dict.fromkeys(_HEALTH_FIELDS, Lost("no active health checks by callers"))),
    **_under("services.*.rate_limit", dict.fromkeys(_RATE_FIELDS, Lost("no rate limit"))),
    **_under("external.*", dict.fromkeys(_EXTERNAL_FIELDS, _SC_EXTERNAL)),
    **_under("external.*.retries", dict.fromkeys(_RETRY_FIELDS, _SC_EXTERNAL)),
    **_under("external.*.circuit_breaker", dict.fromkeys(_BREAKER_FIELDS, _SC_EXTERNAL)),
    **dict.fromkeys(_CLIENT_CERTIFICATE, _SC_EXTERNAL),
    "mesh.security.mtls": Lost(
        "one-way TLS between Service Connect proxies (certificates from AWS Private CA); no permissive mode"
    ),
    "mesh.security.trust_domain": Lost("no SPIFFE identities: callers present no certificate"),
    "mesh.security.ca.cert": Lost("AWS Private CA issues the certificates and takes no key from outside"),
    "mesh.security.ca.key": Lost("AWS Private CA issues the certificates and takes no key from outside"),
    "mesh.security.leaf_lifetime": Lost("ECS issues and rotates Service Connect's certificates itself"),
    "mesh.security.ca_lifetime": Carried("the validity of the mesh's Private CA root certificate"),
    **_under(
        "services.*.authorization[]",
        dict.fromkeys(_AUTHORIZATION_FIELDS, Lost("one-way TLS carries no caller identity: nothing is enforced")),
    ),
    **_gateways(_NOT_BUILT),
}

_APP_MESH_EXTERNAL = Lost("externals are not modelled; egress is open (ALLOW_ALL)")
_OUTLIER = Carried("the virtual node's outlier detection (http, http2, grpc; meshgen ejects no tcp hosts either)")

APP_MESH: dict[str, Fate] = {
    "mesh.name": Carried("the App Mesh mesh's name"),
    **dict.fromkeys(_TIMEOUTS, Carried("the route's per-request timeout (http, http2, grpc)")),
    **dict.fromkeys(_CONNECT_TIMEOUTS, Lost("App Mesh has no connect timeout setting")),
    **_each(
        _ROUTE_RETRIES,
        {
            "attempts": Carried("the route's retry policy: max_retries = attempts - 1"),
            "retry_on": Lost("conditions App Mesh has no retry event for"),
            "on": Lost("conditions App Mesh has no retry event for"),
            "status_codes": Lost("App Mesh has no retriable status codes"),
            "per_try_timeout": Carried("the retry policy's per_retry_timeout"),
            "backoff.base": Lost("App Mesh's Envoy backs off 25ms to 250ms"),
            "backoff.max": Lost("App Mesh's Envoy backs off 25ms to 250ms"),
            "methods": Lost("App Mesh retries every method"),
            "another_host": Lost("App Mesh has no same-instance retries"),
        },
    ),
    **_each(
        _SERVICE_BREAKERS,
        {
            "max_connections": Lost("carried for http and tcp virtual nodes; http2 and grpc nodes limit requests only"),
            "max_pending_requests": Lost("carried for http virtual nodes only"),
            "max_requests": Lost("carried for http2 and grpc virtual nodes only"),
            "max_retries": Lost("App Mesh's connection pools have no retry limit"),
            "max_requests_per_connection": Lost("App Mesh's connection pools have no requests-per-connection limit"),
            "panic_threshold": Lost("App Mesh has no panic threshold setting"),
            "consecutive_5xx": _OUTLIER,
            "interval": _OUTLIER,
            "ejection_time": _OUTLIER,
            "max_ejection_percent": _OUTLIER,
        },
    ),
    "mesh.tracing.provider": Moot("App Mesh's Envoy traces to X-Ray (--tracing xray); --tracing none is listed"),
    "mesh.tracing.collector": Moot("App Mesh's Envoy traces to the X-Ray daemon of its task"),
    "mesh.tracing.sample_percent": Lost("App Mesh's Envoy samples a fixed 5%"),
    **_under("mesh.access_log", dict.fromkeys(_ACCESS_LOG_FIELDS, Lost("no access log is configured"))),
    "mesh.sidecar.inbound_port": _APP_MESH_ENVOY,
    "mesh.sidecar.outbound_port": _APP_MESH_ENVOY,
    "mesh.sidecar.admin_port": _APP_MESH_ENVOY,
    "mesh.sidecar.stats_port": _APP_MESH_ENVOY,
    "mesh.metrics.prometheus": _APP_MESH_METRICS,
    "mesh.dashboard": _LOCAL_DASHBOARD,
    "mesh.sidecar.max_downstream_connections": Lost("App Mesh has no connection limit per Envoy"),
    "hosts.*.address": Moot("virtual nodes are found by their Cloud Map names"),
    "hosts.*.local_address": Moot("virtual nodes are found by their Cloud Map names"),
    "hosts.*.hosts_file": _APP_MESH_TASKS,
    **_LINT_IGNORES,
    "services.*.port": Carried("the virtual router's and virtual service's port"),
    "services.*.protocol": Carried("the listeners' and routes' protocol"),
    "services.*.edge": _LINT_ONLY,
    "services.*.versions.*.image": _APP_MESH_TASKS,
    "services.*.versions.*.labels": _LABELS,
    "services.*.versions.*.instances[].host": _APP_MESH_TASKS,
    **_under(
        "services.*.versions.*.instances[]",
        {
            "port": Carried(
                "the virtual node's listener port, from the version's first instance; others that differ are listed"
            ),
            "inbound_port": _APP_MESH_ENVOY,
            "outbound_port": _APP_MESH_ENVOY,
            "admin_port": _APP_MESH_ENVOY,
            "stats_port": _APP_MESH_ENVOY,
            "env": _APP_MESH_TASKS,
            "command": _APP_MESH_TASKS,
            "workdir": _APP_MESH_TASKS,
        },
    ),
    **_each(
        _DEPENDENCIES,
        {
            "service": Carried("the virtual node's backends (a version's own: that version's node only)"),
            "local_port": Lost("apps connect to the virtual service's name and port"),
            "address": Lost("apps connect to the virtual service's name and port"),
            **{f"rate_limit.{f}": Lost("no caller-side rate limit") for f in _RATE_FIELDS},
        },
    ),
    **_routes(
        {
            "name": Carried("the route's name"),
            "match.prefix": Carried("the route's prefix match"),
            "match.path": Carried("the route's exact path match"),
            "match.methods": Carried("the route's method match; only the first of several is, the rest are listed"),
            "match.callers": Lost("a virtual router's routes apply to every caller"),
            "to": Carried("the route's weighted targets"),
            "fault.delay.duration": Lost("no fault injection"),
            "fault.delay.percent": Lost("no fault injection"),
            "fault.abort.status": Lost("no fault injection"),
            "fault.abort.percent": Lost("no fault injection"),
            "mirror.to": Lost("no traffic mirroring"),
            "mirror.percent": Lost("no traffic mirroring"),
        },
        Carried("the route's header matches (gRPC metadata)"),
        Lost("no fault injection"),
    ),
    **_under(
        "services.*.health_check",
        {
            "path": Carried("the virtual node's health check"),
            "grpc_service": Lost("App Mesh asks for the server's overall health"),
            "send": Lost("App Mesh's tcp health check only opens a connection"),
            "expect": Lost("App Mesh's tcp health check only opens a connection"),
            **dict.fromkeys(
                ("interval", "timeout", "unhealthy_threshold", "healthy_threshold"),
                Carried("the virtual node's health check; values outside App Mesh's ranges move and are listed"),
            ),
        },
    ),
    **_under("services.*.rate_limit", dict.fromkeys(_RATE_FIELDS, Lost("no rate limit"))),
    **_under("external.*", dict.fromkeys(_EXTERNAL_FIELDS, _APP_MESH_EXTERNAL)),
    **_under("external.*.retries", dict.fromkeys(_RETRY_FIELDS, _APP_MESH_EXTERNAL)),
    **_under("external.*.circuit_breaker", dict.fromkeys(_BREAKER_FIELDS, _APP_MESH_EXTERNAL)),
    **dict.fromkeys(_CLIENT_CERTIFICATE, _APP_MESH_EXTERNAL),
    "mesh.security.mtls": Lost(
        "App Mesh's Envoys take certificates from files or an SDS agent in each task, and this flavor builds no "
        "tasks: plaintext"
    ),
    **dict.fromkeys(
        ("mesh.security.trust_domain", "mesh.security.ca.cert", "mesh.security.ca.key"),
        _NO_TLS,
    ),
    "mesh.security.leaf_lifetime": _NO_TLS,
    "mesh.security.ca_lifetime": _NO_TLS,
    **_under(
        "services.*.authorization[]",
        dict.fromkeys(_AUTHORIZATION_FIELDS, Lost("no caller identity without mutual TLS: nothing is enforced")),
    ),
    **_under(
        "gateways.*",
        {
            "hosts": Moot("this flavor builds the virtual gateway, not its tasks (one line per gateway says so)"),
            "port": Carried("the virtual gateway's http listener port"),
            "admin_port": _APP_MESH_ENVOY,
            "stats_port": _APP_MESH_ENVOY,
            **{f"rate_limit.{f}": Lost("App Mesh has no rate limit") for f in _RATE_FIELDS},
            **dict.fromkeys(
                ("tls.port", "tls.cert", "tls.key"),
                Lost("a virtual gateway reads its certificate inside its tasks, which this flavor does not build"),
            ),
            "routes[].name": Carried("the gateway route's name (-1, -2... per Host name when it has several)"),
            "routes[].domains": Carried("the gateway route's exact hostname match, one gateway route per name"),
            "routes[].match.prefix": Carried("the gateway route's prefix match"),
            "routes[].match.path": Carried("the gateway route's exact path match"),
            "routes[].match.methods": Lost("App Mesh gateway routes match no method"),
            **{f"routes[].match.headers.*.{h}": Carried("the gateway route's header matches") for h in _HEADER_FIELDS},
            "routes[].service": Carried(
                "the gateway route's target virtual service, whose router then applies (http services; routes to "
                "http2 and grpc services are listed)"
            ),
            **{f"routes[].rate_limit.{f}": Lost("App Mesh has no rate limit") for f in _RATE_FIELDS},
        },
    ),
}

FIELDS: dict[str, dict[str, Fate]] = {
    "ecs-envoy": ECS_ENVOY,
    "service-connect": SERVICE_CONNECT,
    "app-mesh": APP_MESH,
}

# -- built-in defaults: a line is written only for what a catalog changed ---------------------

_DEFAULT_BACKOFF = tuple(Duration.parse(BUILTIN["retries"]["backoff"][k]) for k in ("base", "max"))
_DEFAULT_CONNECT_TIMEOUT = Duration.parse(BUILTIN["connect_timeout"])
_BUILTIN_BREAKER: dict[str, int | str] = BUILTIN["circuit_breaker"]
_DEFAULT_BREAKER = CircuitBreaker(
    **{k: v for k, v in _BUILTIN_BREAKER.items() if isinstance(v, int)},
    interval=Duration.parse(str(_BUILTIN_BREAKER["interval"])),
    ejection_time=Duration.parse(str(_BUILTIN_BREAKER["ejection_time"])),
)
_DEFAULT_MAX_DOWNSTREAM = Sidecar().max_downstream_connections
# App Mesh's Envoy samples a fixed share of requests for X-Ray (AWS X-Ray developer guide, App Mesh).
_APP_MESH_SAMPLE_PERCENT = 5.0


def _percent(value: float) -> str:
    return f"{value:g}%"


def _retries(retries: Retries) -> str:
    text = f"{retries.attempts} attempts on {', '.join(retries.on)}"
    text += ", every method" if retries.methods == "all" else ", idempotent methods only"
    if retries.status_codes:
        text += ", status codes " + ", ".join(str(code) for code in retries.status_codes)
    if retries.per_try_timeout is not None:
        text += f", {retries.per_try_timeout} per try"
    if (retries.backoff_base, retries.backoff_max) != _DEFAULT_BACKOFF:
        text += f", back-off {retries.backoff_base} to {retries.backoff_max}"
    if not retries.another_host:
        text += ", retrying on the same instance"
    return text


def _breaker_changes(breaker: CircuitBreaker, fields: tuple[str, ...] = _BREAKER_FIELDS) -> list[str]:
    changes = []
    for name in fields:
        value = getattr(breaker, name)
        if value != getattr(_DEFAULT_BREAKER, name):
            changes.append(f"{name} {_percent(value) if name == 'panic_threshold' else value}")
    return changes


def _rate(limit: RateLimit) -> str:
    return f"{limit.requests} requests per {limit.per}, burst {limit.burst}"


def _health(check: HealthCheck, protocol: str) -> str:
    if protocol == "tcp":
        probe = f"send {check.send!r}, expect {check.expect!r}" if check.send is not None else "a connection"
    elif check.path is not None:
        probe = f"path {check.path}"
    else:
        probe = f"grpc_service {check.grpc_service or '(server)'}"
    return (
        f"{probe} every {check.interval}, timeout {check.timeout}, "
        f"unhealthy after {check.unhealthy_threshold}, healthy after {check.healthy_threshold}"
    )


def _fault(fault: Fault) -> str:
    parts = []
    if fault.delay is not None:
        parts.append(f"delay {fault.delay} to {_percent(fault.delay_percent)}")
    if fault.abort_status is not None:
        parts.append(f"abort {fault.abort_status} to {_percent(fault.abort_percent)}")
    if fault.headers:
        parts.append("only with header " + ", ".join(h.describe() for h in fault.headers))
    return ", ".join(parts)


def _external(external: External) -> str:
    """Where an external service is, and every policy the catalog gives calls to it."""
    settings = []
    if external.hosts:
        settings.append(f"its other names {', '.join(external.hosts)} routed to it (each goes where DNS says)")
    if external.tls:
        settings.append(f"TLS origination (SNI {external.sni}, CA {external.ca_file})")
    if external.client_cert:
        settings.append(f"client certificate {external.client_cert} (key {external.client_key})")
    if external.is_http:
        settings.append(f"timeout {external.timeout}")
    settings.append(f"connect_timeout {external.connect_timeout}")
    if external.is_http and external.retries.attempts > 1:
        settings.append(f"retries ({_retries(external.retries)})")
    changes = _breaker_changes(external.circuit_breaker)
    if changes:
        settings.append(f"circuit breaker ({', '.join(changes)})")
    where = f"{external.address}:{external.port}" + ("" if external.is_http else " (tcp)")
    return f"{where} directly, without {', '.join(settings)}"


def _tracing(mesh: Mesh) -> str:
    assert mesh.tracing is not None
    tracing = mesh.tracing
    return (
        f"{tracing.provider} tracing to {tracing.collector_address}:{tracing.collector_port} "
        f"({_percent(tracing.sample_percent)} sampled)"
    )


# -- per flavor ---------------------------------------------------------------------------------

# The instance fields one ECS task definition (or one App Mesh virtual node) takes from the first
# instance of a version, by flavor.
_PER_VERSION: dict[str, dict[str, Callable[[Instance], object]]] = {
    "ecs-envoy": {
        "port": lambda i: i.app_port,
        "inbound_port": lambda i: i.inbound_port,
        "outbound_port": lambda i: i.outbound_port,
        "admin_port": lambda i: i.admin_port,
        "stats_port": lambda i: i.stats_port,
        "env": lambda i: dict(i.env),
    },
    "service-connect": {"port": lambda i: i.app_port, "env": lambda i: dict(i.env)},
    "app-mesh": {"port": lambda i: i.app_port},
}


def _version_losses(mesh: Mesh, flavor: str) -> list[str]:
    """What one task definition (or virtual node) per version cannot say of its instances."""
    lost = []
    for service in mesh.services:
        for version in service.versions:
            first = version.instances[0]
            for field, value in _PER_VERSION[flavor].items():
                for other in version.instances[1:]:
                    if value(other) != value(first):
                        lost.append(
                            f"{service.name} {version.name}: one {field} for the whole version, the first "
                            f"instance's ({value(first)}); {other.id} has {value(other)}"
                        )
            if flavor == "app-mesh":
                continue
            for instance in version.instances:
                if instance.command is not None:
                    image = version.image or "--default-image"
                    where = f" (in {instance.workdir})" if instance.workdir else ""
                    lost.append(
                        f"{service.name} {version.name}: command `{' '.join(instance.command)}`{where} of "
                        f"{instance.id} is not run; ECS runs the image's own command ({image})"
                    )
    return lost


def _tracing_off(mesh: Mesh, tracing: str, supported: tuple[str, ...]) -> list[str]:
    if mesh.tracing is None or tracing in supported:
        return []
    return [f"tracing: off (--tracing {tracing}); the catalog's {_tracing(mesh)} is not rendered"]


def _admitted(mesh: Mesh, service: Service) -> str:
    """Whom the catalog admits to `service` (derived, or narrowed by its rules), as a line says it."""
    found = grants(mesh, service)
    if not found:
        return "the catalog admits no caller"
    parts = []
    for grant in found:
        who = "callers from outside the mesh" if grant.principal is None else grant.caller
        parts.append(who if grant.unrestricted else f"{who} ({grant.describe()})")
    return f"the catalog admits only {', '.join(parts)}"


def _unauthorized(mesh: Mesh, why: str) -> list[str]:
    """One line per service: its callers are not checked (with mutual TLS on, meshgen's would be)."""
    if not mesh.security.enabled:
        return []
    return [f"{s.name}: authorization not enforced: {why}; {_admitted(mesh, s)}" for s in mesh.services]


def _ecs_renewal(mesh: Mesh) -> list[str]:
    security = mesh.security
    if not security.enabled:
        return []
    half = Duration(security.leaf_lifetime.ms // 2)
    return [
        f"certificates: valid {security.leaf_lifetime} (leaf_lifetime) and read by a task once, at start; nothing "
        f"renews a running task's: run `meshgen aws certs rotate` at least every {half} (e.g. from a scheduler), "
        "which issues new ones and replaces every task, or tasks are refused by the mesh once theirs expired"
    ]


def _client_certificates(mesh: Mesh) -> list[str]:
    return [
        f"external {e.name}: no client certificate {e.client_cert} (key {e.client_key}): the files are where meshgen "
        f"runs and nothing puts them into a task; calls to {e.address}:{e.port} go without one"
        for e in mesh.externals
        if e.client_cert
    ]


def _gateway(gateway: Gateway) -> str:
    """Everything a gateway does, as a line that lists it lost says it."""
    parts = [f"HTTP on {gateway.port}"]
    if gateway.tls_port is not None:
        served = f"{gateway.tls_cert} (key {gateway.tls_key})" if gateway.tls_cert else "a certificate of the mesh CA"
        parts.append(f"HTTPS on {gateway.tls_port} serving {served}")
    hosts = ", ".join(i.host.name for i in gateway.instances)
    first = gateway.instances[0]
    parts.append(f"on hosts {hosts} (admin {first.admin_port}, stats {first.stats_port})")
    if gateway.rate_limit is not None:
        parts.append(f"rate limit {_rate(gateway.rate_limit)}")
    for route in gateway.routes:
        limit = f" (rate limit {_rate(route.rate_limit)})" if route.rate_limit is not None else ""
        parts.append(
            f"route {route.name}: Host {','.join(route.domains)} {route.match.describe()} -> {route.service}{limit}"
        )
    return "; ".join(parts)


def _gateways_not_built(mesh: Mesh, why: str) -> list[str]:
    return [
        f"gateway {g.name}: not built ({why}); nothing takes calls from outside for it: {_gateway(g)}"
        for g in mesh.gateways
    ]


def _hosts_files(mesh: Mesh) -> list[str]:
    lost = []
    for host in mesh.hosts:
        if not host.hosts_file:
            continue
        entries = hosts_file_entries(mesh, host)
        names = "; ".join(f"{address} {' '.join(names)}" for address, names in entries.items()) or "none today"
        lost.append(
            f"host {host.name}: hosts_file not carried: ECS tasks get no /etc/hosts entries ({names}); apps reach "
            "a dependency's own address by the <NAME>_SERVICE_HOST of their environment, not by its name"
        )
    return lost


def _prometheus(mesh: Mesh) -> str:
    assert mesh.metrics is not None
    return f"{mesh.metrics.prometheus_address}:{mesh.metrics.prometheus_port}"


def _ecs_metrics(mesh: Mesh) -> list[str]:
    if mesh.metrics is None:
        return []
    return [
        f"metrics: a CloudWatch agent in each task publishes inbound request counts per service and version, by "
        f"response code class (5xx errors: envoy_response_code_class 5), to the namespace meshgen/{mesh.name}, not to "
        f"the Prometheus at {_prometheus(mesh)}; request times (p50, p99) are lost: Envoy serves them as "
        "histograms, which the agent drops; so are per-edge and per-instance series and every other Envoy stat"
    ]


def ecs_envoy_limitations(mesh: Mesh, tracing: str) -> list[str]:
    """Envoy carries every policy; what is lost is what one ECS task shape per version cannot say,
    the renewal of certificates inside a running task, and what CloudWatch does not take of the metrics."""
    return (
        _version_losses(mesh, "ecs-envoy")
        + _tracing_off(mesh, tracing, ("xray", "otel"))
        + _ecs_renewal(mesh)
        + _client_certificates(mesh)
        + _ecs_metrics(mesh)
        + _hosts_files(mesh)
        + _gateways_not_built(mesh, "ecs-envoy builds no gateway services yet")
    )


def _service_connect_tls(mesh: Mesh) -> list[str]:
    security = mesh.security
    if not security.enabled:
        return []
    lines = [
        f"mutual TLS {security.mtls}: one-way TLS between Service Connect proxies instead, with certificates AWS "
        f"Private CA issues and ECS rotates (valid at most 7 days in short-lived mode), not X.509-SVIDs for "
        f"spiffe://{security.trust_domain}/service/<name> valid {security.leaf_lifetime}: callers present no "
        "certificate" + ("; no permissive mode: TLS is on for every service" if security.mtls == "permissive" else "")
    ]
    if security.ca_cert:
        lines.append(
            f"CA {security.ca_cert}: not used: AWS Private CA issues Service Connect's certificates and takes no key "
            "from outside; to chain to your CA, have it sign a subordinate Private CA and pass that as private_ca_arn"
        )
    return lines + _unauthorized(
        mesh, "one-way TLS carries no caller identity, so every task of the namespace may call it"
    )


def _split(service: Service) -> list[str]:
    name = service.name
    primary = primary_version(service)
    others = [v.name for v in service.versions if v.name != primary]
    if not others:
        return []
    names = ", ".join(discovery_name(name, v) for v in others)
    dark = (
        f"version {others[0]} gets no traffic through the name `{name}` "
        f"(it is reachable only by its own discovery name {names})"
        if len(others) == 1
        else f"versions {', '.join(others)} get no traffic through the name `{name}` "
        f"(each is reachable only by its own discovery name: {names})"
    )
    return [f"{name}: no traffic split: every call to `{name}` goes to version {primary}; {dark}"]


def service_connect_limitations(mesh: Mesh) -> list[str]:
    """Per catalog feature: what ECS Service Connect will not do."""
    lost = []
    for service in mesh.services:
        name = service.name
        lost += _split(service)
        for route in service.routes:
            subject = f"{name}/{route.name}"
            if len(route.weights) > 1:
                lost.append(
                    f"{subject}: no weighted split ({route.describe_weights()}); every call goes to version "
                    f"{primary_version(service)}"
                )
            if not route.match.catch_all:
                lost.append(f"{subject}: no request matching ({route.match.describe()}); the route is ignored")
            # A TCP connection is never retried, in any flavor: its inherited retry policy is moot.
            if service.is_http and route.retries.attempts > 1:
                lost.append(f"{subject}: retries are Service Connect's fixed policy, not {_retries(route.retries)}")
            elif service.is_http and route.retries.per_try_timeout is not None:
                lost.append(f"{subject}: no per-try timeout ({route.retries.per_try_timeout})")
            if route.fault is not None:
                lost.append(f"{subject}: no fault injection ({_fault(route.fault)})")
            if route.mirror is not None:
                lost.append(
                    f"{subject}: no traffic mirroring ({_percent(route.mirror.percent)} to {route.mirror.version})"
                )
        timeouts = {r.timeout for r in service.routes}
        slowest = longest(timeouts)
        if service.is_http and slowest is not None and (len(timeouts) > 1 or any(t and t.ms % 1000 for t in timeouts)):
            rounded = math.ceil(slowest.seconds)
            written = ", ".join(f"{r.name} {timeout_text(r.timeout)}" for r in service.routes)
            lost.append(f"{name}: one request timeout per service in whole seconds: {rounded}s, not {written}")
        if service.connect_timeout != _DEFAULT_CONNECT_TIMEOUT:
            lost.append(f"{name}: no connect_timeout {service.connect_timeout}; Service Connect's own applies")
        if service.rate_limit is not None:
            lost.append(f"{name}: no rate limit ({_rate(service.rate_limit)})")
        if service.health_check is not None:
            lost.append(
                f"{name}: no active health checks by callers ({_health(service.health_check, service.protocol)}); "
                "ECS task health checks only"
            )
        changes = _breaker_changes(service.circuit_breaker)
        if changes:
            lost.append(
                f"{name}: circuit breaker {', '.join(changes)} not carried: Service Connect's connection limits "
                "and outlier detection are fixed"
            )
        if service.dependencies:
            targets = ", ".join(d.target for d in service.dependencies)
            lost.append(
                f"{name}: calls are not limited to its dependencies ({targets}); every task may call every "
                "service of the namespace"
            )
        for dependency in service.dependencies:
            arrow = f"{name} -> {dependency.target}"
            if dependency.rate_limit is not None:
                lost.append(f"{arrow}: no caller-side rate limit ({_rate(dependency.rate_limit)})")
            if dependency.external:
                lost.append(
                    f"{arrow}: external calls bypass the proxy; the app reaches "
                    f"{_external(mesh.external(dependency.target))}"
                )
            elif dependency.local_port not in (None, mesh.service(dependency.target).port):
                port = mesh.service(dependency.target).port
                lost.append(
                    f"{arrow}: no local port {dependency.local_port}; the app connects to "
                    f"`{dependency.target}:{port}` (Service Connect's alias)"
                )
            if dependency.local_address is not None:
                lost.append(
                    f"{arrow}: no listener of its own on {dependency.local_address}; the app connects to "
                    f"`{dependency.target}` by name"
                )
    lost += _version_losses(mesh, "service-connect")
    if mesh.max_downstream_connections != _DEFAULT_MAX_DOWNSTREAM:
        lost.append(f"sidecars: no limit of {mesh.max_downstream_connections} downstream connections per proxy")
    if mesh.tracing is not None:
        lost.append(
            f"tracing: Service Connect proxies emit no spans; the catalog's {_tracing(mesh)} is lost, "
            "only the apps' own tracing remains"
        )
    log = mesh.access_log
    lost.append(f"access logs: Service Connect's own format, not meshgen's {log.format} log to {log.path}")
    if mesh.metrics is not None:
        lost.append(
            f"metrics: no stats listener and no Prometheus metrics (mesh.metrics {_prometheus(mesh)}); Service "
            "Connect publishes its own CloudWatch metrics in AWS/ECS by ECS service (<service>-<version>) and "
            "discovery name: RequestCount for requests/s, HTTPCode_Target_5XX_Count for errors, TargetResponseTime "
            "for request times; the labels mesh, version and instance, per-instance series and Envoy's other stats "
            "are lost"
        )
    return (
        lost
        + _service_connect_tls(mesh)
        + _gateways_not_built(mesh, "Service Connect has no gateway of its own, and this flavor builds none")
    )


# Connection-pool limits App Mesh has per listener protocol; the others are listed when set.
_APP_MESH_POOLS = {
    "http": ("max_connections", "max_pending_requests"),
    "http2": ("max_requests",),
    "grpc": ("max_requests",),
    "tcp": ("max_connections",),
}
_POOL_FIELDS = ("max_connections", "max_pending_requests", "max_requests", "max_retries")


def _app_mesh_route_losses(service: Service) -> list[str]:
    lost = []
    for route in service.routes:
        subject = f"{service.name}/{route.name}"
        methods = route.match.methods
        if service.protocol == "grpc" and methods and "POST" not in methods:
            lost.append(
                f"{subject}: no method match on a grpc route ({', '.join(methods)}); every gRPC call is a POST "
                "and App Mesh matches them all"
            )
        elif len(methods) > 1:
            lost.append(f"{subject}: one method per route; only {methods[0]} is matched")
        retries = route.retries
        if service.is_http and retries.attempts > 1:
            unmapped = app_mesh_unmapped_retry_conditions(service, route)
            if not any(app_mesh_retry_events(service, route).values()):
                lost.append(f"{subject}: no App Mesh retry event matches {', '.join(retries.on)}; no retries")
            elif unmapped:
                lost.append(f"{subject}: App Mesh has no retry event for {', '.join(unmapped)}; those are not retried")
            if retries.methods == "idempotent":
                idempotent = ", ".join(IDEMPOTENT_METHODS)
                lost.append(f"{subject}: App Mesh retries every method, not only the idempotent {idempotent}")
            if retries.status_codes:
                codes = ", ".join(str(code) for code in retries.status_codes)
                lost.append(f"{subject}: no retriable status codes ({codes})")
            if not retries.another_host:
                lost.append(f"{subject}: no retrying on the same instance (another_host: false)")
            if (retries.backoff_base, retries.backoff_max) != _DEFAULT_BACKOFF:
                lost.append(
                    f"{subject}: retry back-off {retries.backoff_base} to {retries.backoff_max} not carried; "
                    "App Mesh's Envoy backs off 25ms to 250ms"
                )
        if route.match.callers:
            lost.append(
                f"{subject}: applies to every caller, not only from {', '.join(route.match.callers)}: a virtual "
                "router's routes cannot tell callers apart"
            )
        if route.fault is not None:
            lost.append(f"{subject}: no fault injection ({_fault(route.fault)})")
        if route.mirror is not None:
            lost.append(f"{subject}: no traffic mirroring ({_percent(route.mirror.percent)} to {route.mirror.version})")
    return lost


def _app_mesh_gateway_losses(mesh: Mesh) -> list[str]:
    lost = []
    for gateway in mesh.gateways:
        name = gateway.name
        rendered = app_mesh_gateway_routes(mesh, gateway)
        if rendered:
            lost.append(
                f"gateway {name}: this flavor builds its virtual gateway (http on {gateway.port}), not its tasks: run "
                "App Mesh's Envoy image with the environment of output gateway_envoy_environment, behind a load "
                "balancer of yours"
            )
        if gateway.tls_port is not None:
            served = (
                f"{gateway.tls_cert} (key {gateway.tls_key})" if gateway.tls_cert else "a certificate of the mesh CA"
            )
            lost.append(
                f"gateway {name}: no HTTPS on {gateway.tls_port} serving {served}: a virtual gateway reads its "
                "certificate inside its tasks, which this flavor does not build"
            )
        if gateway.rate_limit is not None:
            lost.append(f"gateway {name}: no rate limit ({_rate(gateway.rate_limit)})")
        for route in gateway.routes:
            subject = f"gateway {name}/{route.name}"
            if route not in rendered:
                protocol = mesh.service(route.service).protocol
                lost.append(
                    f"{subject}: not rendered: -> {route.service} speaks {protocol} and this flavor's virtual gateway "
                    "listens for http only"
                )
                continue
            if route.match.methods:
                lost.append(
                    f"{subject}: no method match (methods {','.join(route.match.methods)}); App Mesh gateway routes "
                    "match every method"
                )
            if route.rate_limit is not None:
                lost.append(f"{subject}: no rate limit ({_rate(route.rate_limit)})")
    return lost


def app_mesh_limitations(mesh: Mesh, tracing: str) -> list[str]:
    lost = []
    for service in mesh.services:
        name = service.name
        lost += _app_mesh_route_losses(service)
        if service.connect_timeout != _DEFAULT_CONNECT_TIMEOUT:
            lost.append(f"{name}: no connect_timeout {service.connect_timeout}; App Mesh has no such setting")
        pools = _APP_MESH_POOLS[service.protocol]
        changes = _breaker_changes(service.circuit_breaker, tuple(f for f in _POOL_FIELDS if f not in pools))
        if changes:
            lost.append(
                f"{name}: circuit breaker {', '.join(changes)} not carried; App Mesh's {service.protocol} "
                f"virtual nodes limit only {' and '.join(pools)}"
            )
        envoy_only = _breaker_changes(service.circuit_breaker, _CLUSTER_ONLY_BREAKER_FIELDS)
        if envoy_only:
            lost.append(
                f"{name}: circuit breaker {', '.join(envoy_only)} not carried; App Mesh's virtual nodes have no "
                "such setting"
            )
        if service.rate_limit is not None:
            lost.append(f"{name}: no rate limit ({_rate(service.rate_limit)})")
        check = service.health_check
        if check is not None:
            lost += [f"{name}: {note}" for note in app_mesh_health_check(check)[1]]
            if check.grpc_service:
                lost.append(
                    f"{name}: health check grpc_service {check.grpc_service} not carried; "
                    "App Mesh asks for the server's overall health"
                )
            if check.send is not None:
                lost.append(
                    f"{name}: health check send {check.send!r}, expect {check.expect!r} not carried; App Mesh's "
                    "tcp health check only opens a connection"
                )
        for dependency in service.dependencies:
            arrow = f"{name} -> {dependency.target}"
            if dependency.rate_limit is not None:
                lost.append(f"{arrow}: no caller-side rate limit ({_rate(dependency.rate_limit)})")
            if not dependency.external and dependency.local_port not in (None, mesh.service(dependency.target).port):
                port = mesh.service(dependency.target).port
                lost.append(
                    f"{arrow}: no local port {dependency.local_port}; the app connects to the virtual service "
                    f"`{dependency.target}` on {port}"
                )
            if dependency.local_address is not None:
                lost.append(
                    f"{arrow}: no listener of its own on {dependency.local_address}; the app connects to "
                    f"`{dependency.target}` by name"
                )
    lost += _version_losses(mesh, "app-mesh")
    lost += [
        f"external {e.name}: not modelled; egress is open (ALLOW_ALL), so callers reach {_external(e)}"
        for e in mesh.externals
    ]
    if mesh.max_downstream_connections != _DEFAULT_MAX_DOWNSTREAM:
        lost.append(f"sidecars: no limit of {mesh.max_downstream_connections} downstream connections per Envoy")
    if mesh.tracing is not None and tracing == "xray" and mesh.tracing.sample_percent != _APP_MESH_SAMPLE_PERCENT:
        lost.append(
            f"tracing: App Mesh's Envoy samples a fixed {_percent(_APP_MESH_SAMPLE_PERCENT)} of requests for X-Ray, "
            f"not {_percent(mesh.tracing.sample_percent)}"
        )
    lost += _tracing_off(mesh, tracing, ("xray",))
    log = mesh.access_log
    lost.append(f"access logs: none configured on the virtual nodes; not meshgen's {log.format} log to {log.path}")
    if mesh.security.enabled:
        lost.append(
            f"mutual TLS {mesh.security.mtls}: not carried: App Mesh's Envoys read certificates from files or an SDS "
            "agent in each task, and this flavor builds no tasks; virtual nodes talk plaintext, without identities"
        )
        lost += _unauthorized(
            mesh, "without mutual TLS callers have no identity, so whatever reaches its tasks may call it"
        )
    if mesh.metrics is not None:
        lost.append(
            f"metrics: not carried (mesh.metrics {_prometheus(mesh)}): this flavor builds no tasks to run a "
            "CloudWatch agent in; App Mesh's Envoy serves /stats/prometheus on its admin port for an agent of yours"
        )
    lost.append(
        "tasks: this flavor builds the mesh, not the tasks: run each version's tasks (image, instances, environment) "
        "with the Envoy environment of output envoy_environment"
    )
    return lost + _app_mesh_gateway_losses(mesh)
