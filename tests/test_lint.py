"""meshgen lint: each check finds what it should, and stays quiet on a sound catalog."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from meshgen.analysis.lint import Thresholds, lint
from meshgen.cli import main
from meshgen.durations import Duration
from meshgen.model import load_mesh
from tests.support import EXAMPLES

CHAIN = """
mesh:
  name: chain
  defaults: {{retries: {{attempts: 3, per_try_timeout: 100ms}}, timeout: 1s}}
hosts:
  h1: {{address: 127.0.50.1}}
  h2: {{address: 127.0.50.2}}
  h3: {{address: 127.0.50.3}}
  h4: {{address: 127.0.50.4}}
services:
  a: {{port: 8080, edge: true, versions: {{v1: {{instances: [h1]}}}}, dependencies: [b]}}
  b: {{port: 8080, versions: {{v1: {{instances: [h2]}}}}, dependencies: [c]}}
  c: {{port: 8080, versions: {{v1: {{instances: [h3]}}}}, dependencies: [d]}}
  d: {{port: 8080, versions: {{v1: {{instances: [h4]}}}}{extra}}}
"""


def _mesh(tmp_path: Path, text: str) -> object:
    path = tmp_path / "catalog.yaml"
    path.write_text(dedent(text))
    return load_mesh(path)


def _checks(findings: list) -> list[tuple[str, str]]:
    return [(f.check, f.subject) for f in findings]


def test_three_hops_of_three_attempts_is_27_requests_at_the_bottom(tmp_path: Path) -> None:
    findings = lint(_mesh(tmp_path, CHAIN.format(extra="")))
    amplification = [f for f in findings if f.check == "amplification"]
    # a -> b -> c makes 9 requests at c: within the default limit of 10, so not reported.
    assert [(f.subject, f.details["requests"]) for f in amplification] == [("a -> b -> c -> d", 27)]
    assert amplification[0].details["attempts_per_hop"] == [3, 3, 3]


def test_amplification_threshold_is_configurable(tmp_path: Path) -> None:
    mesh = _mesh(tmp_path, CHAIN.format(extra=""))
    subjects = [f.subject for f in lint(mesh, Thresholds(max_amplification=5)) if f.check == "amplification"]
    assert subjects == ["a -> b -> c", "a -> b -> c -> d"]
    assert not [f for f in lint(mesh, Thresholds(max_amplification=27)) if f.check == "amplification"]


def test_route_timeout_shorter_than_its_retries_is_found(tmp_path: Path) -> None:
    text = CHAIN.format(extra="").replace("timeout: 1s", "timeout: 250ms")
    findings = [f for f in lint(_mesh(tmp_path, text)) if f.check == "retry-budget"]
    # 3 x 100ms + 25ms + 50ms back-off = 375ms > 250ms
    assert [f.subject for f in findings] == ["a/default", "b/default", "c/default", "d/default"]
    assert findings[0].details == {"timeout_ms": 250, "needed_ms": 375, "attempts": 3}


def test_retries_without_per_try_timeout_are_found(tmp_path: Path) -> None:
    text = CHAIN.format(extra="").replace(", per_try_timeout: 100ms", "")
    findings = [f for f in lint(_mesh(tmp_path, text)) if f.check == "retry-budget"]
    assert len(findings) == 4 and "no per_try_timeout" in findings[0].message


def test_caller_that_gives_up_before_its_callee_is_found(tmp_path: Path) -> None:
    text = CHAIN.format(extra="").replace("  c: {port: 8080,", "  c: {port: 8080, timeout: 5s, retries: {attempts: 1},")
    findings = [f for f in lint(_mesh(tmp_path, text)) if f.check == "timeout-budget"]
    # a -> b waits 100ms per try; b waits up to 5s on c.
    assert _checks(findings) == [("timeout-budget", "a -> b -> c")]
    assert findings[0].details["caller_timeout_ms"] == 100
    assert findings[0].details["callee_timeout_ms"] == 5000


def test_timeout_margin_threshold(tmp_path: Path) -> None:
    mesh = _mesh(
        tmp_path,
        CHAIN.format(extra="")
        .replace("per_try_timeout: 100ms", "per_try_timeout: 1100ms")
        .replace("timeout: 1s", "timeout: 1s"),
    )
    # per-try 1.1s against a 1s downstream timeout: fine with no margin, too tight with 200ms.
    assert not [f for f in lint(mesh) if f.check == "timeout-budget"]
    tight = [f for f in lint(mesh, Thresholds(min_timeout_margin_ms=200)) if f.check == "timeout-budget"]
    assert [f.subject for f in tight] == ["a -> b -> c", "b -> c -> d"]


def test_cycles_and_unreachable_services(tmp_path: Path) -> None:
    text = (
        CHAIN.format(extra=", dependencies: [b]")
        + "  lonely: {port: 9090, versions: {v1: {instances: [{host: h1, inbound_port: 16006, outbound_port: 16001, admin_port: 16000, stats_port: 16090}]}}, dependencies: [lonely2]}\n  lonely2: {port: 9091, versions: {v1: {instances: [{host: h2, inbound_port: 16006, outbound_port: 16001, admin_port: 16000, stats_port: 16090}]}}, dependencies: [lonely]}\n"
    )
    findings = lint(_mesh(tmp_path, text), Thresholds(max_amplification=1000))
    assert ("cycle", "b -> c -> d -> b") in _checks(findings)
    assert ("cycle", "lonely -> lonely2 -> lonely") in _checks(findings)
    assert ("unreachable", "lonely") in _checks(findings)
    assert ("unreachable", "lonely2") in _checks(findings)


def test_shadowed_routes_unrouted_versions_and_missing_catch_all(tmp_path: Path) -> None:
    text = """
    mesh: {name: routes}
    hosts: {h1: {address: 127.0.50.1}, h2: {address: 127.0.50.2}, h3: {address: 127.0.50.3}}
    services:
      s:
        port: 8080
        versions: {v1: {instances: [h1]}, v2: {instances: [h2]}, v3: {instances: [h3]}}
        routes:
          - {name: all, to: {v1: 100}}
          - {name: late, match: {prefix: /x}, to: {v2: 100}}
      t:
        port: 8081
        versions: {v1: {instances: [{host: h1, inbound_port: 16006, outbound_port: 16001, admin_port: 16000, stats_port: 16090}]}}
        routes:
          - {name: only-x, match: {prefix: /x}, to: {v1: 100}}
          - {name: again-x, match: {prefix: /x}, to: {v1: 100}}
    """
    findings = _checks(lint(_mesh(tmp_path, text)))
    assert ("shadowed-route", "s/late") in findings
    assert ("unreachable", "s/v3") in findings
    assert ("shadowed-route", "t/again-x") in findings
    assert ("shadowed-route", "t") in findings  # no catch-all: unmatched calls get 404
    assert ("unreachable", "s/v2") not in findings  # routed, if shadowed


def test_grpc_idempotent_retries_never_fire(tmp_path: Path) -> None:
    text = """
    mesh: {name: g}
    hosts: {h1: {address: 127.0.50.1}}
    services:
      g: {port: 50051, protocol: grpc, versions: {v1: {instances: [h1]}}, retries: {attempts: 3, per_try_timeout: 100ms}}
    """
    assert ("no-retry", "g/default") in _checks(lint(_mesh(tmp_path, text)))


@pytest.mark.parametrize("catalog", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_examples_are_lint_clean(catalog: Path) -> None:
    result = CliRunner().invoke(main, ["lint", str(catalog)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "no findings"


def test_cli_lint_exits_1_with_table_and_json(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(dedent(CHAIN.format(extra="")))
    table = CliRunner().invoke(main, ["lint", str(path)])
    assert table.exit_code == 1
    assert table.output.splitlines()[0].split() == ["SEVERITY", "CHECK", "SUBJECT", "FINDING"]
    assert "amplification" in table.output and "27 times" in table.output
    as_json = CliRunner().invoke(main, ["lint", str(path), "--json", "--max-amplification", "30"])
    assert as_json.exit_code == 1  # 27 is within a limit of 30, but the timeout inversions remain
    data = json.loads(as_json.output)
    assert data["thresholds"] == {"max_amplification": 30, "min_timeout_margin_ms": 0}
    assert sorted({f["check"] for f in data["findings"] if f["severity"] == "error"}) == ["timeout-budget"]


SECURITY = """
mesh:
  name: sec
  security: {{{security}}}
