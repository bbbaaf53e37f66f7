"""What every kind of check shares: results, targets (a route, a caller, a request), demo app knobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meshgen.model.gateway_routes import compose
from meshgen.model.mesh import Mesh, RateLimit, Route, Service
from meshgen.render.envoy.gateway import gateway_dependencies
from meshgen.verify.http import Reply, send
from meshgen.verify.requests import NoProbe, Probe, probe_for
from meshgen.verify.targets import Caller, caller_of


@dataclass(frozen=True)
class CheckResult:
    kind: str
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Skipped:
    kind: str
    name: str
    reason: str


Outcome = CheckResult | Skipped


def through(
    caller: Caller, service: Service, probe: Probe, extra: dict[str, str] | None = None, host: str | None = None
) -> Reply:
    address, port = caller.outbound
    headers = {**probe.headers, **(extra or {}), "Host": host or service.name}
    return send(address, port, probe.path, headers=headers, method=probe.method)


@dataclass(frozen=True)
class Target:
    """A route some service calls, the caller's sidecar to call it through, and a request for it."""

    service: Service
    route: Route
    caller: Caller
    probe: Probe
    host: str | None = None  # the Host to send; None: the service's name
    limits: tuple[RateLimit, ...] = ()  # rate limits on the way besides the service's and the dependency's

    @property
    def name(self) -> str:
        return f"{self.service.name}/{self.route.name}"

    @property
    def workers(self) -> int:
        """Requests in flight at once that stay within the callee's circuit breaker: verification
        must not trip the limits the catalog declares (HTTP/1.1 takes a connection per request)."""
        breaker = self.service.circuit_breaker
        limit = breaker.max_requests if self.service.protocol in ("http2", "grpc") else breaker.max_connections
        return max(1, min(4, limit, breaker.max_requests))

    @property
    def budget(self) -> int | None:
        """At most this many requests in a row stay clear of a rate limit on the way (the bucket's
        size), or None when no limit applies."""
        limits = [self.service.rate_limit, *self.limits]
        dependency = next(d for d in self.caller.service_dependencies if d.target == self.service.name)
        limits.append(dependency.rate_limit)
        sizes = [limit.burst for limit in limits if limit is not None]
        return min(sizes) if sizes else None

    def send(self, extra: dict[str, str] | None = None) -> Reply:
        return through(self.caller, self.service, self.probe, extra, self.host)


def targets(mesh: Mesh, kind: str, applies: Callable[[Route], bool] = lambda route: True) -> Iterator[Target | Skipped]:
    """Every HTTP route `applies` selects, as a Target, or Skipped with the reason it cannot be checked."""
    for service in mesh.services:
        if not service.is_http:
            continue
        for index, route in enumerate(service.routes):
            if not applies(route):
                continue
            name = f"{service.name}/{route.name}"
            caller = caller_of(mesh, service, route.match.callers)
            if caller is None:
                yield gateway_target(mesh, kind, service, route) or Skipped(
                    kind, name, "no service or gateway calls it, so no Envoy applies its routes"
                )
                continue
            # The caller's sidecar has only the routes that apply to it.
            earlier = tuple(r for r in service.routes[:index] if r.match.applies_to(caller.instance.service))
            try:
                yield Target(service, route, caller, probe_for(route, earlier))
            except NoProbe as exc:
                yield Skipped(kind, name, str(exc))


def gateway_target(mesh: Mesh, kind: str, service: Service, route: Route) -> Target | Skipped | None:
    """The route as a gateway applies it: through the first gateway route that sends to the
    service and lets this route match, with a Host that gateway route answers and a request no
    earlier route of that Host takes. None when no gateway sends to the service."""
    for gateway in mesh.gateways_to(service.name):
        if not route.match.applies_to(gateway.name):
            continue
        for index, entry in enumerate(gateway.routes):
            if entry.service != service.name:
                continue
            composed = compose(entry, service, gateway.name)
            mine = next((r for r in composed if r.name == route.name), None)
            if mine is None:
                continue
            host = next((d for d in entry.domains if d != "*"), service.name)
            earlier = [
                r
                for before in gateway.routes[:index]
                if host in before.domains or "*" in before.domains
                for r in compose(before, mesh.service(before.service), gateway.name)
            ]
            earlier += composed[: composed.index(mine)]
            caller = Caller(gateway.instances[0], gateway_dependencies(mesh, gateway))
            limits = tuple(limit for limit in (gateway.rate_limit, entry.rate_limit) if limit is not None)
            try:
                return Target(service, mine, caller, probe_for(mine, tuple(earlier)), host=host, limits=limits)
            except NoProbe as exc:
                return Skipped(kind, f"{service.name}/{route.name}", f"through gateway {gateway.name}: {exc}")
    return None


def expected_fault_free(route: Route) -> bool:
    """True when plain requests on this route are not subject to injected aborts."""
    return route.fault is None or bool(route.fault.headers) or route.fault.abort_status is None


# -- the demo app's knobs, reached from its own host ----------------------------------------


def demo_stats(address: tuple[str, int], reset: bool = False) -> dict[str, int]:
    # The demo app's control endpoints answer callers on its own host only: call from its address.
    reply = send(address[0], address[1], "/_demo/stats", method="DELETE" if reset else "GET", source=address[0])
    if not isinstance(reply.body, dict):
        return {}
    return {k: v for k, v in reply.body.items() if isinstance(v, int)}


def settled(read: Callable[[], int], wait: float = 3.0) -> int:
    """Mirrored requests arrive after the answers: read until the count stops moving."""
    deadline = time.monotonic() + wait
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        current = read()
        if current == last:
            return current
        last = current
    return last


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def set_fault(address: tuple[str, int], faults: dict[str, object]) -> None:
    send(
        address[0],
        address[1],
        "/_demo/faults",
        headers={"Content-Type": "application/json"},
        method="PUT",
        body=json.dumps(faults).encode(),
        source=address[0],
    )
