"""Timeouts: a delay beyond the route timeout answers 504, on time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from meshgen.model.mesh import Mesh, Route
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, targets
from meshgen.verify.http import Reply, run_all
from meshgen.verify.targets import own_app_reason, runs_own_app

TIMEOUT_MARGIN_SECONDS = 0.5


def check_timeouts(mesh: Mesh) -> Iterator[Outcome]:
    pending: list[tuple[str, float, float, float, Callable[[], Reply]]] = []
    for target in targets(mesh, "timeout"):
        if isinstance(target, Skipped):
            yield target
            continue
        route = target.route
        if runs_own_app(target.service):
            yield Skipped("timeout", target.name, own_app_reason(target.service))
            continue
        if route.timeout is None:
            yield Skipped("timeout", target.name, "the route has no timeout (timeout: none)")
            continue
        injected = _injected_delay(route)
        if isinstance(injected, str):
            yield Skipped("timeout", target.name, injected)
            continue
        limit = route.timeout.seconds
        delay = f"{int(limit * 1000) + 1000}ms"
        # No answer can come before the first try gives up: its per-try limit, or the route's.
        per_try = route.retries.per_try_timeout if route.retries.attempts > 1 else None
        floor = min(limit, per_try.seconds) if per_try else limit
        pending.append((target.name, limit, floor, injected, partial(target.send, {"x-demo-delay": delay})))
    # Each check waits about one timeout: run them side by side.
    replies = run_all([request for *_, request in pending], workers=8)
    for (name, limit, floor, injected, _), reply in zip(pending, replies, strict=True):
        # An injected delay comes first; Envoy starts the route timeout after it.
        earliest, latest = injected + floor * 0.9, injected + limit + TIMEOUT_MARGIN_SECONDS
        passed = reply.status == 504 and earliest <= reply.elapsed <= latest
        before = f"an injected {injected:g}s delay, then " if injected else ""
        yield CheckResult(
            "timeout",
            name,
            passed,
            f"delay beyond {limit:g}s answered {reply.status} after {reply.elapsed:.2f}s "
            f"(expected 504 after {before}{floor:g}s to {injected + limit + TIMEOUT_MARGIN_SECONDS:g}s)",
        )


def _injected_delay(route: Route) -> float | str:
    """Seconds every plain request is delayed by a fault on the route, or why the timing of its
    answer cannot be predicted (a fault that hits only some requests, or aborts them first)."""
    fault = route.fault
    if fault is None or fault.headers:
        return 0.0  # plain requests are never faulted
    if fault.abort_status is not None and fault.abort_percent > 0:
        share = "every request is" if fault.abort_percent >= 100 else f"{fault.abort_percent:g}% of requests are"
        return f"{share} aborted with {fault.abort_status} by an injected fault, before any timeout"
    if fault.delay is not None and 0 < fault.delay_percent < 100:
        return f"an injected delay on {fault.delay_percent:g}% of requests makes its timing unpredictable"
    return fault.delay.seconds if fault.delay is not None and fault.delay_percent >= 100 else 0.0
