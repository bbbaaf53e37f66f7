"""The resolved mesh model.

Every value here is final: defaults are already inherited, names already checked against each
other. Renderers read this and nothing else, and never re-implement inheritance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from meshgen.catalog.positions import SourceMap
from meshgen.durations import Duration

IDEMPOTENT_METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE")

# A timeout: how long a call may take, or None for no limit (`timeout: none`, or `0s` as Envoy
# reads it). Every comparison of timeouts goes through the two functions below, so that "no
# limit" is never mistaken for "zero".
Timeout = Duration | None


def longest(timeouts: Iterable[Timeout]) -> Timeout:
    """The longest of `timeouts`: None (no limit) if any is."""
    found: list[Duration] = []
    for timeout in timeouts:
        if timeout is None:
            return None
        found.append(timeout)
    return max(found) if found else None


def shorter(a: Timeout, b: Timeout) -> bool:
    """`a` gives up before `b` does."""
    return a is not None and (b is None or a < b)


def timeout_text(timeout: Timeout) -> str:
    return "none" if timeout is None else str(timeout)


@dataclass(frozen=True)
class Retries:
    attempts: int
    on: tuple[str, ...]
    status_codes: tuple[int, ...]
    per_try_timeout: Duration | None
    backoff_base: Duration
    backoff_max: Duration
    methods: str  # "idempotent" | "all"
    another_host: bool

    @property
    def num_retries(self) -> int:
        return self.attempts - 1

    def worst_case_duration(self) -> Duration | None:
        """Time all attempts may take when each runs to its per-try timeout and every
        back-off is at its maximum; None when tries are not individually bounded."""
        if self.per_try_timeout is None:
            return None
        waits = sum(min(self.backoff_base.ms * 2**i, self.backoff_max.ms) for i in range(self.num_retries))
        return Duration(self.per_try_timeout.ms * self.attempts + waits)


@dataclass(frozen=True)
class CircuitBreaker:
    max_connections: int
    max_pending_requests: int
    max_requests: int
    max_retries: int
    consecutive_5xx: int
    interval: Duration
    ejection_time: Duration
    max_ejection_percent: int
    max_requests_per_connection: int | None = None  # None: no limit (Envoy's own)
    panic_threshold: float | None = None  # None: Envoy's 50%


@dataclass(frozen=True)
class HealthCheck:
    path: str | None  # HTTP services
    grpc_service: str | None  # gRPC services; a TCP service has neither, and sends `send`, expects `expect`
    interval: Duration
    timeout: Duration
    unhealthy_threshold: int
    healthy_threshold: int
    send: str | None = None  # tcp: bytes sent
    expect: str | None = None  # tcp: what the answer must contain


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per: Duration
    burst: int


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None
    present: bool | None = None

    def describe(self) -> str:
        if self.exact is not None:
            return f"{self.name}={self.exact}"
        if self.prefix is not None:
            return f"{self.name}^={self.prefix}"
        if self.regex is not None:
            return f"{self.name}~{self.regex}"
        return f"{self.name} present" if self.present is not False else f"{self.name} absent"


@dataclass(frozen=True)
class Match:
    prefix: str | None = None
    path: str | None = None
    headers: tuple[HeaderMatch, ...] = ()
    methods: tuple[str, ...] = ()
    callers: tuple[str, ...] = ()  # only calls from these services; empty: from any

    @property
    def catch_all(self) -> bool:
        """True when every request matches, from every caller."""
        return self.matches_every_request and not self.callers

    @property
    def matches_every_request(self) -> bool:
        return self.path is None and self.prefix in (None, "/") and not self.headers and not self.methods

    def applies_to(self, caller: str) -> bool:
        return not self.callers or caller in self.callers

    def describe(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(f"path {self.path}")
        else:
            parts.append(f"prefix {self.prefix or '/'}")
        parts += [f"header {h.describe()}" for h in self.headers]
        if self.methods:
            parts.append("methods " + ",".join(self.methods))
        if self.callers:
            parts.append("from " + ",".join(self.callers))
        return " ".join(parts)


@dataclass(frozen=True)
class Fault:
    delay: Duration | None
    delay_percent: float
    abort_status: int | None
    abort_percent: float
    headers: tuple[HeaderMatch, ...]


@dataclass(frozen=True)
class Mirror:
    version: str
    percent: float


@dataclass(frozen=True)
class Route:
    name: str
    match: Match
    weights: tuple[tuple[str, int], ...]  # (version, weight), weights > 0 only
    timeout: Timeout
    retries: Retries
    fault: Fault | None = None
    mirror: Mirror | None = None

    def shares(self) -> tuple[tuple[str, float], ...]:
        """(version, percent of requests); weights are relative, so they need not sum to 100."""
        total = sum(weight for _, weight in self.weights)
        return tuple((version, 100 * weight / total) for version, weight in self.weights)

    def describe_weights(self) -> str:
        return ", ".join(f"{version} {share:.4g}%" for version, share in self.shares())


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    local_address: str
    assigned: bool = False  # address chosen by meshgen because the catalog has no `hosts`
    listen_address: str | None = None  # where the inbound listener binds, if not `address`
    hosts_file: bool = False  # on-prem: dependencies' names written into /etc/hosts

    @property
    def inbound_bind(self) -> str:
        return self.listen_address or self.address


@dataclass(frozen=True)
class Instance:
    service: str
    version: str
    host: Host
    app_port: int
    inbound_port: int
    outbound_port: int
    admin_port: int
    command: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None  # as written: each target says what a relative one is relative to
    stats_port: int = 15090  # Prometheus metrics on the mesh address, read-only
    gateway: bool = False  # an instance of a gateway: an Envoy with no app (version is "gateway")

    @property
    def id(self) -> str:
        return f"{self.service}.{self.version}.{self.host.name}"


@dataclass(frozen=True)
class Version:
    name: str
    instances: tuple[Instance, ...]
    labels: tuple[tuple[str, str], ...] = ()
    image: str | None = None
    calls: tuple[str, ...] = ()  # targets this version's instances call: the service's and its own


@dataclass(frozen=True)
class Dependency:
    target: str
    external: bool
    local_port: int | None  # a listener of its own (always for TCP)
    rate_limit: RateLimit | None
    protocol: str = "http"  # the callee's: http, http2, grpc or tcp
    local_address: str | None = None  # that listener's own address; None: the caller's local address

    @property
    def is_http(self) -> bool:
        return self.protocol != "tcp"

    def listener(self, host: Host) -> tuple[str, int] | None:
        """Where the caller's app reaches this dependency directly, with no Host header to set;
        None: only through the shared outbound listener, by name."""
        if self.local_port is None:
            return None
        return self.local_address or host.local_address, self.local_port


@dataclass(frozen=True)
class Socket:
    """An address and port an instance's app or sidecar binds."""

    address: str
    port: int
    owner: str  # "app", "admin", "inbound listener", ...
    dependency: int | None = None  # index of the tcp dependency it serves


