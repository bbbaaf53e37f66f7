"""Static analysis of a mesh's policies: what no running mesh tells you until it hurts.

- retry amplification: attempts multiply per hop along a call chain;
- retry budgets cut by timeouts: Envoy's route timeout covers every attempt;
- timeout inversions: a caller that gives up before its callee's own calls can finish;
- dependency cycles, services and versions no traffic can reach, routes that can never match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from meshgen.analysis.callgraph import Edge, adjacency, cycles, reachable
from meshgen.analysis.findings import Finding, Thresholds
from meshgen.analysis.security_lint import security_findings
from meshgen.durations import Duration
from meshgen.model.mesh import LintIgnore, Mesh, Route, Timeout, longest, shorter, timeout_text

_MAX_PATHS = 100_000  # enough for any hand-written catalog; beyond it the worst chains are still found first


def _amplification(mesh: Mesh, thresholds: Thresholds) -> list[Finding]:
    graph = adjacency(mesh)
    worst: dict[str, tuple[int, list[Edge]]] = {}
    explored = 0

    def walk(node: str, chain: list[Edge], product: int, visited: set[str]) -> None:
        nonlocal explored
        explored += 1
        if explored > _MAX_PATHS:
            return
        for edge in graph.get(node, []):
            if edge.callee in visited:
                continue  # cycles are their own finding
            total = product * edge.attempts
            path = [*chain, edge]
            if total > worst.get(edge.callee, (0, []))[0]:
                worst[edge.callee] = (total, path)
            walk(edge.callee, path, total, visited | {edge.callee})

    for start in [*(g.name for g in mesh.gateways), *(s.name for s in mesh.entry_services)]:
        walk(start, [], 1, {start})
    findings = []
    for callee, (total, path) in sorted(worst.items()):
        if total <= thresholds.max_amplification or len(path) < 1:
            continue
        services = [path[0].caller, *(e.callee for e in path)]
        factors = " x ".join(str(e.attempts) for e in path)
        findings.append(
            Finding(
                check="amplification",
                subject=" -> ".join(services),
                message=f"one call to {services[0]} can reach {callee} {total} times ({factors} attempts per hop), "
                f"above the limit of {thresholds.max_amplification}",
                details={"chain": services, "attempts_per_hop": [e.attempts for e in path], "requests": total},
            )
        )
    return findings


def _retry_budgets(mesh: Mesh) -> list[Finding]:
    findings = []
    policies = [(f"{s.name}/{r.name}", r.timeout, r.retries) for s in mesh.services for r in s.routes]
    policies += [(f"{e.name} (external)", e.timeout, e.retries) for e in mesh.externals if e.is_http]
    for subject, timeout, retries in policies:
        if retries.attempts < 2:
            continue
        needed = retries.worst_case_duration()
        limit = timeout_text(timeout)
        if needed is None:
            findings.append(
                Finding(
                    check="retry-budget",
                    subject=subject,
                    message=f"{retries.attempts} attempts but no per_try_timeout: one slow try uses the whole "
                    + (f"{limit} route timeout" if timeout else "call, which has no timeout,")
                    + " and leaves nothing to retry with",
                    details={"timeout_ms": timeout.ms if timeout else None, "attempts": retries.attempts},
                )
            )
        elif shorter(timeout, needed):
            assert timeout is not None
            findings.append(
                Finding(
                    check="retry-budget",
                    subject=subject,
                    message=f"route timeout {timeout} cuts retries short: {retries.attempts} attempts x "
                    f"{retries.per_try_timeout} per try plus back-off need up to {needed}",
                    details={"timeout_ms": timeout.ms, "needed_ms": needed.ms, "attempts": retries.attempts},
                )
            )
    return findings


def _plus(timeout: Timeout, margin_ms: int) -> Timeout:
    return None if timeout is None else Duration(timeout.ms + margin_ms)


def _timeout_inversions(mesh: Mesh, thresholds: Thresholds) -> list[Finding]:
    """A caller must wait longer per try than its callee may itself wait on a dependency. Giving
    up exactly when the callee may still be waiting leaves no headroom: a warning, not an error."""
    graph = adjacency(mesh)
    findings = []
    for caller_edges in graph.values():
        for edge in caller_edges:
            downstream = graph.get(edge.callee, [])
            patience = edge.per_try_timeout or edge.timeout
            if not downstream or patience is None:
                continue  # a caller without a limit never gives up first
            slowest_wait = longest(e.timeout for e in downstream)
            slowest = next(e for e in downstream if e.timeout == slowest_wait)
            needed = _plus(slowest_wait, thresholds.min_timeout_margin_ms)
            if not (shorter(patience, needed) or patience == needed):
                continue
            kind = "per try" if edge.per_try_timeout else "in all"
            wait = "without limit" if slowest_wait is None else str(slowest_wait)
            equal = patience == needed
            findings.append(
                Finding(
                    check="timeout-budget",
                    subject=f"{edge.caller} -> {edge.callee} -> {slowest.callee}",
                    message=f"{edge.caller} gives up on {edge.callee} after {patience} {kind}, "
                    + (
                        f"just when {edge.callee} may still be waiting on {slowest.callee}: no headroom"
                        if equal
                        else f"but {edge.callee} may wait {wait} on {slowest.callee}: the caller times out first and "
                        f"{edge.callee}'s work is wasted"
                    ),
                    details={
                        "caller_timeout_ms": patience.ms,
                        "callee_timeout_ms": slowest_wait.ms if slowest_wait else None,
                        "margin_ms": thresholds.min_timeout_margin_ms,
                    },
                    severity="warning" if equal else "error",
                )
            )
    return findings


def _inbound_timeouts(mesh: Mesh) -> list[Finding]:
    """A service's own sidecar must not cut a call into it shorter than the calls it makes below."""
    graph = adjacency(mesh)
    findings = []
    for service in mesh.services:
        below = graph.get(service.name, [])
        if not below or service.inbound_timeout is None:
            continue
        slowest_wait = longest(e.timeout for e in below)
        if shorter(service.inbound_timeout, slowest_wait):
            slowest = next(e for e in below if e.timeout == slowest_wait)
            findings.append(
                Finding(
                    check="inbound-timeout",
                    subject=service.name,
                    message=f"{service.name}'s sidecar cuts calls into it after {service.inbound_timeout}, but it "
                    f"may wait {timeout_text(slowest_wait)} on {slowest.callee}: set its timeout to cover that",
                    details={
                        "inbound_timeout_ms": service.inbound_timeout.ms,
                        "below_ms": slowest_wait.ms if slowest_wait else None,
                    },
                )
            )
    return findings