hosts:
  h1: {{address: 127.0.50.1}}
  h2: {{address: 127.0.50.2}}
  h3: {{address: 127.0.50.3}}
services:
  a: {{port: 8080, edge: true, versions: {{v1: {{instances: [h1]}}}}, dependencies: [b]{edge_rules}}}
  b:
    port: 8080
    versions: {{v1: {{instances: [h2]}}}}
    authorization:
      - from: [{callers}]
  c: {{port: 8080, edge: true, versions: {{v1: {{instances: [h3]}}}}, dependencies: [b, plain], authorization: [{{outside: true}}]}}
external:
  plain: {{address: api.example.com, port: {external_port}{external_tls}}}
"""


def _security(tmp_path: Path, **overrides: str) -> list[tuple[str, str, str]]:
    fields = {
        "security": "",
        "edge_rules": ", authorization: [{outside: true, methods: [GET]}]",
        "callers": "a, c",
        "external_port": "443",
        "external_tls": ", tls: true",
        **overrides,
    }
    findings = lint(_mesh(tmp_path, SECURITY.format(**fields)))
    return [(f.severity, f.check, f.subject) for f in findings if f.check not in ("unreachable",)]


def test_a_sound_zero_trust_catalog_has_no_security_findings(tmp_path: Path) -> None:
    assert _security(tmp_path) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"security": "mtls: off"}, ("warning", "mtls", "mesh.security.mtls")),
        ({"security": "mtls: off"}, ("warning", "authorization", "b")),  # rules nobody can be held to
        ({"security": "mtls: permissive"}, ("warning", "mtls", "mesh.security.mtls")),
        ({"security": "leaf_lifetime: 2400h"}, ("warning", "cert-lifetime", "mesh.security.leaf_lifetime")),
        ({"callers": "a, c, zed"}, ("error", "authorization", "b authorization[0]")),  # no such service
        ({"callers": "a, c, b"}, ("warning", "authorization", "b authorization[0]")),  # b does not call itself
        ({"edge_rules": ""}, ("warning", "authorization", "a")),  # outside callers get anything
        ({"external_port": "80", "external_tls": ""}, ("warning", "external-tls", "plain (external)")),
    ],
    ids=[
        "off",
        "off-rules",
        "permissive",
        "long-leaves",
        "unknown-caller",
        "not-a-caller",
        "open-edge",
        "plaintext-external",
    ],
)
def test_each_weakening_is_found(tmp_path: Path, overrides: dict[str, str], expected: tuple[str, str, str]) -> None:
    assert expected in _security(tmp_path, **overrides)


def test_warnings_alone_do_not_fail_lint(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        dedent(
            SECURITY.format(
                security="mtls: permissive",
                edge_rules="",
                callers="a, c",
                external_port="443",
                external_tls=", tls: true",
            )
        )
    )
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning   mtls" in result.output and result.output.strip().endswith("0 errors, 2 warnings")


NO_TIMEOUTS = """
mesh: {{name: nt, defaults: {{timeout: {default}}}}}
hosts:
  h1: {{address: 127.0.50.1}}
  h2: {{address: 127.0.50.2}}
  h3: {{address: 127.0.50.3}}
