"""The checks: each derived from what the catalog declares, each able to fail.

Verification stands in for a caller's app: it sends requests to a caller's sidecar with the
callee's name as Host, exactly as an app does, and reads the demo app's answers (which version
and instance answered), Envoy's admin counters, the demo app's counters and the trace collector.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from meshgen.analysis.callgraph import adjacency
from meshgen.model.mesh import IDEMPOTENT_METHODS, Mesh, Route, Service
from meshgen.render.envoy import names
from meshgen.verify.http import Reply, ejected_hosts, envoy_stat, run_all, send, send_many
from meshgen.verify.requests import NoProbe, Probe, probe_for
from meshgen.verify.stats import share_ok
from meshgen.verify.targets import Caller, app_address, caller_of, inbound_address

# Run order: outlier detection before the checks that make instances fail on purpose (their
# failures could eject a host first), rate limits last (they drain token buckets).
KINDS = ("routing", "outlier", "retries", "timeout", "fault", "mirror", "tracing", "ratelimit")
ROUTING_SAMPLES = 400
TIMEOUT_MARGIN_SECONDS = 0.5


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


def _through(caller: Caller, service: Service, probe: Probe, extra: dict[str, str] | None = None) -> Reply:
    address, port = caller.outbound
    headers = {**probe.headers, **(extra or {}), "Host": service.name}
    return send(address, port, probe.path, headers=headers, method=probe.method)


@dataclass(frozen=True)
class Target:
    """A route some service calls, the caller's sidecar to call it through, and a request for it."""

    service: Service
    route: Route
    caller: Caller
    probe: Probe

    @property
    def name(self) -> str:
        return f"{self.service.name}/{self.route.name}"

    def send(self, extra: dict[str, str] | None = None) -> Reply:
        return _through(self.caller, self.service, self.probe, extra)


def _targets(
    mesh: Mesh, kind: str, applies: Callable[[Route], bool] = lambda route: True
) -> Iterator[Target | Skipped]:
    """Every HTTP route `applies` selects, as a Target, or Skipped with the reason it cannot be checked."""
    for service in mesh.services:
        if not service.is_http:
            continue
        caller = caller_of(mesh, service)
        for index, route in enumerate(service.routes):
            if not applies(route):
                continue
            name = f"{service.name}/{route.name}"
            if caller is None:
                yield Skipped(kind, name, "no service calls it, so no sidecar applies its routes")
                continue
            try:
                yield Target(service, route, caller, probe_for(route, service.routes[:index]))
            except NoProbe as exc:
                yield Skipped(kind, name, str(exc))


def _expected_fault_free(route: Route) -> bool:
    """True when plain requests on this route are not subject to injected aborts."""
    return route.fault is None or bool(route.fault.headers) or route.fault.abort_status is None


# -- routing ---------------------------------------------------------------------------------


def check_routing(mesh: Mesh) -> Iterator[Outcome]:
    for target in _targets(mesh, "routing"):
        if isinstance(target, Skipped):
            yield target
            continue
        name, route = target.name, target.route
        if not _expected_fault_free(route):
            yield Skipped("routing", name, "every request on it may be aborted by an injected fault")
            continue
        samples = 20 if len(route.weights) == 1 else ROUTING_SAMPLES
        replies = send_many(samples, target.send)
        answered = Counter(r.version for r in replies if r.status == 200)
        failed = samples - sum(answered.values())
        if failed:
            statuses = Counter(r.status for r in replies if r.status != 200)
            yield CheckResult("routing", name, False, f"{failed}/{samples} requests failed: {dict(statuses)}")
            continue
        problems = []
        for version, share in route.shares():
            ok, allowed = share_ok(answered.get(version, 0), samples, share / 100)
            if not ok:
                observed = 100 * answered.get(version, 0) / samples
                problems.append(f"{version} got {observed:.1f}%, expected {share:.4g}% +/- {100 * allowed:.1f}")
        strays = sorted(str(v) for v in set(answered) - {v for v, _ in route.weights})
        if strays:
            problems.append(f"answered by versions the route does not name: {', '.join(map(str, strays))}")
        observed_text = ", ".join(f"{v} {100 * n / samples:.1f}%" for v, n in sorted(answered.items(), key=str))
        match = route.match.describe()
        if problems:
            yield CheckResult("routing", name, False, f"{match}: " + "; ".join(problems))
        else:
            yield CheckResult("routing", name, True, f"{match}: {observed_text} over {samples} requests")