@dataclass(frozen=True)
class AuthorizationRule:
    """Admits callers (services, named clients, or outside callers) for some methods and paths."""

    callers: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    outside: bool = False
    methods: tuple[str, ...] = ()  # empty: any method
    paths: tuple[str, ...] = ()  # path prefixes; empty: any path


@dataclass(frozen=True)
class Service:
    name: str
    protocol: str
    port: int
    edge: bool
    versions: tuple[Version, ...]
    dependencies: tuple[Dependency, ...]
    routes: tuple[Route, ...]
    timeout: Timeout
    connect_timeout: Duration
    circuit_breaker: CircuitBreaker
    health_check: HealthCheck | None
    rate_limit: RateLimit | None
    authorization: tuple[AuthorizationRule, ...] | None = None  # None: derived from the dependency graph
    # Bounds the inbound hop (sidecar -> app): the longest any caller may wait on this service,
    # and, unless the catalog sets the service's timeout, no shorter than its own calls may take.
    inbound_timeout: Timeout = None

    @property
    def is_http(self) -> bool:
        return self.protocol != "tcp"

    @property
    def instances(self) -> tuple[Instance, ...]:
        return tuple(i for v in self.versions for i in v.instances)

    def version(self, name: str) -> Version:
        return next(v for v in self.versions if v.name == name)

    def calls(self, version: str) -> tuple[Dependency, ...]:
        """What the instances of `version` call: a sidecar carries exactly these."""
        targets = self.version(version).calls
        return tuple(d for d in self.dependencies if d.target in targets)

    def sockets(self, instance: Instance) -> tuple[Socket, ...]:
        host = instance.host
        sockets = [
            Socket(host.address, instance.inbound_port, "inbound listener"),
            Socket(host.local_address, instance.app_port, "app"),
            Socket(host.local_address, instance.admin_port, "admin"),
            Socket(host.address, instance.stats_port, "stats listener"),
        ]
        calls = self.calls(instance.version)
        if any(d.is_http for d in calls):
            sockets.append(Socket(host.local_address, instance.outbound_port, "outbound listener"))
        for index, dependency in enumerate(self.dependencies):
            listener = dependency.listener(host) if dependency in calls else None
            if listener is not None:
                kind = "http" if dependency.is_http else "tcp"
                sockets.append(Socket(*listener, f"{kind} listener for {dependency.target}", index))
        return tuple(sockets)