services:
  a: {{port: 8080, edge: true, versions: {{v1: {{instances: [h1]}}}}, dependencies: [b], authorization: [{{outside: true}}]{a}}}
  b: {{port: 8080, versions: {{v1: {{instances: [h2]}}}}, dependencies: [c]{b}}}
  c: {{port: 8080, versions: {{v1: {{instances: [h3]}}}}{c}}}
"""


def _timeouts(tmp_path: Path, default: str = "5s", a: str = "", b: str = "", c: str = "") -> list[tuple[str, str, str]]:
    findings = lint(_mesh(tmp_path, NO_TIMEOUTS.format(default=default, a=a, b=b, c=c)))
    return [(f.severity, f.check, f.subject) for f in findings]


def test_equal_timeouts_at_every_hop_are_a_warning_not_an_error(tmp_path: Path) -> None:
    """Every catalog that keeps the defaults has them: no headroom, but no failed lint either."""
    assert _timeouts(tmp_path) == [("warning", "timeout-budget", "a -> b -> c")]


def test_no_timeout_is_never_shorter_than_another(tmp_path: Path) -> None:
    mesh = _mesh(tmp_path, NO_TIMEOUTS.format(default="none", a="", b="", c=""))
    assert all(r.timeout is None for s in mesh.services for r in s.routes)  # type: ignore[attr-defined]
    assert _timeouts(tmp_path, default="none") == []
    # b may wait on c without limit; a gives up on b after 2s: a real inversion.
    assert ("error", "timeout-budget", "a -> b -> c") in _timeouts(tmp_path, default="2s", c=", timeout: none")


def test_an_inherited_inbound_timeout_covers_the_calls_below_it(tmp_path: Path) -> None:
    """b's own timeout (inherited 2s) would cut its inbound hop while it may wait 6s on c."""
    mesh = _mesh(tmp_path, NO_TIMEOUTS.format(default="2s", a="", b="", c=", timeout: 6s"))
    assert mesh.service("b").inbound_timeout == Duration(6000)  # type: ignore[attr-defined]
    assert mesh.service("c").inbound_timeout == Duration(6000)  # type: ignore[attr-defined]
    # Set on the service itself, it is taken as written, and lint says what it cuts.
    explicit = _timeouts(tmp_path, default="2s", b=", timeout: 3s", c=", timeout: 6s")
    assert ("error", "inbound-timeout", "b") in explicit