# -- retries ---------------------------------------------------------------------------------


def _retries_on_503(route: Route) -> bool:
    on = set(route.retries.on)
    return bool(on & {"5xx", "gateway-error"}) or ("retriable-status-codes" in on and 503 in route.retries.status_codes)


def _retry_counter(target: Target) -> int:
    service = target.service.name
    return sum(
        envoy_stat(target.caller.admin, f"cluster.{names.version_cluster(service, v)}.upstream_rq_retry")
        for v, _ in target.route.weights
    )


def check_retries(mesh: Mesh) -> Iterator[Outcome]:
    for target in _targets(mesh, "retries", lambda route: route.retries.attempts > 1):
        if isinstance(target, Skipped):
            yield target
            continue
        name, route, probe = target.name, target.route, target.probe
        attempts = route.retries.attempts
        if not _retries_on_503(route):
            yield Skipped("retries", name, f"retries only on {', '.join(route.retries.on)}, not on a 503 answer")
            continue
        if route.retries.methods == "idempotent" and probe.method not in IDEMPOTENT_METHODS:
            yield Skipped("retries", name, f"its requests are {probe.method}, which is never retried")
            continue
        before = _retry_counter(target)
        within = target.send({"x-demo-fail-attempts": str(attempts - 1)})
        beyond = target.send({"x-demo-fail-attempts": str(attempts)})
        retried = _retry_counter(target) - before
        expected = 2 * (attempts - 1)
        detail = (
            f"fail first {attempts - 1}: {within.status} at attempt "
            f"{within.body.get('attempt') if isinstance(within.body, dict) else '?'}; "
            f"fail first {attempts}: {beyond.status}; Envoy counted {retried} retries (expected {expected})"
        )
        passed = within.status == 200 and beyond.status == 503 and retried == expected
        yield CheckResult("retries", name, passed, detail)


# -- timeouts --------------------------------------------------------------------------------


def check_timeouts(mesh: Mesh) -> Iterator[Outcome]:
    pending: list[tuple[str, float, float, Callable[[], Reply]]] = []
    for target in _targets(mesh, "timeout"):
        if isinstance(target, Skipped):
            yield target
            continue
        route = target.route
        limit = route.timeout.seconds
        delay = f"{int(limit * 1000) + 1000}ms"
        # No answer can come before the first try gives up: its per-try limit, or the route's.
        per_try = route.retries.per_try_timeout if route.retries.attempts > 1 else None
        floor = min(limit, per_try.seconds) if per_try else limit
        pending.append((target.name, limit, floor, partial(target.send, {"x-demo-delay": delay})))
    # Each check waits about one timeout: run them side by side.
    replies = run_all([request for *_, request in pending], workers=8)
    for (name, limit, floor, _), reply in zip(pending, replies, strict=True):
        in_time = floor * 0.9 <= reply.elapsed <= limit + TIMEOUT_MARGIN_SECONDS
        passed = reply.status == 504 and in_time
        yield CheckResult(
            "timeout",
            name,
            passed,
            f"delay beyond {limit:g}s answered {reply.status} after {reply.elapsed:.2f}s "
            f"(expected 504 after {floor:g}s to {limit + TIMEOUT_MARGIN_SECONDS:g}s)",
        )


# -- faults ----------------------------------------------------------------------------------


