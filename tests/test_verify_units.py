"""Verification's pure parts: request synthesis, tolerances, trace shape, waterfalls."""

from __future__ import annotations

import pytest

from meshgen.analysis.waterfall import draw
from meshgen.model import load_mesh
from meshgen.verify.checks.tracing import _chain_problems, longest_chain
from meshgen.verify.requests import NoProbe, matches, probe_for
from meshgen.verify.stats import share_ok, tolerance
from tests.support import REPO, TESTDATA


def test_probe_matches_its_route_and_no_earlier_one() -> None:
    mesh = load_mesh(TESTDATA / "catalogs/local.yaml")
    api = mesh.service("api")
    canary, drill, split = api.routes
    assert probe_for(canary, ()).headers == {"x-canary": "yes"}
    drill_probe = probe_for(drill, (canary,))
    assert (drill_probe.path, drill_probe.headers) == ("/drill", {})
    assert not matches(canary.match, drill_probe)
    assert probe_for(split, (canary, drill)).path == "/"


def test_probe_reports_shadowed_routes_and_samples_regexes() -> None:
    mesh = load_mesh(TESTDATA / "catalogs/features.yaml")
    writes, rest = mesh.service("grpc").routes
    probe = probe_for(writes, ())
    assert probe.method == "POST" and probe.headers == {"x-tenant": "acme", "x-debug": "1"}
    assert matches(writes.match, probe)
    with pytest.raises(NoProbe, match="route 'rest' before it"):
        probe_for(writes, (rest,))


def test_tolerance_shrinks_with_samples() -> None:
    assert tolerance(0.1, 400) < tolerance(0.1, 100)
    assert share_ok(36, 400, 0.1) == (True, pytest.approx(tolerance(0.1, 400)))
    assert share_ok(80, 400, 0.1)[0] is False
    assert share_ok(0, 40, 0.0)[0] is True and share_ok(5, 40, 0.0)[0] is False


def test_longest_chain_of_the_shop() -> None:
    assert longest_chain(load_mesh(REPO / "examples/shop/catalog.yaml")) == [
        "frontend",
        "checkout",
        "orders",
        "inventory",
    ]


def _span(span_id: str, parent: str, kind: str, service: str) -> dict[str, object]:
    return {"id": span_id, "parentId": parent, "kind": kind, "localEndpoint": {"serviceName": service}}


def test_chain_problems_accepts_a_correct_chain_and_names_what_is_wrong() -> None:
    chain = ["web", "api"]
    good = [_span("1", "root", "SERVER", "web"), _span("2", "1", "CLIENT", "web"), _span("3", "2", "SERVER", "api")]
    assert _chain_problems(good, chain, "root", 3) == []
    assert _chain_problems(good[:2], chain, "root", 3) == [
        "the trace breaks after 2 of 3 hops: no SERVER span of api follows (2 spans)"
    ]
    misparented = [*good[:2], _span("3", "1", "SERVER", "api")]
    assert "breaks after 2 of 3 hops" in _chain_problems(misparented, chain, "root", 3)[0]
    wrong_service = [*good[:2], _span("3", "2", "SERVER", "web")]
    assert "no SERVER span of api" in _chain_problems(wrong_service, chain, "root", 3)[0]
    wrong_root = _chain_problems(good, chain, "another-root", 3)
    assert wrong_root == ["the trace breaks after 0 of 3 hops: no SERVER span of web follows (3 spans)"]


def test_chain_problems_tolerates_mirrored_branches() -> None:
    chain = ["web", "api"]
    spans = [
        _span("1", "root", "SERVER", "web"),
        _span("m", "1", "CLIENT", "web"),  # a mirrored copy, a sibling of the real call
        _span("2", "1", "CLIENT", "web"),
        _span("3", "2", "SERVER", "api"),
    ]
    assert _chain_problems(spans, chain, "root", 3) == []


def test_waterfall_nests_children_and_marks_failures() -> None:
    spans = [
        {
            "traceId": "t1",
            "id": "a",
            "kind": "SERVER",
            "name": "web/inbound",
            "timestamp": 1000,
            "duration": 10_000,
            "localEndpoint": {"serviceName": "web"},
        },
        {
            "traceId": "t1",
            "id": "b",
            "parentId": "a",
            "kind": "CLIENT",
            "name": "api/split",
            "timestamp": 6000,
            "duration": 5000,
            "localEndpoint": {"serviceName": "web"},
            "tags": {"http.status_code": "503", "error": "true"},
        },
    ]
    lines = draw(spans).splitlines()
    assert lines[0] == "trace t1  10.0ms  2 spans"
    assert lines[1].startswith("  web server web/inbound") and "|" + "#" * 40 + "|" in lines[1]
    assert lines[2].startswith("    web client api/split") and lines[2].endswith("ERROR 503")
    assert "|" + " " * 20 + "#" * 20 + "|" in lines[2]


def test_the_cli_offers_every_kind_of_check() -> None:
    from meshgen.cli import verify
    from meshgen.verify.checks import KINDS

    only = next(p for p in verify.params if p.name == "kinds")
    assert sorted(only.type.choices) == sorted(KINDS)  # type: ignore[attr-defined]
