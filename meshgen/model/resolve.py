"""Catalog (as written) -> Mesh (as meant): inheritance and every cross-field check.

Defaults are inherited once here, route -> service -> mesh defaults -> built-in defaults.
All problems are collected and raised together, each located in the catalog source.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from meshgen.catalog import schema as s
from meshgen.catalog.positions import FieldPath, SourceMap
from meshgen.durations import MAX_DURATION, Duration
from meshgen.errors import CatalogError, Problem
from meshgen.model import mesh as m
from meshgen.model.addresses import name_conflicts
from meshgen.model.defaults import BUILTIN
from meshgen.model.resolve_gateways import resolve_gateways

HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
MIN_RATE_LIMIT_INTERVAL = Duration(50)  # Envoy rejects token buckets refilled faster


def default_local_address(address: str) -> str:
    """Where a host's app, admin and outbound listeners bind when the catalog does not say.

    On a host of its own that is 127.0.0.1, which nothing off the host can reach. Hosts on
    loopback addresses share this machine, so each gets a second loopback address of its own,
    its mesh address with the last octet's high bit flipped (127.0.10.1 -> 127.0.10.129): only
    the sidecar's inbound listener answers at the mesh address, as on a real host.
    """
    parsed = ipaddress.ip_address(address)
    if not parsed.is_loopback:
        return "127.0.0.1"
    if parsed.version == 6:
        return address
    return str(ipaddress.IPv4Address(int(parsed) ^ 0x80))


def _set_fields(model: BaseModel | None) -> dict[str, Any]:
    return {} if model is None else model.model_dump(exclude_none=True, mode="python")


def _duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    return Duration(0) if value == "none" else Duration.parse(value)  # a timeout of none, as dumped


class _Resolver:
    def __init__(self, catalog: s.Catalog, sources: SourceMap, base_dir: Path) -> None:
        self.catalog = catalog
        self.sources = sources
        self.base_dir = base_dir  # files the catalog names are relative to it
        self.problems: list[Problem] = []
        self.defaults = catalog.mesh.defaults

    def problem(self, path: FieldPath, message: str) -> None:
        self.problems.append(self.sources.problem(path, message))

    # -- policies -------------------------------------------------------------------------

    def retries(self, protocol: str, *layers: s.Retries | None) -> m.Retries:
        """Built-in <- mesh defaults <- each layer, field by field (a backoff is taken whole)."""
        merged: dict[str, Any] = dict(BUILTIN["retries"])
        if protocol == "grpc":
            merged["on"] = list(BUILTIN["grpc_retry_on"])
        for layer in (self.defaults.retries, *layers):
            fields = _set_fields(layer)
            if "retry_on" in fields:
                fields["on"] = fields.pop("retry_on")
            merged.update(fields)
        backoff = merged["backoff"]
        base = _duration(backoff["base"])
        # The schema already checked max >= base wherever both are written. Ten times a base
        # near the longest duration would be longer than Envoy takes.
        maximum = _duration(backoff["max"]) if backoff.get("max") is not None else min(base * 10, MAX_DURATION)
        on = tuple(merged["on"])
        status_codes = tuple(merged["status_codes"])
        if status_codes and "retriable-status-codes" not in on:
            on = (*on, "retriable-status-codes")
        per_try = _duration(merged["per_try_timeout"]) if merged["per_try_timeout"] is not None else None
        return m.Retries(
            attempts=merged["attempts"],
            on=on,
            status_codes=status_codes,
            per_try_timeout=per_try if per_try is not None and per_try.ms > 0 else None,  # 0s: no limit
            backoff_base=base,
            backoff_max=maximum,
            methods=merged["methods"],
            another_host=merged["another_host"],
        )

    def circuit_breaker(self, own: s.CircuitBreaker | None) -> m.CircuitBreaker:
        merged = {**BUILTIN["circuit_breaker"], **_set_fields(self.defaults.circuit_breaker), **_set_fields(own)}
        for key in ("interval", "ejection_time"):
            merged[key] = _duration(merged[key])
        return m.CircuitBreaker(**merged)

    def _first(self, *candidates: Any) -> Duration:
        for value in candidates:
            if value is not None:
                return _duration(value)
        raise AssertionError("unreachable: the built-in default is set")

    def timeout(self, *candidates: Any) -> m.Timeout:
        """The first timeout set, inherited down to the built-in default; `none` or `0s` is no limit."""
        found = self._first(*candidates, self.defaults.timeout, BUILTIN["timeout"])
        return None if found.ms == 0 else found

    def connect_timeout(self, own: Duration | None) -> Duration:
        return self._first(own, self.defaults.connect_timeout, BUILTIN["connect_timeout"])

    def rate_limit(self, own: s.RateLimit | None, path: FieldPath) -> m.RateLimit | None:
        if own is None:
            return None
        if own.per < MIN_RATE_LIMIT_INTERVAL:
            self.problem((*path, "per"), f"must be at least {MIN_RATE_LIMIT_INTERVAL}, got {own.per}")
        return m.RateLimit(requests=own.requests, per=own.per, burst=own.burst or own.requests)

    def health_check(self, own: s.HealthCheck | None, protocol: str, path: FieldPath) -> m.HealthCheck | None:
        if own is None:
            return None
        merged = {**BUILTIN["health_check"], **_set_fields(own)}
        grpc, tcp = protocol == "grpc", protocol == "tcp"
        if grpc and own.path is not None:
            self.problem((*path, "path"), "gRPC services are checked through grpc.health.v1; use grpc_service")
        if tcp and own.path is not None:
            self.problem((*path, "path"), "a tcp service is checked by opening a connection: no path")
        if not grpc and own.grpc_service is not None:
            self.problem((*path, "grpc_service"), "only for protocol grpc" + ("" if tcp else "; use path"))
        for field in ("send", "expect"):
            if not tcp and getattr(own, field) is not None:
                self.problem((*path, field), "only for protocol tcp")
        if tcp and (own.send is None) != (own.expect is None):
            self.problem(path, "send and expect go together: what to send, and what the answer must contain")
        return m.HealthCheck(
            path=None if grpc or tcp else merged.get("path", "/healthz"),
            grpc_service=merged.get("grpc_service", "") if grpc else None,
            interval=_duration(merged["interval"]),
            timeout=_duration(merged["timeout"]),
            unhealthy_threshold=merged["unhealthy_threshold"],
            healthy_threshold=merged["healthy_threshold"],
            send=own.send if tcp else None,
            expect=own.expect if tcp else None,
        )

    def inbound_timeouts(self, services: list[m.Service]) -> list[m.Service]:
        """Each service's inbound hop gives up only after every caller has (the longest of its
        route timeouts) and, unless the catalog sets the service's own timeout, not before the
        longest of its own calls may end: an inherited default never cuts a slower path below."""
        routes = {s.name: s.routes for s in services}
        externals = dict(self._external_timeouts())
        result = []
        for service in services:
            inbound = m.longest([service.timeout, *(r.timeout for r in service.routes)])
            if self.catalog.services[service.name].timeout is None and inbound is not None:
                below = (
                    m.longest(
                        externals[d.target] if d.external else m.longest(r.timeout for r in routes[d.target])
                        for d in service.dependencies
                        if d.external or d.target in routes
                    )
                    if service.dependencies
                    else inbound
                )
                inbound = m.longest([inbound, below])
            result.append(dataclasses.replace(service, inbound_timeout=inbound))
        return result

    def _external_timeouts(self) -> list[tuple[str, m.Timeout]]:
        return [(name, self.timeout(external.timeout)) for name, external in self.catalog.external.items()]

    # -- security ---------------------------------------------------------------------------

    def security(self) -> m.Security:
        security = self.catalog.mesh.security
        ca = security.ca
        if ca is None and security.leaf_lifetime >= security.ca_lifetime:
            self.problem(
                ("mesh", "security", "leaf_lifetime"),
                f"must be shorter than ca_lifetime ({security.ca_lifetime}): no certificate outlives its CA",
            )
        return m.Security(
            mtls=security.mtls,
            trust_domain=security.trust_domain or self.catalog.mesh.name,
            leaf_lifetime=security.leaf_lifetime,
            ca_lifetime=security.ca_lifetime,
            ca_cert=str(self.base_dir / ca.cert) if ca else None,
            ca_key=str(self.base_dir / ca.key) if ca else None,
        )

    def authorization(self, name: str, service: s.Service) -> tuple[m.AuthorizationRule, ...] | None:
        if service.authorization is None:
            return None
        rules = []
        for index, rule in enumerate(service.authorization):
            path: FieldPath = ("services", name, "authorization", index)
            if not (rule.callers or rule.clients or rule.outside):
                self.problem(path, "expected at least one of from, clients, outside: whom does the rule admit?")
            if rule.outside and not service.edge:
                self.problem((*path, "outside"), "only edge services (edge: true) take callers from outside the mesh")
            if service.protocol == "tcp":
                for field in ("methods", "paths"):
                    if getattr(rule, field) is not None:
                        self.problem((*path, field), "not available for protocol tcp (an HTTP feature)")
            rules.append(
                m.AuthorizationRule(
                    callers=tuple(rule.callers or ()),
                    clients=tuple(rule.clients or ()),
                    outside=rule.outside,
                    methods=tuple(rule.methods or ()),
                    paths=tuple(rule.paths or ()),
                )
            )
        return tuple(rules)

    # -- structure --------------------------------------------------------------------------

    def hosts(self) -> dict[str, m.Host]:
        if not self.catalog.hosts:
            return self.assigned_hosts()
        hosts = {}
        for name, host in self.catalog.hosts.items():
            local = host.local_address or default_local_address(host.address)
            hosts[name] = m.Host(name=name, address=host.address, local_address=local, hosts_file=host.hosts_file)
        self.check_local_addresses(hosts)
        return hosts

    def assigned_hosts(self) -> dict[str, m.Host]:
        """A catalog without `hosts` runs on this machine: each host name it uses gets its own
        loopback address, 127.77.0.1 upwards in name order, so every run assigns the same. Only
        the lower half of each /24 is assigned: the upper half holds the hosts' local addresses."""
        names = {i.host for s in self.catalog.services.values() for v in s.versions.values() for i in v.instances}
        names |= {host for gateway in self.catalog.gateways.values() for host in gateway.hosts}
        tracing = self.catalog.mesh.tracing
        if tracing is not None:
            collector = tracing.collector.rpartition(":")[0]
            if "." not in collector and ":" not in collector:
                names.add(collector)
        metrics = self.catalog.mesh.metrics
        if metrics is not None:
            prometheus = metrics.prometheus.rpartition(":")[0]
            if "." not in prometheus and ":" not in prometheus:
                names.add(prometheus)
        hosts = {}
        for index, name in enumerate(sorted(names)):
            block, offset = divmod(index, 127)
            address = f"127.77.{block}.{offset + 1}"
            hosts[name] = m.Host(
                name=name, address=address, local_address=default_local_address(address), assigned=True
            )
        return hosts

    def check_local_addresses(self, hosts: dict[str, m.Host]) -> None:
        """A host's app must not listen at another host's mesh address."""
        mesh_addresses = {host.address: name for name, host in hosts.items()}
        for name, host in hosts.items():
            owner = mesh_addresses.get(host.local_address)
            if owner is not None and owner != name:
                field = "local_address" if self.catalog.hosts[name].local_address else "address"
                self.problem(
                    ("hosts", name, field),
                    f"local address {host.local_address} is the mesh address of host {owner}; set local_address "
                    "to a loopback address no host uses",
                )

    def host_port(self, value: str, hosts: dict[str, m.Host], path: FieldPath) -> tuple[str, int, bool]:
        """HOST:PORT where HOST is a catalog host, an IP address or a DNS name: (address, port, is an IP)."""
        host, _, port = value.rpartition(":")
        host = host.strip("[]")
        is_ip = True
        if host in hosts:
            host = hosts[host].address
        else:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                is_ip = False
                if not HOSTNAME.match(host):
                    self.problem(path, f"{host!r} is neither a catalog host, an IP address nor a DNS name")
        return host, int(port), is_ip

    def metrics(self, hosts: dict[str, m.Host]) -> m.Metrics | None:
        metrics = self.catalog.mesh.metrics
        if metrics is None:
            return None
        address, port, is_ip = self.host_port(metrics.prometheus, hosts, ("mesh", "metrics", "prometheus"))
        return m.Metrics(prometheus_address=address, prometheus_port=port, prometheus_is_ip=is_ip)

    def dashboard(self, hosts: dict[str, m.Host]) -> m.Dashboard | None:
        value = self.catalog.mesh.dashboard
        if value is None:
            return None
        path: FieldPath = ("mesh", "dashboard")
        address, port, is_ip = self.host_port(value, hosts, path)
        if not (is_ip and _is_loopback_ip(address)):
            self.problem(path, f"the dashboard serves this machine only: a loopback address, got {address}")
        return m.Dashboard(address=address, port=port)

    def tracing(self, hosts: dict[str, m.Host]) -> m.Tracing | None:
        tracing = self.catalog.mesh.tracing
        if tracing is None:
            return None
        host, port, is_ip = self.host_port(tracing.collector, hosts, ("mesh", "tracing", "collector"))
        return m.Tracing(
            provider=tracing.provider,
            collector_address=host,
            collector_port=port,
            collector_is_ip=is_ip,
            sample_percent=tracing.sample_percent,
        )

    def instances(
        self, name: str, service: s.Service, version: str, hosts: dict[str, m.Host]
    ) -> tuple[m.Instance, ...]:
        sidecar = self.catalog.mesh.sidecar
        result = []
        for index, instance in enumerate(service.versions[version].instances):
            host = hosts.get(instance.host)
            if host is None:
                known = ", ".join(sorted(hosts)) or "none defined"
                self.problem(
                    ("services", name, "versions", version, "instances", index, "host"),
                    f"unknown host {instance.host!r} (hosts: {known})",
                )
                continue
            if instance.workdir is not None and instance.command is None:
                self.problem(
                    ("services", name, "versions", version, "instances", index, "workdir"),
                    "a working directory is for a `command`: the demo app needs none",
                )
            result.append(
                m.Instance(
                    service=name,
                    version=version,
                    host=host,
                    app_port=instance.port or service.port,
                    inbound_port=instance.inbound_port or sidecar.inbound_port,
                    outbound_port=instance.outbound_port or sidecar.outbound_port,
                    admin_port=instance.admin_port or sidecar.admin_port,
                    stats_port=instance.stats_port or sidecar.stats_port,
                    command=tuple(instance.command) if instance.command else None,
                    env=tuple(sorted(instance.env.items())),
                    workdir=instance.workdir,
                )
            )
        return tuple(result)

    def header_matches(self, headers: s.HeaderMatches, path: FieldPath) -> tuple[m.HeaderMatch, ...]:
        result = []
        for header, match in sorted(headers.items()):
            given = [k for k, v in match.model_dump(exclude_none=True).items()]
            if len(given) != 1:
                self.problem(
                    (*path, header), f"expected exactly one of exact, prefix, regex, present; got {given or 'none'}"
                )
                continue
            result.append(m.HeaderMatch(name=header.lower(), **match.model_dump(exclude_none=True)))
        return tuple(result)

    def routes(self, name: str, service: s.Service) -> tuple[m.Route, ...]:
        versions = set(service.versions)
        base: FieldPath = ("services", name)
        if not service.routes:
            weights = tuple((v, len(version.instances)) for v, version in service.versions.items())
            return (
                m.Route(
                    name="default",
                    match=m.Match(prefix="/"),
                    weights=weights,
                    timeout=self.timeout(service.timeout),
                    retries=self.retries(service.protocol, service.retries),
                ),
            )
        routes = []
        seen_names: dict[str, int] = {}
        for index, route in enumerate(service.routes):
            path = (*base, "routes", index)
            route_name = route.name or f"route-{index}"
            if route_name in seen_names:
                self.problem(
                    (*path, "name"), f"duplicate route name {route_name!r} (also routes[{seen_names[route_name]}])"
                )
            seen_names[route_name] = index
            for version in route.to:
                if version not in versions:
                    self.problem(
                        (*path, "to", version), f"unknown version {version!r} (versions: {', '.join(sorted(versions))})"
                    )
            if not any(route.to.values()):
                self.problem((*path, "to"), "expected at least one version with a weight above 0")
            if route.match.prefix is not None and route.match.path is not None:
                self.problem((*path, "match"), "give either prefix or path, not both")
            mirror = None
            if route.mirror is not None:
                if route.mirror.to not in versions:
                    self.problem(
                        (*path, "mirror", "to"),
                        f"unknown version {route.mirror.to!r} (versions: {', '.join(sorted(versions))})",
                    )
                mirror = m.Mirror(version=route.mirror.to, percent=route.mirror.percent)
            fault = None
            if route.fault is not None:
                if route.fault.delay is None and route.fault.abort is None:
                    self.problem((*path, "fault"), "expected delay, abort or both")
                fault = m.Fault(
                    delay=route.fault.delay.duration if route.fault.delay else None,
                    delay_percent=route.fault.delay.percent if route.fault.delay else 0.0,
                    abort_status=route.fault.abort.status if route.fault.abort else None,
                    abort_percent=route.fault.abort.percent if route.fault.abort else 0.0,
                    headers=self.header_matches(route.fault.headers, (*path, "fault", "headers")),
                )
            routes.append(
                m.Route(
                    name=route_name,
                    match=m.Match(
                        prefix=route.match.prefix if route.match.path is None else None,
                        path=route.match.path,
                        headers=self.header_matches(route.match.headers, (*path, "match", "headers")),
                        methods=tuple(route.match.methods or ()),
                        callers=self.route_callers(name, route.match.callers, (*path, "match", "from")),
                    ),
                    weights=tuple((v, w) for v, w in route.to.items() if w > 0),
                    timeout=self.timeout(route.timeout, service.timeout),
                    retries=self.retries(service.protocol, service.retries, route.retries),
                    fault=fault,
                    mirror=mirror,
                )
            )
        return tuple(routes)

    def route_callers(self, name: str, callers: list[str] | None, path: FieldPath) -> tuple[str, ...]:
        """A route for some callers: each must call the service, or the route would apply to nobody."""
        for caller in callers or ():
            spec = self.catalog.services.get(caller)
            declared = spec is not None and any(
                d.service == name
                for d in [*spec.dependencies, *(x for v in spec.versions.values() for x in v.dependencies)]
            )
            gateway = self.catalog.gateways.get(caller)
            if gateway is not None:  # a gateway "calls" the services its routes go to
                declared = any(route.service == name for route in gateway.routes)
            if not declared:
                self.problem(
                    path, f"{caller!r} does not call {name} (declare the dependency), so the route never applies"
                )
        return tuple(callers or ())

    def check_tcp_service(self, name: str, service: s.Service) -> None:
        base: FieldPath = ("services", name)
        for field in ("retries", "rate_limit"):
            if getattr(service, field) is not None:
                self.problem((*base, field), "not available for protocol tcp (an HTTP feature)")
        breaker = service.circuit_breaker
        if breaker is not None and breaker.max_requests_per_connection is not None:
            self.problem((*base, "circuit_breaker", "max_requests_per_connection"), "not available for protocol tcp")
        if len(service.routes) > 1:
            self.problem((*base, "routes"), "a tcp service takes at most one route: a weighted split without match")
        for index, route in enumerate(service.routes):
            for field in ("retries", "fault", "mirror", "timeout"):
                if getattr(route, field) is not None:
                    self.problem((*base, "routes", index, field), "not available for protocol tcp")
            if route.match != s.Match():
                self.problem((*base, "routes", index, "match"), "tcp routes cannot match on paths or headers")

    def dependencies(
        self, name: str, service: s.Service, protocols: Mapping[str, str]
    ) -> tuple[tuple[m.Dependency, ...], dict[str, tuple[str, ...]]]:
        """Everything any version of the service calls (service-level first), and per version the
        targets its instances call: the service's dependencies and the version's own."""
        declared: list[tuple[FieldPath, s.Dependency, str | None]] = [
            (("services", name, "dependencies", index), d, None) for index, d in enumerate(service.dependencies)
        ]
        for version, spec in service.versions.items():
            declared += [
                (("services", name, "versions", version, "dependencies", index), d, version)
                for index, d in enumerate(spec.dependencies)
            ]
        result: list[m.Dependency] = []
        first: dict[str, tuple[s.Dependency, str | None]] = {}
        calls: dict[str, list[str]] = {version: [] for version in service.versions}
        for path, dependency, owner in declared:
            target = dependency.service
            if target in first:
                previous, where = first[target]
                if where is None or owner is None or where == owner:
                    self.problem((*path, "service"), f"duplicate dependency {target!r}")
                elif previous != dependency:
                    self.problem(path, f"{target!r} is declared differently by version {where}: say it the same way")
                else:
                    calls[owner].append(target)
                continue
            first[target] = (dependency, owner)
            for each in [owner] if owner is not None else list(calls):
                calls[each].append(target)
            found = self.dependency(path, dependency, protocols)
            if found is not None:
                result.append(found)
        known = {d.target for d in result}
        return tuple(result), {v: tuple(t for t in targets if t in known) for v, targets in calls.items()}

    def dependency(
        self, path: FieldPath, dependency: s.Dependency, protocols: Mapping[str, str]
    ) -> m.Dependency | None:
        target = dependency.service
        if target not in protocols:
            known = ", ".join(sorted(protocols))
            self.problem((*path, "service"), f"unknown dependency {target!r} (services and external: {known})")
            return None
        is_tcp = protocols[target] == "tcp"
        if dependency.rate_limit is not None and is_tcp:
            self.problem((*path, "rate_limit"), "not available for tcp dependencies")
        local_port = dependency.local_port
        if local_port is None and (is_tcp or dependency.address is not None):
            local_port = (
                self.catalog.services[target].port
                if target in self.catalog.services
                else self.catalog.external[target].port
            )
        return m.Dependency(
            target=target,
            external=target in self.catalog.external,
            local_port=local_port,
            rate_limit=self.rate_limit(dependency.rate_limit, (*path, "rate_limit")),
            protocol=protocols[target],
            local_address=dependency.address,
        )

    def externals(self) -> tuple[m.External, ...]:
        result = []
        for name, external in self.catalog.external.items():
            path: FieldPath = ("external", name)
            try:
                ipaddress.ip_address(external.address)
            except ValueError:
                if not HOSTNAME.match(external.address):
                    self.problem((*path, "address"), f"expected a DNS name or IP address, got {external.address!r}")
            if external.protocol == "tcp" and external.retries is not None:
                self.problem((*path, "retries"), "not available for protocol tcp")
            result.append(
                m.External(
                    name=name,
                    address=external.address,
                    port=external.port,
                    protocol=external.protocol,
                    tls=external.tls,
                    sni=external.sni or (external.address if external.tls else None),
                    ca_file=external.ca_file,
                    timeout=self.timeout(external.timeout),
                    connect_timeout=self.connect_timeout(external.connect_timeout),
                    retries=self.retries(external.protocol, external.retries),
                    circuit_breaker=self.circuit_breaker(external.circuit_breaker),
                    client_cert=external.client_certificate.cert if external.client_certificate else None,
                    client_key=external.client_certificate.key if external.client_certificate else None,
                    hosts=tuple(external.hosts),
                )
            )
            for index, name_ in enumerate(external.hosts):
                if not HOSTNAME.match(name_):
                    self.problem((*path, "hosts", index), f"expected a DNS name, got {name_!r}")
            if external.client_certificate is not None and not external.tls:
                self.problem((*path, "client_certificate"), "needs tls: true")
        return tuple(result)

    # -- whole mesh ---------------------------------------------------------------------------

    def resolve(self) -> m.Mesh:
        catalog = self.catalog
        for name in sorted(set(catalog.services) & set(catalog.external)):
            self.problem(("external", name), f"duplicate name: {name!r} is also a service")
        hosts = self.hosts()
        protocols = {
            **{n: e.protocol for n, e in catalog.external.items()},
            **{n: sv.protocol for n, sv in catalog.services.items()},
        }
        services = []
        for name, service in catalog.services.items():
            if service.protocol == "tcp":
                self.check_tcp_service(name, service)
            dependencies, calls = self.dependencies(name, service, protocols)
            versions = tuple(
                m.Version(
                    name=version,
                    instances=self.instances(name, service, version, hosts),
                    labels=tuple(sorted(spec.labels.items())),
                    image=spec.image,
                    calls=calls[version],
                )
                for version, spec in service.versions.items()
            )
            services.append(
                m.Service(
                    name=name,
                    protocol=service.protocol,
                    port=service.port,
                    edge=service.edge,
                    versions=versions,
                    dependencies=dependencies,
                    routes=self.routes(name, service),
                    timeout=self.timeout(service.timeout),
                    connect_timeout=self.connect_timeout(service.connect_timeout),
                    circuit_breaker=self.circuit_breaker(service.circuit_breaker),
                    health_check=self.health_check(
                        service.health_check, service.protocol, ("services", name, "health_check")
                    ),
                    rate_limit=self.rate_limit(service.rate_limit, ("services", name, "rate_limit")),
                    authorization=self.authorization(name, service),
                )
            )
        services = self.inbound_timeouts(services)
        gateways = resolve_gateways(self, hosts, {service.name: service for service in services})
        mesh = m.Mesh(
            name=catalog.mesh.name,
            hosts=tuple(hosts.values()),
            services=tuple(services),
            externals=self.externals(),
            tracing=self.tracing(hosts),
            metrics=self.metrics(hosts),
            dashboard=self.dashboard(hosts),
            access_log=m.AccessLog(format=catalog.mesh.access_log.format, path=catalog.mesh.access_log.path),
            max_downstream_connections=catalog.mesh.sidecar.max_downstream_connections,
            security=self.security(),
            lint_ignores=tuple(
                m.LintIgnore(check=i.check, subject=i.subject, reason=i.reason) for i in catalog.mesh.lint.ignore
            ),
            gateways=gateways,
        )
        self.check_instances_unique(mesh)
        self.check_listener_conflicts(mesh)
        self.check_dependency_addresses(mesh)
        return mesh

    def check_dependency_addresses(self, mesh: m.Mesh) -> None:
        """A dependency's own address is no host's mesh address, and a hosts file gives each
        name one address."""
        mesh_addresses = {host.address: host.name for host in mesh.hosts}
        for service in mesh.services:
            for index, dependency in enumerate(service.dependencies):
                owner = mesh_addresses.get(dependency.local_address or "")
                if owner is not None:
                    self.problem(
                        ("services", service.name, "dependencies", index, "address"),
                        f"{dependency.local_address} is the mesh address of host {owner}",
                    )
        for host in mesh.hosts:
            for name, addresses in name_conflicts(mesh, host).items():
                self.problem(
                    ("hosts", host.name, "hosts_file"),
                    f"the hosts file would give {name} two addresses ({', '.join(addresses)}): instances on "
                    f"{host.name} call it at different addresses; give them one",
                )

    def check_instances_unique(self, mesh: m.Mesh) -> None:
        seen: set[str] = set()
        for service in mesh.services:
            for version in service.versions:
                for index, instance in enumerate(version.instances):
                    if instance.id in seen:
                        self.problem(
                            ("services", service.name, "versions", version.name, "instances", index),
                            f"duplicate instance: {service.name} {version.name} is already on host "
                            f"{instance.host.name}",
                        )
                    seen.add(instance.id)

    def check_listener_conflicts(self, mesh: m.Mesh) -> None:
        """Sockets on one machine, address and port cannot both bind: name every owner.

        Hosts on loopback addresses share this machine; a host with any other address is a
        machine of its own (and so is every host written with that same address).
        """
        owners: dict[tuple[str, str, int], list[tuple[str, FieldPath]]] = defaultdict(list)
        for service in mesh.services:
            for version in service.versions:
                for index, instance in enumerate(version.instances):
                    path: FieldPath = ("services", service.name, "versions", version.name, "instances", index)
                    address = instance.host.address
                    machine = "loopback" if ipaddress.ip_address(address).is_loopback else address
                    for socket in service.sockets(instance):
                        where = path
                        if socket.dependency is not None:
                            where = ("services", service.name, "dependencies", socket.dependency, "local_port")
                        owners[(machine, socket.address, socket.port)].append((f"{instance.id} {socket.owner}", where))
        metrics = mesh.metrics
        if metrics is not None and metrics.prometheus_is_ip:
            address = metrics.prometheus_address
            machine = "loopback" if ipaddress.ip_address(address).is_loopback else address
            owners[(machine, address, metrics.prometheus_port)].append(
                ("prometheus", ("mesh", "metrics", "prometheus"))
            )
        dashboard = mesh.dashboard
        if dashboard is not None and _is_loopback_ip(dashboard.address):
            owners[("loopback", dashboard.address, dashboard.port)].append(("dashboard", ("mesh", "dashboard")))
        for gateway in mesh.gateways:
            for index, instance in enumerate(gateway.instances):
                address = instance.host.address
                machine = "loopback" if ipaddress.ip_address(address).is_loopback else address
                for socket in gateway.sockets(instance):
                    claim = (f"{instance.id} {socket.owner}", ("gateways", gateway.name, "hosts", index))
                    owners[(machine, socket.address, socket.port)].append(claim)
        for (_, address, port), claims in sorted(owners.items()):
            if len(claims) > 1:
                names = "; ".join(owner for owner, _ in claims)
                count = "two" if len(claims) == 2 else str(len(claims))
                self.problem(claims[-1][1], f"{count} listeners on {address}:{port}: {names}")


def resolve(catalog: s.Catalog, sources: SourceMap, origin: str = "") -> m.Mesh:
    source = Path(origin or ".").resolve()
    resolver = _Resolver(catalog, sources, source if source.is_dir() else source.parent)
    mesh = resolver.resolve()
    if resolver.problems:
        raise CatalogError(resolver.problems)
    return dataclasses.replace(mesh, origin=origin, sources=sources)


def _is_loopback_ip(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
