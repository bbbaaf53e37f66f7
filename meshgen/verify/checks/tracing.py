"""Tracing: one request through the longest call chain gives one trace, a span per hop."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

from meshgen.analysis.callgraph import adjacency
from meshgen.model.mesh import Mesh, Service
from meshgen.verify.checks.base import CheckResult, Outcome, Skipped, Target, gateway_target
from meshgen.verify.http import send
from meshgen.verify.targets import inbound_address, runs_own_app


def longest_chain(mesh: Mesh) -> list[str]:
    graph = adjacency(mesh)
    http = {s.name for s in mesh.services if s.is_http}
    best: list[str] = []

    def walk(chain: list[str]) -> None:
        nonlocal best
        if len(chain) > len(best):
            best = chain
        for edge in graph.get(chain[-1], []):
            if edge.callee in http and edge.callee not in chain:
                walk([*chain, edge.callee])

    for entry in mesh.entry_services:
        if entry.is_http:
            walk([entry.name])
    return best


def _collector_trace(
    mesh: Mesh, trace_id: str, complete: Callable[[list[dict[str, object]]], bool], seconds: float = 15.0
) -> list[dict[str, object]]:
    """The trace's spans once `complete` says so, or what arrived by the deadline. Each Envoy
    flushes its spans on its own schedule (at most every 5 s), so spans arrive in batches."""
    assert mesh.tracing is not None
    deadline = time.monotonic() + seconds
    spans: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        reply = send(mesh.tracing.collector_address, mesh.tracing.collector_port, f"/api/v2/trace/{trace_id}")
        if reply.status == 200 and isinstance(reply.body, list):
            spans = reply.body
            if complete(spans):
                return spans
        time.sleep(0.25)
    return spans


def check_tracing(mesh: Mesh) -> Iterator[Outcome]:
    if mesh.tracing is None:
        return
    chain = longest_chain(mesh)
    name = " -> ".join(chain)
    if not chain:
        yield Skipped("tracing", "chain", "no HTTP entry service")
        return
    entry = mesh.service(chain[0])
    trace_id = uuid.uuid4().hex
    root_span = uuid.uuid4().hex[:16]
    headers = {"x-b3-traceid": trace_id, "x-b3-spanid": root_span, "x-b3-sampled": "1"}
    if len(chain) > 1:
        headers["x-demo-call"] = ">".join(chain[1:])
    # The demo app calls on as the request asks (x-demo-call); an app of its own calls what it
    # calls, forwarding the trace headers or not: past the first one, the chain is a hope.
    own = next((i for i, service in enumerate(chain) if runs_own_app(mesh.service(service))), len(chain) - 1)
    gateway = None if entry.edge else _gateway_way_in(mesh, entry)
    if gateway is not None:
        # In through the gateway, which starts the trace: its spans come first.
        reply = gateway.send(headers)
        chain, own = [gateway.caller.instance.service, *chain], own + 1
    else:
        address, port = inbound_address(entry.instances[0])
        reply = send(address, port, "/", headers=headers)
    sure = chain[: own + 1]
    full = _expected_spans(chain)
    spans = _collector_trace(
        mesh,
        trace_id,
        lambda found: not _chain_problems(found, chain, root_span, full),
        seconds=15.0 if sure == chain else 8.0,
    )
    problems = _chain_problems(spans, chain, root_span, full)
    checked, expected, note = chain, full, ""
    if problems and sure != chain:
        checked, expected = sure, _expected_spans(sure)
        problems = _chain_problems(spans, sure, root_span, expected)
        note = (
            f"; beyond {sure[-1]}, which runs its own app, the trace stops: it goes on only where an app "
            "forwards the trace headers (x-request-id, x-b3-*) on its calls"
        )
    # The trace's shape is what is checked: a chain may well answer 504 (a delay beyond a timeout
    # on the way) and still be traced hop by hop.
    detail = "; ".join(problems) or (
        f"{expected} sidecar hops through {' -> '.join(checked)}, each span the child of the one before "
        f"({len(spans)} spans in the trace, the request answered {reply.status}){note}"
    )
    yield CheckResult("tracing", name, not problems, detail)


def _gateway_way_in(mesh: Mesh, entry: Service) -> Target | None:
    """A request into `entry` through a gateway that routes to it, if one does."""
    for route in entry.routes:
        found = gateway_target(mesh, "tracing", entry, route)
        if isinstance(found, Target):
            return found
    return None


def _expected_spans(chain: list[str]) -> int:
    """One server span where a request enters a sidecar, one client span where it leaves."""
    return 1 + 2 * (len(chain) - 1)


def _chain_problems(spans: list[dict[str, object]], chain: list[str], root_parent: str, expected: int) -> list[str]:
    """Problems unless the spans hold a path, root first, of one span per sidecar hop, each the
    child of the one before: SERVER of chain[0], CLIENT of chain[0], SERVER of chain[1], ...
    Other branches (mirrored copies, retries) may hang off the path."""
    children: dict[str, list[dict[str, object]]] = {}
    for span in spans:
        children.setdefault(str(span.get("parentId", "")), []).append(span)

    def want(hop: int) -> tuple[str, str]:
        return ("SERVER" if hop % 2 == 0 else "CLIENT"), chain[hop // 2]  # a client span is its caller's

    def deepest(parent: str, hop: int) -> int:
        """How many hops from `hop` on the spans under `parent` cover."""
        if hop == expected:
            return 0
        kind, service = want(hop)
        best = 0
        for span in children.get(parent, []):
            endpoint = span.get("localEndpoint")
            name = endpoint.get("serviceName") if isinstance(endpoint, dict) else None
            if span.get("kind") == kind and name == service:
                best = max(best, 1 + deepest(str(span["id"]), hop + 1))
        return best

    covered = deepest(root_parent, 0)
    if covered == expected:
        return []
    kind, service = want(covered)
    return [
        f"the trace breaks after {covered} of {expected} hops: no {kind} span of {service} follows ({len(spans)} spans)"
    ]
