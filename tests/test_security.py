"""Mutual TLS and authorization on real meshes: what verify proves, and what it cannot (rotation
under load, revocation, migration between modes, renewal at half life), shown on live Envoys."""

from __future__ import annotations

import json
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.admin import certificates_in_use
from meshgen.deploy.local.certs import CA_DIR, TLS_DIR
from meshgen.deploy.local.runner import down, status, up
from meshgen.model import load_mesh
from meshgen.pki.authority import Authority, load_authority
from meshgen.pki.store import TlsStore
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.http import send, send_many
from meshgen.verify.mtls import https_request, mint, plain_line, tls_line
from tests.support import TESTDATA, SteadyTraffic

pytestmark = pytest.mark.envoy
SECURE = TESTDATA / "catalogs/secure.yaml"
WEB_OUTBOUND = ("127.0.63.129", 15001)  # web-1's local address
AUDIT_DB = ("127.0.63.132", 5432)  # audit-1's local listener for db
API_INBOUND = ("127.0.63.2", 15006)
DB_INBOUND = ("127.0.63.3", 15006)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("secure")
    try:
        up(SECURE, directory)
        yield directory
    finally:
        down(directory)


def authority(state_dir: Path) -> Authority:
    found = find_authority(load_mesh(SECURE), None, state_dir)
    assert found is not None
    return found


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SECURE.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "catalog.yaml"
    path.write_text(text.replace(old, new))
    return path


def call_api(path: str = "/api/items", method: str = "GET") -> int:
    return send(*WEB_OUTBOUND, path, headers={"Host": "api"}, method=method, timeout=10).status


def envoy_pids(state_dir: Path) -> dict[str, int]:
    return {p.process.name: p.process.pid for p in status(state_dir)[1] if p.process.kind == "envoy"}


def serials(state_dir: Path) -> dict[str, tuple[set[int], set[int]]]:
    found = {}
    for item in status(state_dir)[1]:
        if item.process.kind == "envoy":
            in_use = certificates_in_use(item.process.admin or "")
            assert in_use is not None
            found[item.process.name] = in_use
    return found


def test_verify_proves_identities_and_authorization(state_dir: Path) -> None:
    results, skipped = run_checks(load_mesh(SECURE), ("security",), authority=authority(state_dir))
    failed = [r for r in results if not r.passed]
    assert not failed and not skipped, failed or skipped
    names = {r.name for r in results}
    assert {
        "web: plaintext from outside",
        "api: plaintext",
        "api: certificate from another CA",
        "api: refuses whom it does not admit",
        "api: admits web",
        "api: admits client reports",
        "db: refuses whom it does not admit",
        "db: admits api",
        "db: admits audit",
        "web -> api",
        "audit -> db",
    } <= names, sorted(names)


def test_verify_fails_for_a_caller_the_catalog_forbids(state_dir: Path, tmp_path: Path) -> None:
    """The running mesh lets audit call db; a catalog in which audit does not must fail."""
    narrower = edited(
        tmp_path, "      v1: {instances: [audit-1]}\n    dependencies: [db]\n", "      v1: {instances: [audit-1]}\n"
    )
    results, _ = run_checks(load_mesh(narrower), ("security",), authority=authority(state_dir))
    verdicts = {r.name: r for r in results}
    assert verdicts["db: refuses whom it does not admit"].passed is False
    assert "spiffe://secure/service/audit" in verdicts["db: refuses whom it does not admit"].detail


