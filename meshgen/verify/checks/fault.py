"""Injected faults: aborts and delays at the declared rates, only with their trigger headers."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from meshgen.model.mesh import Mesh
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, targets
from meshgen.verify.http import send_many
from meshgen.verify.stats import share_ok


def check_faults(mesh: Mesh) -> Iterator[Outcome]:
    for target in targets(mesh, "fault", lambda route: route.fault is not None):
        if isinstance(target, Skipped):
            yield target
            continue
        fault = target.route.fault
        assert fault is not None
        trigger = {h.name: h.exact or h.prefix or "1" for h in fault.headers}
        samples = 40
        if target.budget is not None:
            # Both rounds within one full bucket of a rate limit on the way: a 429 is no fault.
            samples = max(1, min(samples, (target.budget - 1) // (2 if fault.headers else 1)))
        faulted = send_many(samples, partial(target.send, trigger), workers=8)
        problems: list[str] = []
        seen: list[str] = []
        if fault.abort_status is not None:
            aborted = sum(1 for r in faulted if r.status == fault.abort_status and not r.from_upstream)
            ok, allowed = share_ok(aborted, samples, fault.abort_percent / 100)
            seen.append(f"aborted {aborted}/{samples} (expected {fault.abort_percent:g}%)")
            if not ok:
                problems.append(
                    f"aborts {100 * aborted / samples:.0f}%, expected {fault.abort_percent:g}% +/- {100 * allowed:.0f}"
                )
        if fault.delay is not None:
            slow = sum(1 for r in faulted if r.elapsed >= fault.delay.seconds * 0.95)
            ok, allowed = share_ok(slow, samples, fault.delay_percent / 100)
            seen.append(f"delayed {slow}/{samples} (expected {fault.delay_percent:g}%)")
            if not ok:
                problems.append(
                    f"delays {100 * slow / samples:.0f}%, expected {fault.delay_percent:g}% +/- {100 * allowed:.0f}"
                )
        if fault.headers:
            plain = send_many(samples, target.send, workers=8)
            hit = [
                r
                for r in plain
                if not r.from_upstream or (fault.delay is not None and r.elapsed >= fault.delay.seconds * 0.95)
            ]
            seen.append(f"without the header: {len(hit)}/{samples} faulted")
            if hit:
                problems.append(f"{len(hit)} requests without {', '.join(trigger)} were faulted too")
        yield CheckResult("fault", target.name, not problems, "; ".join(problems or seen))