def check_faults(mesh: Mesh) -> Iterator[Outcome]:
    for target in _targets(mesh, "fault", lambda route: route.fault is not None):
        if isinstance(target, Skipped):
            yield target
            continue
        fault = target.route.fault
        assert fault is not None
        trigger = {h.name: h.exact or h.prefix or "1" for h in fault.headers}
        samples = 40
        faulted = send_many(samples, partial(target.send, trigger), workers=8)
        problems: list[str] = []
        seen: list[str] = []
        if fault.abort_status is not None:
            aborted = sum(1 for r in faulted if r.status == fault.abort_status and r.version is None)
            ok, allowed = share_ok(aborted, samples, fault.abort_percent / 100)
            seen.append(f"aborted {aborted}/{samples} (expected {fault.abort_percent:g}%)")
            if not ok:
                problems.append(
                    f"aborts {100 * aborted / samples:.0f}%, expected {fault.abort_percent:g}% +/- {100 * allowed:.0f}"
                )
        if fault.delay is not None:
            slow = sum(1 for r in faulted if r.elapsed >= fault.delay.seconds * 0.95)
            ok, allowed = share_ok(slow, samples, fault.delay_percent / 100)
            seen.append(f"delayed {slow}/{samples} (expected {fault.delay_percent:g}%)")
            if not ok:
                problems.append(
                    f"delays {100 * slow / samples:.0f}%, expected {fault.delay_percent:g}% +/- {100 * allowed:.0f}"
                )
        if fault.headers:
            plain = send_many(samples, target.send, workers=8)
            hit = [
                r
                for r in plain
                if r.status != 200 or (fault.delay is not None and r.elapsed >= fault.delay.seconds * 0.95)
            ]
            seen.append(f"without the header: {len(hit)}/{samples} faulted")
            if hit:
                problems.append(f"{len(hit)} requests without {', '.join(trigger)} were faulted too")
        yield CheckResult("fault", target.name, not problems, "; ".join(problems or seen))


# -- mirror ----------------------------------------------------------------------------------


def _demo_stats(address: tuple[str, int], reset: bool = False) -> dict[str, int]:
    # The demo app's control endpoints answer callers on its own host only: call from its address.
    reply = send(address[0], address[1], "/_demo/stats", method="DELETE" if reset else "GET", source=address[0])
    if not isinstance(reply.body, dict):
        return {}
    return {k: v for k, v in reply.body.items() if isinstance(v, int)}


def check_mirrors(mesh: Mesh) -> Iterator[Outcome]:
    for target in _targets(mesh, "mirror", lambda route: route.mirror is not None):
        if isinstance(target, Skipped):
            yield target
            continue
        route = target.route
        mirror = route.mirror
        assert mirror is not None
        shadows = [app_address(i) for i in target.service.version(mirror.version).instances]
        for shadow in shadows:
            _demo_stats(shadow, reset=True)
        samples = 200
        replies = send_many(samples, target.send)
        primaries = {v for v, _ in route.weights}
        seen_by_callers = Counter(r.version for r in replies)
        mirrored = _settled(partial(_mirrored_count, shadows))
        ok, allowed = share_ok(mirrored, samples, mirror.percent / 100)
        wrong = sorted(str(v) for v in set(seen_by_callers) - primaries)
        failed = sum(1 for r in replies if r.status != 200)
        detail = (
            f"{mirror.version} received {mirrored} shadow copies of {samples} requests "
            f"(expected {mirror.percent:g}% +/- {100 * allowed:.0f}); callers saw {dict(seen_by_callers)}"
        )
        if wrong:
            detail += f"; callers got answers from {', '.join(wrong)}"
        yield CheckResult("mirror", target.name, ok and not wrong and not failed, detail)


def _mirrored_count(shadows: list[tuple[str, int]]) -> int:
    return sum(_demo_stats(address).get("mirrored", 0) for address in shadows)


def _settled(read: Callable[[], int], wait: float = 3.0) -> int:
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


# -- tracing ---------------------------------------------------------------------------------


def longest_chain(mesh: Mesh) -> list[str]:
    graph = adjacency(mesh)
    http = {s.name for s in mesh.services if s.is_http}
    best: list[str] = []

    def walk(chain: list[str]) -> None:
        nonlocal best
        if len(chain) > len(best):
            best = chain
        for edge in graph.get(chain[-1], []):
            if edge.callee in http and edge.callee not in chain:
                walk([*chain, edge.callee])

    for entry in mesh.entry_services:
        if entry.is_http:
            walk([entry.name])
    return best


def _collector_trace(
    mesh: Mesh, trace_id: str, complete: Callable[[list[dict[str, object]]], bool]
) -> list[dict[str, object]]:
    """The trace's spans once `complete` says so, or what arrived by the deadline. Each Envoy
    flushes its spans on its own schedule (at most every 5 s), so spans arrive in batches."""
    assert mesh.tracing is not None
    deadline = time.monotonic() + 15.0
    spans: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        reply = send(mesh.tracing.collector_address, mesh.tracing.collector_port, f"/api/v2/trace/{trace_id}")
        if reply.status == 200 and isinstance(reply.body, list):
            spans = reply.body
            if complete(spans):
                return spans
        time.sleep(0.25)
    return spans