@dataclass(frozen=True)
class External:
    name: str
    address: str
    port: int
    protocol: str
    tls: bool
    sni: str | None
    ca_file: str
    timeout: Timeout
    connect_timeout: Duration
    retries: Retries
    circuit_breaker: CircuitBreaker
    reachable: bool = True  # False: a run that must not leave this machine has no route to it
    stand_in: tuple[str, int] | None = None  # where calls really go (a local stand-in), the name kept
    client_cert: str | None = None  # TLS: certificate and key presented only when the catalog asks
    client_key: str | None = None
    hosts: tuple[str, ...] = ()  # the names apps may call it by, besides its catalog name

    @property
    def is_http(self) -> bool:
        return self.protocol != "tcp"

    @property
    def endpoint(self) -> tuple[str, int]:
        """Where its sidecar connects: the stand-in if there is one; Host and SNI stay its real name."""
        return self.stand_in or (self.address, self.port)


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass(frozen=True)
class GatewayRoute:
    name: str
    domains: tuple[str, ...]  # exact Host names; ("*",) answers any
    match: Match
    service: str
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class Gateway:
    """A standalone Envoy on each of its hosts: outside callers in, mesh services out."""

    name: str
    instances: tuple[Instance, ...]  # one per host; inbound_port is the HTTP listener's
    port: int
    routes: tuple[GatewayRoute, ...]
    tls_port: int | None = None
    tls_cert: str | None = None  # None with a tls_port: the mesh CA issues the served certificate
    tls_key: str | None = None
    rate_limit: RateLimit | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The services it routes to, each once, in name order."""
        return tuple(sorted({route.service for route in self.routes}))

    @property
    def domains(self) -> tuple[str, ...]:
        """The exact Host names its routes answer, in name order (not "*")."""
        return tuple(sorted({d for route in self.routes for d in route.domains if d != "*"}))

    def http_url(self, instance: Instance) -> str:
        """Where callers from outside reach `instance` over HTTP."""
        return f"http://{_url_host(instance.host.address)}:{self.port}/"

    def https_url(self, instance: Instance) -> str | None:
        """Where callers from outside reach `instance` over HTTPS; None: it serves none."""
        if self.tls_port is None:
            return None
        return f"https://{_url_host(instance.host.address)}:{self.tls_port}/"

    def sockets(self, instance: Instance) -> tuple[Socket, ...]:
        host = instance.host
        sockets = [
            Socket(host.address, self.port, "gateway http listener"),
            Socket(host.local_address, instance.admin_port, "admin"),
            Socket(host.address, instance.stats_port, "stats listener"),
        ]
        if self.tls_port is not None:
            sockets.append(Socket(host.address, self.tls_port, "gateway https listener"))
        return tuple(sockets)


@dataclass(frozen=True)
class Tracing:
    provider: str
    collector_address: str
    collector_port: int
    collector_is_ip: bool
    sample_percent: float


@dataclass(frozen=True)
class Dashboard:
    """Where `meshgen up` serves the local mesh's dashboard."""

    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{_url_host(self.address)}:{self.port}/"