def test_no_timeout_renders_as_envoy_s_zero_and_says_none(tmp_path: Path) -> None:
    from pathlib import PurePosixPath

    from meshgen.render.envoy import Layout, render_sidecar

    mesh = _mesh(tmp_path, NO_TIMEOUTS.format(default="none", a="", b="", c=""))
    files = render_sidecar(mesh, mesh.service("a").instances[0], Layout(PurePosixPath("/x")).sidecar("a.v1.h1"))  # type: ignore[attr-defined]
    assert '"timeout": "0s"' in files["rds-outbound.yaml"] and "timeout none" in files["rds-outbound.yaml"]
    assert '"timeout": "0s"' in files["rds-inbound.yaml"]


def test_a_finding_can_be_ignored_with_a_reason_in_the_catalog_or_for_one_run(tmp_path: Path) -> None:
    text = dedent(CHAIN.format(extra="")).replace(
        "  name: chain\n",
        "  name: chain\n  lint:\n    ignore:\n"
        "      - {check: amplification, reason: retries are cheap reads here}\n"
        "      - {check: cycle, subject: x -> y, reason: no such cycle any more}\n",
    )
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["lint", str(path), "--json"])
    data = json.loads(result.output)
    assert {f["check"] for f in data["ignored"]} == {"amplification"}
    assert data["ignored"][0]["reason"] == "retries are cheap reads here"
    assert [i["subject"] for i in data["stale_ignores"]] == ["x -> y"]  # says which ignore is obsolete
    assert result.exit_code == 1  # the timeout inversions still stand
    run = CliRunner().invoke(main, ["lint", str(path), "--ignore", "timeout-budget"])
    assert run.exit_code == 0, run.output
    assert "ignored  timeout-budget" in run.output and "--ignore on the command line" in run.output


def test_an_ignore_needs_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        dedent(CHAIN.format(extra="")).replace("  name: chain\n", "  name: chain\n  lint: {ignore: [{check: cycle}]}\n")
    )
    result = CliRunner().invoke(main, ["lint", str(path)])
    assert result.exit_code == 2 and "mesh.lint.ignore[0].reason: required field is missing" in result.stderr
