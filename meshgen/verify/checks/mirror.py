"""Mirroring: the shadow version receives its share of copies; callers see only primaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial

from meshgen.model.mesh import Mesh
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, demo_stats, settled, targets
from meshgen.verify.http import send_many
from meshgen.verify.stats import share_ok
from meshgen.verify.targets import app_address, own_app_reason, runs_own_app


def check_mirrors(mesh: Mesh) -> Iterator[Outcome]:
    for target in targets(mesh, "mirror", lambda route: route.mirror is not None):
        if isinstance(target, Skipped):
            yield target
            continue
        if runs_own_app(target.service):
            yield Skipped("mirror", target.name, own_app_reason(target.service))
            continue
        route = target.route
        mirror = route.mirror
        assert mirror is not None
        shadows = [app_address(i) for i in target.service.version(mirror.version).instances]
        for shadow in shadows:
            demo_stats(shadow, reset=True)
        samples = 200
        replies = send_many(samples, target.send)
        primaries = {v for v, _ in route.weights}
        seen_by_callers = Counter(r.version for r in replies)
        mirrored = settled(partial(_mirrored_count, shadows))
        ok, allowed = share_ok(mirrored, samples, mirror.percent / 100)
        wrong = sorted(str(v) for v in set(seen_by_callers) - primaries)
        failed = sum(1 for r in replies if r.status != 200)
        detail = (
            f"{mirror.version} received {mirrored} shadow copies of {samples} requests "
            f"(expected {mirror.percent:g}% +/- {100 * allowed:.0f}); callers saw {dict(seen_by_callers)}"
        )
        if wrong:
            detail += f"; callers got answers from {', '.join(wrong)}"
        yield CheckResult("mirror", target.name, ok and not wrong and not failed, detail)


def _mirrored_count(shadows: list[tuple[str, int]]) -> int:
    return sum(demo_stats(address).get("mirrored", 0) for address in shadows)
