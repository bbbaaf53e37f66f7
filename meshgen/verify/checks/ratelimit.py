"""Rate limits: past its budget a limiter answers 429; a full bucket lets the burst through."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial

from meshgen.model.mesh import Mesh, RateLimit, Service
from meshgen.render.envoy.security import takes_plaintext
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, Target, targets
from meshgen.verify.http import Reply, send, send_many
from meshgen.verify.targets import Caller, inbound_address, instance_calling


def _limited(name: str, limit: RateLimit, request: Callable[[], Reply], buckets: int = 1, how: str = "") -> CheckResult:
    """`buckets`: instances the requests are spread over, each with a bucket of its own."""
    per = limit.per.seconds
    samples = buckets * (limit.burst + 2 * limit.requests) + 20
    started = time.monotonic()
    replies = send_many(samples, request, workers=8)
    elapsed = time.monotonic() - started
    # What the limiter let through may still fail further on; only 429 is the limiter's answer.
    limited = sum(1 for r in replies if r.status == 429)
    unanswered = sum(1 for r in replies if r.status == 0)
    passed_count = len(replies) - limited - unanswered
    burst = buckets * limit.burst
    allowed = burst + buckets * limit.requests * (elapsed / per + 1)  # one refill of slack
    # A full bucket lets `burst` through at once: fewer means the limit is tighter than declared.
    ok = limited > 0 and not unanswered and burst * 0.9 <= passed_count <= allowed
    buckets_allow = f"{buckets} buckets allow" if buckets > 1 else "the bucket allows"
    return CheckResult(
        "ratelimit",
        name,
        ok,
        f"{samples} requests{how} in {elapsed:.2f}s: {passed_count} passed, {limited} answered 429"
        + (f", {unanswered} got no answer" if unanswered else "")
        + f" ({buckets_allow} {burst} to {allowed:.0f} in that time)",
    )


def _inbound(mesh: Mesh, service: Service) -> Iterator[Outcome]:
    """Straight at an instance where outside callers may come in plaintext; else as a caller
    would, through a caller's sidecar or a gateway, spread over the instances its route reaches."""
    limit = service.rate_limit
    assert limit is not None
    instance = service.instances[0]
    name = f"{service.name} inbound ({instance.id})"
    if not mesh.security.enabled or takes_plaintext(mesh, service):
        address, port = inbound_address(instance)
        yield _limited(name, limit, partial(send, address, port, "/", headers={"Host": service.name}))
        return
    target = next((t for t in targets(mesh, "ratelimit") if isinstance(t, Target) and t.service == service), None)
    if target is None:
        yield Skipped("ratelimit", name, "mutual TLS is strict and nothing calls it to go through")
        return
    dependency = next((d for d in target.caller.service_dependencies if d.target == service.name), None)
    on_the_way = [*target.limits, *([dependency.rate_limit] if dependency and dependency.rate_limit else [])]
    tighter = [other for other in on_the_way if other.burst < limit.burst]
    if tighter:
        yield Skipped("ratelimit", name, f"a limit on the way there is tighter (burst {tighter[0].burst})")
        return
    reached = sum(len(service.version(version).instances) for version, _ in target.route.weights)
    how = f" through {target.caller.instance.id}"
    yield _limited(f"{service.name} inbound", limit, target.send, buckets=reached, how=how)


def check_rate_limits(mesh: Mesh) -> Iterator[Outcome]:
    for service in mesh.services:
        if service.rate_limit is not None:
            yield from _inbound(mesh, service)
        for dependency in service.dependencies:
            calling = instance_calling(service, dependency.target)
            if dependency.rate_limit is None or calling is None:
                continue
            caller = Caller(calling)
            address, port = caller.outbound
            request = partial(send, address, port, "/", headers={"Host": dependency.target})
            yield _limited(f"{service.name} -> {dependency.target}", dependency.rate_limit, request)
