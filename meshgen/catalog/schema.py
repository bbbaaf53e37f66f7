"""The catalog as users write it: pydantic models, and from them the JSON Schema.

Every policy field is optional here: what a field left out means is decided once, in
`meshgen.model.resolve`, by inheritance (route -> service -> mesh defaults -> built-in defaults).
Shorthands (a host name for an instance, a service name for a dependency, a string for a header
match) are expanded before validation so that error paths stay simple.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from meshgen.durations import DURATION_BOUNDS, Duration, PositiveDurationField, TimeoutField

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
# SPIFFE trust domains: lower-case letters, digits, dots, dashes and underscores.
TRUST_DOMAIN_PATTERN = r"^[a-z0-9._-]{1,255}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="lower-case letters, digits and dashes")]
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[float, Field(ge=0, le=100)]
# Counts become Envoy uint32 fields (circuit-breaker thresholds, outlier and health-check counts,
# token buckets): Envoy refuses anything larger, and the JSON writer anything past 64 bits.
UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1

RetryOn = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
]
Protocol = Literal["http", "http2", "grpc", "tcp"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _shorthand(key: str) -> Any:
    """A bare string stands for an object whose `key` is that string."""

    def expand(value: Any) -> Any:
        return {key: value} if isinstance(value, str) else value

    return expand


class Backoff(Strict):
    base: PositiveDurationField = Field(description="first back-off interval between attempts")
    max: PositiveDurationField | None = Field(None, description="longest back-off interval (default 10x base)")

    @field_validator("max")
    @classmethod
    def _not_below_base(cls, value: Duration | None, info: ValidationInfo) -> Duration | None:
        base = info.data.get("base")
        if value is not None and base is not None and value < base:
            raise ValueError(f"must be at least backoff.base ({base}), got {value}")
        return value


class Retries(Strict):
    """How a failed call is tried again. `attempts` counts every try, the first included."""

    attempts: int | None = Field(None, ge=1, le=20, description="total tries, first included; 1 = no retry")
    retry_on: list[RetryOn] | None = Field(None, description="conditions that allow a retry (Envoy retry_on names)")
    # YAML 1.1 tools (PyYAML, yq, Ansible) read the key `on` as the boolean true: a catalog
    # round-tripped through them loses it. Still read; load_mesh warns where it is written.
    on: list[RetryOn] | None = Field(None, description="deprecated: the old name of retry_on")
    status_codes: list[Annotated[int, Field(ge=100, le=599)]] | None = Field(
        None, description="extra HTTP status codes that allow a retry"
    )
    per_try_timeout: TimeoutField | None = Field(None, description="time limit of each single try (none: no limit)")
    backoff: Backoff | None = None
    methods: Literal["idempotent", "all"] | None = Field(
        None,
        description="idempotent: only GET, HEAD, OPTIONS, PUT, DELETE and TRACE are retried; "
        "all: the calls are safe to repeat",
    )
    another_host: bool | None = Field(None, description="retry on a different instance than the one that failed")

    @model_validator(mode="after")
    def _one_name_for_retry_on(self) -> Retries:
        if self.on is not None and self.retry_on is not None:
            raise ValueError("write retry_on only: `on` is its deprecated name")
        return self


class CircuitBreaker(Strict):
    """Connection limits and outlier detection towards a service's instances."""

    max_connections: int | None = Field(None, ge=1, le=UINT32_MAX)
    max_pending_requests: int | None = Field(None, ge=1, le=UINT32_MAX)
    max_requests: int | None = Field(None, ge=1, le=UINT32_MAX)
    max_retries: int | None = Field(
        None, ge=0, le=UINT32_MAX, description="retries in flight at once towards the service"
    )
    consecutive_5xx: int | None = Field(None, ge=1, le=UINT32_MAX, description="errors in a row that eject an instance")
    interval: PositiveDurationField | None = Field(None, description="how often ejections are evaluated")
    ejection_time: PositiveDurationField | None = Field(None, description="base time an ejected instance stays out")
    max_ejection_percent: int | None = Field(None, ge=0, le=100)
    max_requests_per_connection: int | None = Field(
        None,
        ge=1,
        le=UINT32_MAX,
        description="HTTP: requests on one connection before it is closed (default: no limit)",
    )
    panic_threshold: Percent | None = Field(
        None,
        description="below this share of healthy instances, callers send to all of them anyway (Envoy's panic mode, "
        "default 50); 0: never, a call with no healthy instance left answers 503",
    )