def _log_lines(state_dir: Path, instance: str, wanted: Callable[[dict[str, str]], bool]) -> list[dict[str, str]]:
    """Access log lines of an instance's sidecar matching `wanted`, waiting for Envoy's flush."""
    log = state_dir / "logs" / f"{instance}.envoy.log"
    deadline = time.monotonic() + 5
    while True:
        lines = []
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if wanted(entry):
                    lines.append(entry)
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_a_refused_call_is_logged_with_the_policy_that_refused_it(state_dir: Path, tmp_path: Path) -> None:
    mesh = load_mesh(SECURE)
    trust = authority(state_dir).bundle
    auditor = mint(authority(state_dir), mesh.security.service_id("audit"), trust, tmp_path)
    assert https_request(*API_INBOUND, "api", auditor, path="/api/x").reply.status == 403
    assert call_api("/api/x", method="DELETE") == 403  # web may GET and POST only
    assert call_api("/other") == 403  # and only under /api/
    denied = _log_lines(state_dir, "api.v1.api-1", lambda e: e.get("status") == 403)
    policies = {(e["peer"], e["details"]) for e in denied}
    assert ("spiffe://secure/service/audit", "rbac_access_denied_matched_policy[default-deny]") in policies
    assert ("spiffe://secure/service/web", "rbac_access_denied_matched_policy[web-outside-its-rules]") in policies


def test_callers_refuse_a_callee_presenting_another_identity(state_dir: Path) -> None:
    """A certificate of the mesh CA is not enough: web accepts api only as spiffe://secure/service/api."""
    assert call_api() == 200
    mesh = load_mesh(SECURE)
    ca = load_authority(mesh.security, state_dir / CA_DIR)
    impostor, key = ca.issue(mesh.security.service_id("db"), mesh.security.leaf_lifetime)
    TlsStore(state_dir / TLS_DIR).install_identity("api.v1.api-1", impostor, ca.chain, key)
    api_admin = "127.0.63.130:15000"
    deadline = time.monotonic() + 5
    while impostor.serial_number not in (certificates_in_use(api_admin) or (set(), set()))[0]:
        assert time.monotonic() < deadline, "api's sidecar did not load the swapped certificate"
        time.sleep(0.05)
    # Connections web's sidecar opened before stay up; slow concurrent calls need new ones, whose
    # handshakes web's sidecar refuses.
    slow = partial(send, *WEB_OUTBOUND, "/api/items", headers={"Host": "api", "x-demo-delay": "500ms"}, timeout=10)
    statuses = Counter(reply.status for reply in send_many(8, slow, workers=8))
    assert statuses[503] >= 4, statuses
    report = up(SECURE, state_dir)  # notices the wrong identity and issues the right one
    assert report.applied
    assert Counter(reply.status for reply in send_many(8, slow, workers=8)) == {200: 8}


def test_removing_a_dependency_revokes_the_caller_before_up_returns(state_dir: Path, tmp_path: Path) -> None:
    mesh = load_mesh(SECURE)
    auditor = mint(authority(state_dir), mesh.security.service_id("audit"), authority(state_dir).bundle, tmp_path)
    assert "db v1" in tls_line(*DB_INBOUND, "db", auditor).reply.body
    try:
        started = time.monotonic()
        up(
            edited(
                tmp_path,
                "      v1: {instances: [audit-1]}\n    dependencies: [db]\n",
                "      v1: {instances: [audit-1]}\n",
            ),
            state_dir,
        )
        revoked = tls_line(*DB_INBOUND, "db", auditor)
        elapsed = time.monotonic() - started
        assert revoked.handshake and revoked.reply.status == 0, (revoked, elapsed)  # closed by RBAC, at once
    finally:
        up(SECURE, state_dir)
    assert "db v1" in tls_line(*DB_INBOUND, "db", auditor).reply.body


