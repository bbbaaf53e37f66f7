"""Rate limits: past its budget a limiter answers 429; a full bucket lets the burst through."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial

from meshgen.model.mesh import Mesh
from meshgen.verify.checks.base import CheckResult, Outcome
from meshgen.verify.http import Reply, send, send_many
from meshgen.verify.targets import Caller, inbound_address, instance_calling


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
            calling = instance_calling(service, dependency.target)
            if dependency.rate_limit is None or calling is None:
                continue
            limit = dependency.rate_limit
            caller = Caller(calling)
            address, port = caller.outbound
            yield _limited(
                f"{service.name} -> {dependency.target}",
                limit.requests,
                limit.per.seconds,
                limit.burst,
                partial(send, address, port, "/", headers={"Host": dependency.target}),
            )