def _cycles(mesh: Mesh) -> list[Finding]:
    return [
        Finding(
            check="cycle",
            subject=" -> ".join(cycle),
            message="services call each other in a loop: retries and timeouts compound without bound",
            details={"cycle": cycle},
        )
        for cycle in cycles(mesh)
    ]


def _unreachable(mesh: Mesh) -> list[Finding]:
    findings = []
    entries = [s.name for s in mesh.entry_services]
    reached = reachable(mesh, entries)
    for service in mesh.services:
        if service.name not in reached:
            findings.append(
                Finding(
                    check="unreachable",
                    subject=service.name,
                    message="no entry service reaches it (entry services: "
                    + (", ".join(entries) or "none")
                    + "); route a gateway to it, or mark it `edge: true`, if it is called from outside",
                    details={"entries": entries},
                )
            )
        routed = {v for r in service.routes for v, _ in r.weights} | {
            r.mirror.version for r in service.routes if r.mirror
        }
        for version in service.versions:
            if version.name not in routed:
                findings.append(
                    Finding(
                        check="unreachable",
                        subject=f"{service.name}/{version.name}",
                        message="no route sends traffic to this version",
                    )
                )
    return findings


def _covers(earlier: Route, route: Route) -> bool:
    """`earlier` applies to every caller `route` applies to."""
    if not earlier.match.callers:
        return True
    return bool(route.match.callers) and set(route.match.callers) <= set(earlier.match.callers)


