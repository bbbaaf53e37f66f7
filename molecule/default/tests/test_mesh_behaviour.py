"""The mesh behaves as the catalog says: meshgen's verification library, run from the controller
(host networking makes every host's address reachable)."""

from __future__ import annotations

from conftest import CATALOG

from meshgen.model import load_mesh
from meshgen.verify import run_checks

KINDS = ("routing", "retries", "tracing")


def test_routing_retries_and_tracing_pass():
    results, skipped = run_checks(load_mesh(CATALOG), KINDS)
    report = "\n".join(f"{r.kind} {r.name}: {'ok' if r.passed else 'FAILED'} - {r.detail}" for r in results)
    report += "".join(f"\nskipped {s.kind} {s.name}: {s.reason}" for s in skipped)
    assert {r.kind for r in results} == set(KINDS), report
    assert all(r.passed for r in results), report
