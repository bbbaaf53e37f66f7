"""Timeouts: a delay beyond the route timeout answers 504, on time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from meshgen.model.mesh import Mesh
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, targets
from meshgen.verify.http import Reply, run_all

TIMEOUT_MARGIN_SECONDS = 0.5


def check_timeouts(mesh: Mesh) -> Iterator[Outcome]:
    pending: list[tuple[str, float, float, Callable[[], Reply]]] = []
    for target in targets(mesh, "timeout"):
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