def test_rotating_every_certificate_and_the_ca_under_load_loses_nothing(state_dir: Path) -> None:
    pids = envoy_pids(state_dir)
    before = serials(state_dir)
    with SteadyTraffic(call_api, call_api, lambda: 200 if "db v1" in plain_line(*AUDIT_DB) else 0) as traffic:
        leaves = CliRunner().invoke(main, ["certs", "rotate", "--state-dir", str(state_dir)])
        assert leaves.exit_code == 0, leaves.output
        after_leaves = serials(state_dir)
        ca = CliRunner().invoke(main, ["certs", "rotate", "--ca", "--state-dir", str(state_dir)])
        assert ca.exit_code == 0, ca.output
    after_ca = serials(state_dir)
    assert set(traffic.statuses) == {200}, traffic.statuses
    assert envoy_pids(state_dir) == pids  # nothing restarted
    for name, (leaf, authorities) in before.items():
        assert not leaf & after_leaves[name][0], name  # new certificates everywhere
        assert after_leaves[name][1] == authorities  # the same CA
        assert authorities < after_ca[name][1], name  # the old CA still trusted next to the new one
        assert not after_leaves[name][0] & after_ca[name][0], name
    results, _ = run_checks(load_mesh(SECURE), ("security",), authority=authority(state_dir))
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_key_material_is_private_and_certs_status_lists_every_identity(state_dir: Path) -> None:
    keys = [*(state_dir / TLS_DIR).glob("*/*/key.pem"), *(state_dir / CA_DIR).glob("*/ca-key.pem")]
    assert len(keys) >= 4
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700, key.parent
    result = CliRunner().invoke(main, ["certs", "status", "--state-dir", str(state_dir), "--json"])
    assert result.exit_code == 0, result.output
    identities = {i["instance"]: i for i in json.loads(result.output)["identities"]}
    assert identities["api.v1.api-1"]["spiffe_id"] == "spiffe://secure/service/api"
    assert all(i["renew"] is None for i in identities.values())
    assert "PRIVATE KEY" not in result.output


def test_a_named_client_gets_what_its_rule_allows(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = CliRunner().invoke(
        main, ["certs", "issue-client", "reports", "-o", str(out), "--state-dir", str(state_dir)]
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    from meshgen.verify.mtls import Credentials

    (out / "trust.pem").write_bytes((out / "ca.pem").read_bytes())
    client = Credentials(out)
    assert https_request(*API_INBOUND, "api", client, path="/anything").reply.status == 200
    assert https_request(*API_INBOUND, "api", client, method="POST", path="/anything").reply.status == 403


# -- a mesh that migrates between modes, and renews on its own ---------------------------------

CHAIN = """
mesh:
  name: migrate
  security: {mtls: %s, leaf_lifetime: %s}
hosts:
  a-1: {address: 127.0.64.1}
  b-1: {address: 127.0.64.2}
  c-1: {address: 127.0.64.3}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b: {port: 8080, versions: {v1: {instances: [b-1]}}, dependencies: [c]}
  c: {port: 8080, versions: {v1: {instances: [c-1]}}}
"""


def chain(tmp_path: Path, mode: str, leaf_lifetime: str = "1h") -> Path:
    path = tmp_path / f"chain-{mode}-{leaf_lifetime}.yaml"
    path.write_text(CHAIN % (mode, leaf_lifetime))
    return path


def call_chain() -> int:
    """a's sidecar -> b, and b calls c through its own sidecar: two hops between sidecars."""
    return send("127.0.64.129", 15001, "/", headers={"Host": "b", "x-demo-call": "c"}, timeout=10).status


def test_moving_between_plaintext_and_strict_fails_no_request_and_restarts_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    up(chain(tmp_path, "off"), state_dir)
    try:
        pids = envoy_pids(state_dir)
        with SteadyTraffic(call_chain, call_chain) as traffic:
            for mode in ("permissive", "strict", "off", "strict"):  # off <-> strict goes through permissive
                up(chain(tmp_path, mode), state_dir)
                time.sleep(0.3)
        assert set(traffic.statuses) == {200}, traffic.statuses
        assert envoy_pids(state_dir) == pids
        assert send("127.0.64.2", 15006, "/", headers={"Host": "b"}, timeout=5).status == 0  # strict at the end
    finally:
        down(state_dir)


def test_the_renewer_replaces_certificates_at_half_life_under_load(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    up(chain(tmp_path, "strict", "8s"), state_dir)
    try:
        first = serials(state_dir)
        with SteadyTraffic(call_chain) as traffic:
            deadline = time.monotonic() + 12
            while any(leaf & first[name][0] for name, (leaf, _) in serials(state_dir).items()):
                assert time.monotonic() < deadline, "certificates were not renewed after half their lifetime"
                time.sleep(0.5)
        assert set(traffic.statuses) == {200}, traffic.statuses
        renewed = (state_dir / "logs" / "certificate.renewer.log").read_text()
        assert "renewed a.v1.a-1: past half its lifetime" in renewed
    finally:
        down(state_dir)