class HealthCheck(Strict):
    """Active health checking of a service's instances by its callers: an HTTP path, gRPC's health
    service, or, for protocol tcp, bytes sent and an answer expected (a connection that opens
    proves only that the sidecar in front of the app listens)."""

    path: str | None = Field(
        None, pattern=r"^/", description="HTTP path answered with 200 when healthy (default /healthz; not for grpc)"
    )
    grpc_service: str | None = Field(
        None,
        description="gRPC services: the name asked of grpc.health.v1.Health (default: the server's overall health)",
    )
    send: str | None = Field(None, min_length=1, description="protocol tcp: what the check sends (e.g. PING\\r\\n)")
    expect: str | None = Field(
        None, min_length=1, description="protocol tcp: what the answer must contain (required with send)"
    )
    interval: PositiveDurationField | None = None
    timeout: PositiveDurationField | None = None
    unhealthy_threshold: int | None = Field(None, ge=1, le=UINT32_MAX)
    healthy_threshold: int | None = Field(None, ge=1, le=UINT32_MAX)


class RateLimit(Strict):
    """A token bucket: `requests` per `per`, bursting to `burst`."""

    requests: int = Field(ge=1, le=UINT32_MAX)
    per: PositiveDurationField = Field(description="refill interval, at least 50ms")
    burst: int | None = Field(None, ge=1, le=UINT32_MAX, description="bucket size (default: requests)")


class Defaults(Strict):
    timeout: TimeoutField | None = Field(
        None, description="route timeout, covering every attempt; none (or 0s): the call may take as long as it takes"
    )
    connect_timeout: PositiveDurationField | None = None
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None


class Tracing(Strict):
    provider: Literal["zipkin", "opentelemetry"] = "zipkin"
    collector: str = Field(description="HOST:PORT of the collector; HOST may name a catalog host")
    sample_percent: Percent = 100.0

    @field_validator("collector")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value


class Metrics(Strict):
    """Where the mesh's Prometheus runs; `meshgen up` starts it to scrape every sidecar."""

    prometheus: str = Field(description="HOST:PORT Prometheus listens on; HOST may name a catalog host")

    @field_validator("prometheus")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return Tracing._host_port(value)  # the same HOST:PORT as the trace collector's


class AccessLog(Strict):
    format: Literal["json", "text"] = "json"
    path: str = Field("/dev/stdout", description="file each sidecar appends its access log to")


class Sidecar(Strict):
    """Port layout of every sidecar; an instance may override its own."""

    inbound_port: Port = 15006
    outbound_port: Port = 15001
    admin_port: Port = 15000
    stats_port: Port = Field(
        15090,
        description="Prometheus metrics at http://<host address>:<stats_port>/stats/prometheus, read-only "
        "(Istio's port); nothing else of the admin interface is reachable there",
    )
    max_downstream_connections: int = Field(
        50_000,
        ge=1,
        le=INT64_MAX,
        description="connections one sidecar accepts in all; Envoy's own default is unlimited",
    )


def _yaml11_off(value: Any) -> Any:
    """YAML 1.1 (PyYAML, Ansible, yq) reads a bare `off` as false: that can only mean off."""
    return "off" if value is False else value


class CertificateAuthority(Strict):
    """Your own intermediate CA, to sign the sidecars' certificates instead of meshgen's CA."""

    cert: str = Field(description="PEM file: the CA's certificate, then its chain up to and including the root")
    key: str = Field(description="PEM file: the CA's private key, read where meshgen runs (relative to the catalog)")