def check_tracing(mesh: Mesh) -> Iterator[Outcome]:
    if mesh.tracing is None:
        return
    chain = longest_chain(mesh)
    name = " -> ".join(chain)
    if not chain:
        yield Skipped("tracing", "chain", "no HTTP entry service")
        return
    entry = mesh.service(chain[0])
    trace_id = uuid.uuid4().hex
    root_span = uuid.uuid4().hex[:16]
    headers = {"x-b3-traceid": trace_id, "x-b3-spanid": root_span, "x-b3-sampled": "1"}
    if len(chain) > 1:
        headers["x-demo-call"] = ">".join(chain[1:])
    address, port = inbound_address(entry.instances[0])
    reply = send(address, port, "/", headers=headers)
    # One server span where a request enters a sidecar, one client span where it leaves.
    expected = 1 + 2 * (len(chain) - 1)
    spans = _collector_trace(mesh, trace_id, lambda found: not _chain_problems(found, chain, root_span, expected))
    problems = [] if reply.status == 200 else [f"the request through the chain answered {reply.status}"]
    problems += _chain_problems(spans, chain, root_span, expected)
    detail = "; ".join(problems) or (
        f"{expected} sidecar hops, each span the child of the one before ({len(spans)} spans in the trace)"
    )
    yield CheckResult("tracing", name, not problems, detail)


