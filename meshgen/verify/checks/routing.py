"""Routing: each route, with a request built to match it, lands on the versions it names."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from meshgen.model.mesh import Mesh
from meshgen.render.envoy import names
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, Target, expected_fault_free, targets
from meshgen.verify.http import envoy_stats, send_many
from meshgen.verify.stats import share_ok
from meshgen.verify.targets import runs_own_app

ROUTING_SAMPLES = 400


def check_routing(mesh: Mesh) -> Iterator[Outcome]:
    for target in targets(mesh, "routing"):
        if isinstance(target, Skipped):
            yield target
            continue
        name, route = target.name, target.route
        if not expected_fault_free(route):
            yield Skipped("routing", name, "every request on it may be aborted by an injected fault")
            continue
        samples = 20 if len(route.weights) == 1 else ROUTING_SAMPLES
        if target.budget is not None:
            samples = min(samples, max(1, target.budget - 1))  # rate limits: within a full bucket
        own_app = runs_own_app(target.service)
        before = _requests_by_version(target) if own_app else Counter()
        replies = send_many(samples, target.send, workers=target.workers)
        if own_app:
            # Any answer of the app's own counts (a 404 on a path it does not serve, its own 503 past
            # the retries: routed all the same); the version is the upstream cluster Envoy chose,
            # read off the caller's sidecar.
            answered = _requests_by_version(target) - before
            failed = sum(1 for r in replies if not r.from_upstream)  # the sidecar's own answers
        else:
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


def _requests_by_version(target: Target) -> Counter[str | None]:
    """Requests the caller's sidecar sent to each version of the callee so far: attempts less
    retries (a retry stays within the version its request was routed to)."""
    counts: Counter[str | None] = Counter()
    stats = envoy_stats(target.caller.admin, rf"^cluster\.{target.service.name}\..*\.upstream_rq_(total|retry)$")
    for version in (v.name for v in target.service.versions):
        prefix = f"cluster.{names.version_cluster(target.service.name, version)}"
        counts[version] = stats.get(f"{prefix}.upstream_rq_total", 0) - stats.get(f"{prefix}.upstream_rq_retry", 0)
    return counts