class Security(Strict):
    """Mutual TLS between sidecars, with SPIFFE identities, and authorization derived from the catalog."""

    mtls: Annotated[Literal["strict", "permissive", "off"], BeforeValidator(_yaml11_off)] = Field(
        "strict",
        description="strict: sidecars accept only mutual TLS from mesh identities; permissive: also plaintext "
        "(to migrate a running plaintext mesh); off: plaintext, no identities, no authorization",
    )
    trust_domain: str | None = Field(
        None,
        pattern=TRUST_DOMAIN_PATTERN,
        description="SPIFFE trust domain: identities are spiffe://<trust_domain>/service/<name> "
        "(default: the mesh name)",
    )
    ca: CertificateAuthority | None = Field(
        None, description="the CA that signs sidecar certificates (default: meshgen's own, created once)"
    )
    leaf_lifetime: PositiveDurationField = Field(
        Duration(24 * 3_600_000), description="how long a sidecar certificate is valid; renewed at half of it"
    )
    ca_lifetime: PositiveDurationField = Field(
        Duration(10 * 8_766 * 3_600_000), description="how long meshgen's own CA certificate is valid"
    )


class LintIgnore(Strict):
    """A lint finding you have looked at and accept, with the reason, for whoever reads it next."""

    check: str = Field(description="the finding's check, e.g. timeout-budget")
    subject: str | None = Field(None, description="the finding's subject as lint prints it (default: every subject)")
    reason: str = Field(min_length=1, description="why it is accepted")


class Lint(Strict):
    ignore: list[LintIgnore] = Field(default_factory=list)


class MeshSection(Strict):
    name: Name
    defaults: Defaults = Defaults()
    tracing: Tracing | None = None
    metrics: Metrics | None = None
    dashboard: str | None = Field(
        None,
        description="HOST:PORT where `meshgen up` serves the local mesh's dashboard, a loopback address; "
        "HOST may name a catalog host. The local mesh only.",
    )
    access_log: AccessLog = AccessLog()
    sidecar: Sidecar = Sidecar()
    security: Security = Security()
    lint: Lint = Lint()

    @field_validator("dashboard")
    @classmethod
    def _dashboard(cls, value: str | None) -> str | None:
        return None if value is None else Tracing._host_port(value)


def _loopback_address(cls: type, value: str | None) -> str | None:
    if value is not None:
        try:
            loopback = ipaddress.ip_address(value).is_loopback
        except ValueError:
            raise ValueError("expected an IP address") from None
        if not loopback:
            raise ValueError("expected a loopback address (127.0.0.0/8 or ::1)")
    return value


class Host(Strict):
    address: str = Field(description="IP address the host's sidecars accept mesh traffic on")
    local_address: str | None = Field(
        None,
        description="loopback address for the app, the admin interface and the sidecar's local listeners "
        "(default: 127.0.0.1; for a loopback address, that address with the last octet's high bit flipped, "
        "so hosts sharing one machine keep their apps off their mesh address)",
    )

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("expected an IP address") from None
        return value

    hosts_file: bool = Field(
        False,
        description="on-prem: the envoy role writes the name of each dependency with an `address` of its own into "
        "the host's /etc/hosts (name and name.mesh), so apps that dial http://details:9080 reach its sidecar "
        "listener; false removes the entries again",
    )

    # The admin interface binds here, and it must never be reachable from the network.
    _loopback = field_validator("local_address")(_loopback_address)


class Instance(Strict):
    host: Name = Field(description="name of a host in `hosts`")
    port: Port | None = Field(None, description="port the app listens on (default: the service's)")
    inbound_port: Port | None = None
    outbound_port: Port | None = None
    admin_port: Port | None = None
    stats_port: Port | None = None
    command: list[str] | None = Field(None, description="the app to run (default: the built-in demo app)")
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = Field(
        None,
        min_length=1,
        description="working directory of the command (local: relative to the catalog's directory; on-prem: an "
        "absolute path on the host)",
    )


class Dependency(Strict):
    service: str = Field(description="a service or external service this one calls")
    local_port: Port | None = Field(
        None,
        description="a listener of its own on the caller's local address, for apps that dial an address, not a name "
        "(HTTP: plain http://127.0.0.1:PORT/ reaches this dependency; TCP: always, default the callee's port)",
    )
    address: str | None = Field(
        None,
        description="a loopback address of its own for this dependency's listener, on local_port or else the "
        "callee's port: with the host's hosts_file, http://details:9080 reaches it by name",
    )
    rate_limit: RateLimit | None = Field(None, description="throttle this caller's calls to the dependency")

    # Only the caller's own machine may reach the listener: it speaks for the caller's identity.
    _loopback = field_validator("address")(_loopback_address)


