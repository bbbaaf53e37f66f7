"""The mesh behaves as the catalog says: meshgen's verification library, run from the controller
(host networking makes every host's address reachable), with the mesh CA on the controller to
mint test identities: mutual TLS and authorization, routing, retries, tracing."""

from __future__ import annotations

from conftest import authority, mesh

from meshgen.verify import run_checks

KINDS = ("security", "routing", "retries", "tracing")


def test_security_routing_retries_and_tracing_pass():
    results, skipped = run_checks(mesh(), KINDS, authority=authority())
    report = "\n".join(f"{r.kind} {r.name}: {'ok' if r.passed else 'FAILED'} - {r.detail}" for r in results)
    report += "".join(f"\nskipped {s.kind} {s.name}: {s.reason}" for s in skipped)
    assert {r.kind for r in results} == set(KINDS), report
    assert all(r.passed for r in results), report
    # The narrowing rule and the auditor make the refusals real: the callee refuses the auditor's
    # identity, and the caller's outside GET and HEAD.
    refusals = next(r for r in results if r.name == "callee: refuses whom it does not admit")
    assert "auditor" in refusals.detail, report
    admits = next(r for r in results if r.name == "callee: admits caller")
    assert "DELETE / answered 403" in admits.detail, report