def _chain_problems(spans: list[dict[str, object]], chain: list[str], root_parent: str, expected: int) -> list[str]:
    """Problems unless the spans hold a path, root first, of one span per sidecar hop, each the
    child of the one before: SERVER of chain[0], CLIENT of chain[0], SERVER of chain[1], ...
    Other branches (mirrored copies, retries) may hang off the path."""
    children: dict[str, list[dict[str, object]]] = {}
    for span in spans:
        children.setdefault(str(span.get("parentId", "")), []).append(span)

    def want(hop: int) -> tuple[str, str]:
        return ("SERVER" if hop % 2 == 0 else "CLIENT"), chain[hop // 2]  # a client span is its caller's

    def deepest(parent: str, hop: int) -> int:
        """How many hops from `hop` on the spans under `parent` cover."""
        if hop == expected:
            return 0
        kind, service = want(hop)
        best = 0
        for span in children.get(parent, []):
            endpoint = span.get("localEndpoint")
            name = endpoint.get("serviceName") if isinstance(endpoint, dict) else None
            if span.get("kind") == kind and name == service:
                best = max(best, 1 + deepest(str(span["id"]), hop + 1))
        return best

    covered = deepest(root_parent, 0)
    if covered == expected:
        return []
    kind, service = want(covered)
    return [
        f"the trace breaks after {covered} of {expected} hops: no {kind} span of {service} follows ({len(spans)} spans)"
    ]


# -- outlier detection -------------------------------------------------------------------------


def check_outliers(mesh: Mesh) -> Iterator[Outcome]:
    for service in mesh.services:
        for version in service.versions:
            if not service.is_http or len(version.instances) < 2:
                continue
            found = [
                t
                for t in _targets(mesh, "outlier", partial(_sends_to, version.name))
                if t.name.split("/")[0] == service.name
            ]
            target = next((t for t in found if isinstance(t, Target)), None)
            if target is None:
                reason = found[0].reason if found and isinstance(found[0], Skipped) else "no route sends traffic to it"
                yield Skipped("outlier", f"{service.name}/{version.name}", reason)
                continue
            yield _outlier_check(target, version.name)


def _sends_to(version: str, route: Route) -> bool:
    return version in dict(route.weights)


def _outlier_check(target: Target, version: str) -> CheckResult:
    service, route, caller = target.service, target.route, target.caller
    name = f"{service.name}/{version}"
    instances = service.version(version).instances
    bad, good = instances[0], instances[1:]
    bad_endpoint = "{}:{}".format(*inbound_address(bad))
    cluster = names.version_cluster(service.name, version)
    breaker = service.circuit_breaker
    # Ejections from earlier failures (another check, a previous run) must expire first, or the
    # ejection limit may leave no room to eject the instance this check breaks.
    left = _wait(lambda: not ejected_hosts(caller.admin, cluster), breaker.ejection_time.seconds * 4 + 10)
    if not left:
        still = ", ".join(sorted(ejected_hosts(caller.admin, cluster)))
        return CheckResult("outlier", name, False, f"{still} stayed ejected from earlier failures")
    set_fault(app_address(bad), {"fail_percent": 100})
    try:
        # Enough requests for the bad instance to fail consecutive_5xx times, whatever the split.
        weights = dict(route.weights)
        share = weights[version] / sum(weights.values())
        budget = min(2000, int(4 * breaker.consecutive_5xx * len(instances) / share))
        for _ in range(budget):
            if bad_endpoint in ejected_hosts(caller.admin, cluster):
                break
            target.send()
        ejected = bad_endpoint in ejected_hosts(caller.admin, cluster)
        before = _demo_stats(app_address(bad)).get("requests", 0)
        replies = send_many(20, target.send)
        reached_bad = _demo_stats(app_address(bad)).get("requests", 0) - before
        answered_by = Counter(r.instance for r in replies if r.version == version and r.status == 200)
    finally:
        set_fault(app_address(bad), {})
    good_ids = {i.id for i in good}
    passed = ejected and reached_bad == 0 and bool(answered_by) and set(answered_by) <= good_ids
    detail = (
        f"{bad.id} failing: {'ejected' if ejected else 'NOT ejected'} by {caller.instance.id}'s sidecar; "
        f"afterwards it got {reached_bad} requests, {version} answers came from {dict(answered_by)}"
    )
    return CheckResult("outlier", name, passed, detail)


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
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


# -- rate limits -------------------------------------------------------------------------------


def _limited(name: str, limit_requests: int, per: float, burst: int, request: Callable[[], Reply]) -> CheckResult:
    samples = burst + 2 * limit_requests + 20
    started = time.monotonic()
    replies = send_many(samples, request, workers=8)
    elapsed = time.monotonic() - started
    # What the limiter let through may still fail further on; only 429 is the limiter's answer.
    limited = sum(1 for r in replies if r.status == 429)
    passed_count = len(replies) - limited
    allowed = burst + limit_requests * (elapsed / per) + limit_requests  # one refill of slack
    # A full bucket lets `burst` through at once: fewer means the limit is tighter than declared.
    ok = limited > 0 and burst * 0.9 <= passed_count <= allowed
    return CheckResult(
        "ratelimit",
        name,
        ok,
        f"{samples} requests in {elapsed:.2f}s: {passed_count} passed, {limited} answered 429 "
        f"(the bucket allows {burst} to {allowed:.0f} in that time)",
    )


def check_rate_limits(mesh: Mesh) -> Iterator[Outcome]:
    for service in mesh.services:
        if service.rate_limit is not None:
            limit = service.rate_limit
            instance = service.instances[0]
            address, port = inbound_address(instance)
            yield _limited(
                f"{service.name} inbound ({instance.id})",
                limit.requests,
                limit.per.seconds,
                limit.burst,
                partial(send, address, port, "/", headers={"Host": service.name}),
            )
        for dependency in service.dependencies:
            if dependency.rate_limit is None or not service.instances:
                continue
            limit = dependency.rate_limit
            caller = Caller(service.instances[0])
            address, port = caller.outbound
            yield _limited(
                f"{service.name} -> {dependency.target}",
                limit.requests,
                limit.per.seconds,
                limit.burst,
                partial(send, address, port, "/", headers={"Host": dependency.target}),
            )


CHECKS: dict[str, Callable[[Mesh], Iterator[Outcome]]] = {
    "routing": check_routing,
    "retries": check_retries,
    "timeout": check_timeouts,
    "fault": check_faults,
    "mirror": check_mirrors,
    "tracing": check_tracing,
    "outlier": check_outliers,
    "ratelimit": check_rate_limits,
}


def run_checks(mesh: Mesh, kinds: tuple[str, ...] = KINDS) -> tuple[list[CheckResult], list[Skipped]]:
    """Run the checks of `kinds` in the fixed order of KINDS."""
    results: list[CheckResult] = []
    skipped: list[Skipped] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        for outcome in CHECKS[kind](mesh):
            if isinstance(outcome, CheckResult):
                results.append(outcome)
            else:
                skipped.append(outcome)
    return results, skipped