class Version(Strict):
    instances: list[
        Annotated[Instance, BeforeValidator(_shorthand("host"), json_schema_input_type=Name | Instance)]
    ] = Field(min_length=1)
    image: str | None = Field(None, description="container image of this version, for the AWS targets")
    labels: dict[str, str] = Field(default_factory=dict)
    dependencies: list[
        Annotated[Dependency, BeforeValidator(_shorthand("service"), json_schema_input_type=str | Dependency)]
    ] = Field(
        default_factory=list,
        description="what only this version calls, besides the service's own dependencies (v1 calls nothing, v2 "
        "calls ratings): its sidecars alone get the routes and clusters",
    )


class HeaderMatch(Strict):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None
    present: bool | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value


HeaderMatches = dict[
    str, Annotated[HeaderMatch, BeforeValidator(_shorthand("exact"), json_schema_input_type=str | HeaderMatch)]
]


Method = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]


class Match(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    prefix: str | None = Field(None, pattern=r"^/")
    path: str | None = Field(None, pattern=r"^/")
    headers: HeaderMatches = Field(default_factory=dict)
    methods: list[Method] | None = None
    callers: list[Name] | None = Field(
        None,
        alias="from",
        description="only calls from these services (their sidecars alone get the route), like Istio's sourceLabels",
    )


class Delay(Strict):
    duration: PositiveDurationField
    percent: Percent = 100.0


class Abort(Strict):
    status: int = Field(ge=200, le=599)
    percent: Percent = 100.0


class Fault(Strict):
    """Injected faults; with `headers`, only requests carrying them are affected."""

    delay: Delay | None = None
    abort: Abort | None = None
    headers: HeaderMatches = Field(default_factory=dict)


class Mirror(Strict):
    """Shadow a share of requests to another version; its responses are dropped."""

    to: str = Field(description="version that receives the copies")
    percent: Percent = 100.0


class Route(Strict):
    name: Name | None = Field(None, description="used in traces and stats (default: route-N)")
    match: Match = Match()
    to: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        description="version -> weight; weights are relative (90/10, or 9/1, or 100/1), 0 for none"
    )
    timeout: TimeoutField | None = None
    retries: Retries | None = None
    fault: Fault | None = None
    mirror: Mirror | None = None


