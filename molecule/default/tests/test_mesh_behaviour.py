"""The mesh behaves as the catalog says: meshgen's verification library, run from the controller
(host networking makes every host's address reachable), with the mesh CA on the controller to
mint test identities: mutual TLS and authorization, routing, retries, tracing."""

from __future__ import annotations

import uuid

from conftest import authority, mesh

from meshgen.verify import run_checks
from meshgen.verify.checks.tracing import _chain_problems, _collector_trace, _expected_spans
from meshgen.verify.http import send
from meshgen.verify.targets import inbound_address

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
    # The auditor runs its own app: the trace through it is checked as far as that app.
    tracing = next(r for r in results if r.kind == "tracing")
    assert tracing.name == "auditor -> caller -> callee" and "auditor, which runs its own app" in tracing.detail, report


def test_a_request_through_the_demo_apps_gives_one_trace_with_a_span_per_hop():
    """The longest chain starts at the auditor, whose real app calls nothing on (the tracing
    check above stops there, saying so): caller -> callee, through the demo apps, is traced here,
    a span per sidecar hop, each the child of the one before."""
    model = mesh()
    chain = ["caller", "callee"]
    trace_id, root = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    headers = {"x-b3-traceid": trace_id, "x-b3-spanid": root, "x-b3-sampled": "1", "x-demo-call": "callee"}
    reply = send(*inbound_address(model.service("caller").instances[0]), "/", headers=headers, timeout=10)
    assert reply.status == 200, reply
    expected = _expected_spans(chain)
    spans = _collector_trace(model, trace_id, lambda found: not _chain_problems(found, chain, root, expected))
    assert not _chain_problems(spans, chain, root, expected), spans
