"""The checks: each derived from what the catalog declares, each able to fail.

Verification stands in for a caller's app: it sends requests to a caller's sidecar with the
callee's name as Host, exactly as an app does, and reads the demo app's answers (which version
and instance answered), Envoy's admin counters, the demo app's counters and the trace collector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from meshgen.model.mesh import Mesh
from meshgen.pki.authority import Authority
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
    mesh: Mesh, kinds: tuple[str, ...] = KINDS, *, authority: Authority | None = None
) -> tuple[list[CheckResult], list[Skipped]]:
    """Run the checks of `kinds` in the fixed order of KINDS; `authority` (the mesh CA, with its
    key) lets the security checks mint identities."""
    checks: dict[str, Callable[[Mesh], Iterator[Outcome]]] = {
        **CHECKS,
        "security": partial(check_security, authority=authority),
    }
    results: list[CheckResult] = []
    skipped: list[Skipped] = []
    for kind in KINDS:
        if kind not in kinds:
            continue
        for outcome in checks[kind](mesh):
            if isinstance(outcome, CheckResult):
                results.append(outcome)
            else:
                skipped.append(outcome)
    return results, skipped


__all__ = ["CHECKS", "KINDS", "CheckResult", "Skipped", "run_checks"]