class AuthorizationRule(Strict):
    """Admits callers, optionally only for some methods and path prefixes."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    callers: list[Name] | None = Field(
        None, alias="from", description="services that call this one (each must declare it as a dependency)"
    )
    clients: list[Name] | None = Field(
        None,
        description="named clients outside the mesh, holding a certificate of the mesh CA for "
        "spiffe://<trust_domain>/client/<name> (`meshgen certs issue-client`)",
    )
    outside: bool = Field(False, description="edge services: callers from outside the mesh, without a mesh identity")
    methods: list[Method] | None = Field(None, description="only these methods (default: any)")
    paths: list[Annotated[str, Field(pattern=r"^/")]] | None = Field(
        None, description="only paths starting with one of these prefixes (default: any)"
    )


class Service(Strict):
    port: Port = Field(description="port the app listens on, behind its sidecar")
    protocol: Protocol = "http"
    edge: bool = Field(False, description="called from outside the mesh (an entry point)")
    versions: dict[Name, Version] = Field(min_length=1)
    dependencies: list[
        Annotated[Dependency, BeforeValidator(_shorthand("service"), json_schema_input_type=str | Dependency)]
    ] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list, description="first match wins")
    timeout: TimeoutField | None = None
    connect_timeout: PositiveDurationField | None = None
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None
    health_check: HealthCheck | None = None
    rate_limit: RateLimit | None = Field(None, description="limit on what each instance accepts, all callers")
    authorization: list[AuthorizationRule] | None = Field(
        None,
        description="who may call this service, and what; default: every service that declares it as a "
        "dependency and, for an edge service, callers from outside the mesh. Rules only narrow that: a service "
        "that does not declare the dependency is never admitted",
    )


class ClientCertificate(Strict):
    cert: str = Field(description="PEM file on each sidecar's host: the certificate to present")
    key: str = Field(description="PEM file on each sidecar's host: its private key")


class External(Strict):
    address: str = Field(description="DNS name or IP address outside the mesh")
    hosts: list[str] = Field(
        default_factory=list,
        description="names apps call it by (www.example.com): the sidecar routes a request with any of them as Host "
        "to this external, as Istio's ServiceEntry hosts",
    )
    port: Port
    protocol: Literal["http", "tcp"] = "http"
    tls: bool = False
    sni: str | None = Field(
        None, description="TLS server name, also checked against the certificate (default: the address)"
    )
    ca_file: str = Field("/etc/ssl/certs/ca-certificates.crt", description="CA bundle that verifies the server")
    client_certificate: ClientCertificate | None = Field(
        None, description="TLS only: a client certificate the server asks for; none is ever sent otherwise"
    )
    timeout: TimeoutField | None = None
    connect_timeout: PositiveDurationField | None = None
    retries: Retries | None = None
    circuit_breaker: CircuitBreaker | None = None


class GatewayMatch(Strict):
    prefix: str | None = Field(None, pattern=r"^/")
    path: str | None = Field(None, pattern=r"^/")
    headers: HeaderMatches = Field(default_factory=dict)
    methods: list[Method] | None = None


class GatewayRoute(Strict):
    name: Name | None = Field(None, description="used in traces and stats (default: route-N)")
    domains: list[Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")]] = Field(
        default_factory=lambda: ["*"],
        description="Host names this route answers (exact names, or * for any); default any",
    )
    match: GatewayMatch = GatewayMatch()
    service: Name = Field(
        description="the service requests go to: its own routes (versions, weights, retries, timeouts, faults, "
        "mirroring) apply at the gateway, within this route's match"
    )
    rate_limit: RateLimit | None = Field(None, description="limit on what this route accepts, per gateway instance")


class GatewayTls(Strict):
    port: Port = Field(description="the HTTPS listener's port")
    cert: str | None = Field(None, description="PEM certificate chain it serves (default: issued by the mesh CA)")
    key: str | None = Field(None, description="PEM private key of `cert`")


class Gateway(Strict):
    """A standalone Envoy, no app: the way into the mesh from outside."""

    hosts: list[Name] = Field(min_length=1, description="catalog hosts, one gateway Envoy on each")
    port: Port = Field(8080, description="the HTTP listener's port, on each host's address")
    tls: GatewayTls | None = Field(None, description="an HTTPS listener besides the HTTP one")
    admin_port: Port | None = Field(None, description="default: mesh.sidecar.admin_port")
    stats_port: Port | None = Field(
        None, description="Prometheus metrics, as a sidecar's; default: mesh.sidecar.stats_port"
    )
    rate_limit: RateLimit | None = Field(None, description="limit on what each gateway instance accepts, all routes")
    routes: list[GatewayRoute] = Field(min_length=1, description="first match wins")


class Catalog(Strict):
    """A service catalog: one mesh, its hosts, its services, what they call outside it, and the
    gateways that let the outside in."""

    mesh: MeshSection
    hosts: dict[Name, Host] = Field(default_factory=dict)
    services: dict[Name, Service] = Field(min_length=1)
    external: dict[Name, External] = Field(default_factory=dict)
    gateways: dict[Name, Gateway] = Field(default_factory=dict)


def json_schema() -> dict[str, Any]:
    schema = Catalog.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "meshgen service catalog"
    _state_duration_bounds(schema)
    return schema


def _state_duration_bounds(node: Any) -> None:
    """JSON Schema cannot bound the value a string stands for, so every duration states its
    bounds in its description; a field's own description replaced its type's, so add them."""
    if isinstance(node, dict):
        bounds = DURATION_BOUNDS.get(node.get("pattern", ""))
        if bounds is not None and bounds not in node.get("description", ""):
            node["description"] = f"{node['description']}; {bounds}" if "description" in node else bounds
        for value in node.values():
            _state_duration_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _state_duration_bounds(value)