@dataclass(frozen=True)
class Metrics:
    """The mesh's Prometheus, which scrapes every sidecar's stats listener."""

    prometheus_address: str
    prometheus_port: int
    prometheus_is_ip: bool


MTLS_MODES = ("strict", "permissive", "off")


@dataclass(frozen=True)
class Security:
    mtls: str  # strict | permissive | off
    trust_domain: str
    leaf_lifetime: Duration
    ca_lifetime: Duration
    ca_cert: str | None = None  # the user's CA (absolute paths); None: meshgen's own
    ca_key: str | None = None

    @property
    def enabled(self) -> bool:
        """Sidecars have identities and talk mutual TLS (strict, or permissive on the way there)."""
        return self.mtls != "off"

    def service_id(self, service: str) -> str:
        """The SPIFFE ID every instance of `service` presents, whatever its version."""
        return f"spiffe://{self.trust_domain}/service/{service}"

    def gateway_id(self, gateway: str) -> str:
        """The SPIFFE ID a gateway presents to the services it calls."""
        return f"spiffe://{self.trust_domain}/gateway/{gateway}"

    def identity(self, instance: Instance) -> str:
        return self.gateway_id(instance.service) if instance.gateway else self.service_id(instance.service)

    def client_id(self, client: str) -> str:
        """A named non-mesh client's identity."""
        return f"spiffe://{self.trust_domain}/client/{client}"


@dataclass(frozen=True)
class LintIgnore:
    check: str
    subject: str | None  # None: every finding of the check
    reason: str


@dataclass(frozen=True)
class AccessLog:
    format: str
    path: str


@dataclass(frozen=True)
class Mesh:
    name: str
    hosts: tuple[Host, ...]
    services: tuple[Service, ...]
    externals: tuple[External, ...]
    tracing: Tracing | None
    access_log: AccessLog
    max_downstream_connections: int
    security: Security
    lint_ignores: tuple[LintIgnore, ...] = ()
    metrics: Metrics | None = None
    dashboard: Dashboard | None = None
    gateways: tuple[Gateway, ...] = ()
    origin: str = field(default="", compare=False)
    # Deprecated spellings in the catalog, located, for every command to warn about.
    deprecations: tuple[str, ...] = field(default=(), compare=False)
    # Where each field was written, so a target that cannot serve a valid catalog (on-prem
    # without `hosts`, AWS without images) can still point at the line.
    sources: SourceMap = field(default_factory=SourceMap, compare=False, repr=False)

    @cached_property
    def _services_by_name(self) -> dict[str, Service]:
        return {s.name: s for s in self.services}

    @cached_property
    def _externals_by_name(self) -> dict[str, External]:
        return {e.name: e for e in self.externals}

    def service(self, name: str) -> Service:
        return self._services_by_name[name]

    def external(self, name: str) -> External:
        return self._externals_by_name[name]

    @property
    def instances(self) -> tuple[Instance, ...]:
        """Every service instance: an app and its sidecar (gateways are not among them)."""
        return tuple(i for s in self.services for i in s.instances)

    @property
    def proxies(self) -> tuple[Instance, ...]:
        """Every Envoy of the mesh: each instance's sidecar, then each gateway instance."""
        return self.instances + tuple(i for g in self.gateways for i in g.instances)

    def gateway(self, name: str) -> Gateway:
        return next(g for g in self.gateways if g.name == name)

    def gateways_to(self, service: str) -> tuple[Gateway, ...]:
        """The gateways with a route to `service`."""
        return tuple(g for g in self.gateways if service in g.targets)

    @cached_property
    def _callers(self) -> dict[str, tuple[Service, ...]]:
        callers: dict[str, list[Service]] = {}
        for service in self.services:
            for dependency in service.dependencies:
                callers.setdefault(dependency.target, []).append(service)
        return {name: tuple(found) for name, found in callers.items()}

    def callers_of(self, name: str) -> tuple[Service, ...]:
        return self._callers.get(name, ())

    @property
    def entry_services(self) -> tuple[Service, ...]:
        """Services a gateway routes to or marked `edge`, or, when there are none, the services
        nobody calls."""
        marked = tuple(s for s in self.services if s.edge or self.gateways_to(s.name))
        return marked or tuple(s for s in self.services if not self.callers_of(s.name))
