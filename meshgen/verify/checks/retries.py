"""Retries: failing the first attempts-1 tries succeeds, failing all of them does not."""

from __future__ import annotations

from collections.abc import Iterator

from meshgen.model.mesh import IDEMPOTENT_METHODS, Mesh, Route
from meshgen.render.envoy import names
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, Target, targets
from meshgen.verify.http import envoy_stat
from meshgen.verify.targets import own_app_reason, runs_own_app


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
    for target in targets(mesh, "retries", lambda route: route.retries.attempts > 1):
        if isinstance(target, Skipped):
            yield target
            continue
        if runs_own_app(target.service):
            yield Skipped("retries", target.name, own_app_reason(target.service))
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
