"""The checks: each derived from what the catalog declares, each able to fail.

Verification stands in for a caller's app: it sends requests to a caller's sidecar with the
callee's name as Host, exactly as an app does, and reads the demo app's answers (which version
and instance answered), Envoy's admin counters, the demo app's counters and the trace collector.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial

from meshgen.model.mesh import Mesh
from meshgen.pki.authority import Authority
from meshgen.render.envoy import names
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped
from meshgen.verify.checks.config import check_config
from meshgen.verify.checks.fault import check_faults
from meshgen.verify.checks.mirror import check_mirrors
from meshgen.verify.checks.outlier import check_outliers
from meshgen.verify.checks.ratelimit import check_rate_limits
from meshgen.verify.checks.retries import check_retries
from meshgen.verify.checks.routing import check_routing
from meshgen.verify.checks.security import check_security
from meshgen.verify.checks.timeout import check_timeouts
from meshgen.verify.checks.tracing import check_tracing
from meshgen.verify.http import cluster_hosts
from meshgen.verify.targets import Caller

# Run order: config and security first (they change nothing), outlier detection before the checks that make
# instances fail on purpose (their failures could eject a host first), rate limits last (they
# drain token buckets).
KINDS = ("config", "security", "routing", "outlier", "retries", "timeout", "fault", "mirror", "tracing", "ratelimit")


CHECKS: dict[str, Callable[[Mesh], Iterator[Outcome]]] = {
    "config": check_config,
    "security": check_security,
    "routing": check_routing,
    "retries": check_retries,
    "timeout": check_timeouts,
    "fault": check_faults,
    "mirror": check_mirrors,
    "tracing": check_tracing,
    "outlier": check_outliers,
    "ratelimit": check_rate_limits,
}


def run_checks(
    mesh: Mesh,
    kinds: tuple[str, ...] = KINDS,
    *,
    authority: Authority | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[CheckResult], list[Skipped]]:
    """Run the checks of `kinds` in the fixed order of KINDS; `authority` (the mesh CA, with its
    key) lets the security checks mint identities; `progress` hears of each kind as it starts and
    of each result as it comes (some kinds take seconds per check)."""
    checks: dict[str, Callable[[Mesh], Iterator[Outcome]]] = {
        **CHECKS,
        "security": partial(check_security, authority=authority),
    }
    results: list[CheckResult] = []
    skipped: list[Skipped] = []
    chosen = [kind for kind in KINDS if kind in kinds]
    for number, kind in enumerate(chosen, 1):
        if progress is not None:
            progress(f"verify: {kind} ({number}/{len(chosen)})")
        for outcome in checks[kind](mesh):
            if isinstance(outcome, CheckResult):
                results.append(outcome)
                if progress is not None:
                    progress(f"  {'pass' if outcome.passed else 'FAIL'} {outcome.name}")
            else:
                skipped.append(outcome)
        if kind in DISTURBING:
            lingering = settle(mesh)
            if lingering:
                results.append(CheckResult(kind, "ejections lifted", False, lingering))
    return results, skipped


# Kinds whose failures on purpose can get instances ejected by outlier detection. After them,
# verification waits until no version is left with every instance ejected, so the next kind finds
# a mesh that still answers (an ejection with healthy instances beside it changes no later check).
DISTURBING = ("outlier", "retries", "timeout", "fault")


def settle(mesh: Mesh) -> str:
    """Wait until no caller's sidecar keeps a whole version ejected; what still is, if any, past
    the longest time the catalog's outlier detection can keep one out (three ejections in a row)."""
    watched = []
    for service in mesh.services:
        for dependency in service.dependencies:
            if dependency.external or not service.instances:
                continue
            callee = mesh.service(dependency.target)
            callers = [i for i in service.instances if dependency.target in service.version(i.version).calls]
            for version in callee.versions:
                for caller in callers:
                    watched.append((Caller(caller).admin, names.version_cluster(callee.name, version.name)))
    longest = max((s.circuit_breaker.ejection_time.seconds for s in mesh.services), default=0.0)
    deadline = time.monotonic() + 3 * longest + 5
    while True:
        ejected = []
        for admin, cluster in watched:
            hosts, out = cluster_hosts(admin, cluster)
            if hosts and out == hosts:
                ejected.append(f"every instance of {cluster} ejected by {admin}")
        if not ejected or time.monotonic() > deadline:
            return "; ".join(ejected)
        time.sleep(0.5)


__all__ = ["CHECKS", "KINDS", "CheckResult", "Skipped", "run_checks"]