def _shadowed_routes(mesh: Mesh) -> list[Finding]:
    findings = []
    for service in mesh.services:
        for index, route in enumerate(service.routes):
            earlier = service.routes[:index]
            blocker = next(
                (
                    r
                    for r in earlier
                    if (r.match.matches_every_request or r.match.describe() == route.match.describe())
                    and _covers(r, route)
                ),
                None,
            )
            if blocker is not None:
                findings.append(
                    Finding(
                        check="shadowed-route",
                        subject=f"{service.name}/{route.name}",
                        message=f"never matches: route {blocker.name!r} before it matches every request this one does",
                    )
                )
        if not service.is_http or not service.routes:
            continue
        for caller in [c.name for c in mesh.callers_of(service.name)] or [""]:
            applying = [r for r in service.routes if not caller or r.match.applies_to(caller)]
            if not any(r.match.matches_every_request for r in applying):
                who = f"calls from {caller}" if caller else "calls"
                findings.append(
                    Finding(
                        check="shadowed-route",
                        subject=service.name if not caller else f"{caller} -> {service.name}",
                        message=f"no route matches every request: {who} that match none get 404 "
                        "from the caller's sidecar",
                    )
                )
    return findings


def _ineffective_retries(mesh: Mesh) -> list[Finding]:
    findings = []
    for service in mesh.services:
        if service.protocol != "grpc":
            continue
        for route in service.routes:
            if route.retries.attempts > 1 and route.retries.methods == "idempotent":
                findings.append(
                    Finding(
                        check="no-retry",
                        subject=f"{service.name}/{route.name}",
                        message="gRPC calls are all POST, so idempotent-only retries never happen; "
                        "set `retries.methods: all` if these calls are safe to repeat",
                    )
                )
    return findings


def lint(mesh: Mesh, thresholds: Thresholds | None = None) -> list[Finding]:
    thresholds = thresholds or Thresholds()
    return [
        *_amplification(mesh, thresholds),
        *_retry_budgets(mesh),
        *_timeout_inversions(mesh, thresholds),
        *_inbound_timeouts(mesh),
        *_cycles(mesh),
        *_unreachable(mesh),
        *_shadowed_routes(mesh),
        *_ineffective_retries(mesh),
        *security_findings(mesh),
    ]


def failing(findings: list[Finding]) -> bool:
    """Errors fail lint; warnings are reported and pass."""
    return any(f.severity == "error" for f in findings)


@dataclass(frozen=True)
class Ignored:
    finding: Finding
    reason: str


def apply_ignores(
    findings: list[Finding], ignores: tuple[LintIgnore, ...]
) -> tuple[list[Finding], list[Ignored], list[LintIgnore]]:
    """Findings still standing, those ignored (with why), and ignores that matched nothing (stale)."""
    standing, ignored, used = [], [], set()
    for finding in findings:
        match = next((i for i in ignores if i.check == finding.check and i.subject in (None, finding.subject)), None)
        if match is None:
            standing.append(finding)
        else:
            ignored.append(Ignored(finding, match.reason))
            used.add(match)
    return standing, ignored, [i for i in ignores if i not in used]


def to_json(
    findings: list[Finding],
    thresholds: Thresholds,
    ignored: list[Ignored] | None = None,
    stale: list[LintIgnore] | None = None,
) -> dict[str, Any]:
    return {
        "thresholds": asdict(thresholds),
        "findings": [asdict(f) for f in findings],
        "ignored": [{**asdict(i.finding), "reason": i.reason} for i in ignored or []],
        "stale_ignores": [asdict(i) for i in stale or []],
    }


def to_table(
    findings: list[Finding], ignored: list[Ignored] | None = None, stale: list[LintIgnore] | None = None
) -> str:
    notes = [f"ignored  {i.finding.check}  {i.finding.subject}: {i.reason}" for i in ignored or []]
    notes += [f"stale ignore: {i.check} {i.subject or '(any subject)'} matches no finding" for i in stale or []]
    if not findings:
        return "\n".join(["no findings", *notes])
    return _findings_table(findings) + ("\n" + "\n".join(notes) if notes else "")


def _findings_table(findings: list[Finding]) -> str:
    width_check = max(len("CHECK"), *(len(f.check) for f in findings))
    width_subject = max(len("SUBJECT"), *(len(f.subject) for f in findings))
    width_severity = max(len("SEVERITY"), *(len(f.severity) for f in findings))
    lines = [f"{'SEVERITY':<{width_severity}}  {'CHECK':<{width_check}}  {'SUBJECT':<{width_subject}}  FINDING"]
    lines += [
        f"{f.severity:<{width_severity}}  {f.check:<{width_check}}  {f.subject:<{width_subject}}  {f.message}"
        for f in findings
    ]
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    lines.append(f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}")
    return "\n".join(lines)
