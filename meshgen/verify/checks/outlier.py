"""Outlier detection: a failing instance is ejected and gets no more traffic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial

from meshgen.model.mesh import Mesh, Route
from meshgen.render.envoy import names
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, Target, demo_stats, set_fault, targets, wait_for
from meshgen.verify.http import ejected_hosts, send_many
from meshgen.verify.targets import app_address, inbound_address, own_app_reason, runs_own_app


def check_outliers(mesh: Mesh) -> Iterator[Outcome]:
    for service in mesh.services:
        for version in service.versions:
            if not service.is_http or len(version.instances) < 2:
                continue
            if runs_own_app(service):
                yield Skipped("outlier", f"{service.name}/{version.name}", own_app_reason(service))
                continue
            found = [
                t
                for t in targets(mesh, "outlier", partial(_sends_to, version.name))
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
    left = wait_for(lambda: not ejected_hosts(caller.admin, cluster), breaker.ejection_time.seconds * 4 + 10)
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
        before = demo_stats(app_address(bad)).get("requests", 0)
        replies = send_many(20, target.send)
        reached_bad = demo_stats(app_address(bad)).get("requests", 0) - before
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
