"""The envoy role's envoy-apply-sidecar (standalone, run on hosts): a sidecar with mutual TLS is
validated by the real Envoy with its SDS secrets inlined as static secrets naming the host's real
certificate files, refused with a clear reason while those files are missing, and applied with
the secrets first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from meshgen.durations import Duration
from meshgen.model import load_mesh
from meshgen.pki.authority import own_authority
from meshgen.pki.store import TlsStore
from meshgen.render.envoy import Layout, render_envoy
from meshgen.render.envoy.validate import find_envoy
from meshgen.render.output import write_tree
from tests.support import REPO

pytestmark = pytest.mark.envoy
SCRIPT = REPO / "roles/envoy/files/envoy-apply-sidecar"
CATALOG = REPO / "molecule/default/catalog.yaml"
SIDECAR = "caller.v1.caller-1"


def _stage(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The sidecar's rendered files staged, its live directory (empty) and the TLS root (empty)."""
    live_root, tls_root, staged_root = tmp_path / "live", tmp_path / "tls", tmp_path / "staged"
    layout = Layout(PurePosixPath(live_root.as_posix()), PurePosixPath(tls_root.as_posix()))
    write_tree(staged_root, render_envoy(load_mesh(CATALOG), layout))
    (live_root / SIDECAR).mkdir(parents=True)
    return staged_root / SIDECAR, live_root / SIDECAR, tls_root


def _install_certificates(tls_root: Path, tmp_path: Path) -> None:
    mesh = load_mesh(CATALOG)
    authority = own_authority(tmp_path / "ca", mesh.security.trust_domain, Duration(3_600_000))
    store = TlsStore(tls_root)
    store.install_trust(authority.bundle)
    leaf, key = authority.issue(mesh.security.service_id("caller"), Duration(3_600_000))
    store.install_identity(SIDECAR, leaf, authority.chain, key)


def _run(staged: Path, live: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--envoy", find_envoy(), "--staged", str(staged), "--live", str(live)]
    return subprocess.run([*command, *options], capture_output=True, text=True, timeout=300, check=False)


def test_a_sidecar_with_mutual_tls_validates_against_the_installed_certificates(tmp_path: Path) -> None:
    staged, live, tls_root = _stage(tmp_path)
    _install_certificates(tls_root, tmp_path)

    result = _run(staged, live)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"valid": True}


def test_missing_certificates_are_a_refusal_that_names_them(tmp_path: Path) -> None:
    staged, live, tls_root = _stage(tmp_path)

    result = _run(staged, live, "--apply")

    assert result.returncode == 1
    assert f"{tls_root}/{SIDECAR}/current/cert.pem" in result.stderr, result.stderr
    assert "not on this host yet" in result.stderr
    assert list(live.iterdir()) == []


def test_apply_puts_secrets_live_first_and_the_bootstrap_last(tmp_path: Path) -> None:
    staged, live, tls_root = _stage(tmp_path)
    _install_certificates(tls_root, tmp_path)

    result = _run(staged, live, "--apply")

    assert result.returncode == 0, result.stderr
    changed = json.loads(result.stdout)["changed"]
    assert changed[:2] == ["sds-identity.yaml", "sds-trust.yaml"]
    assert changed[2] == "cds.yaml" and changed[-2:] == ["lds.yaml", "envoy.yaml"]
    assert sorted(p.name for p in live.iterdir()) == sorted(changed)


def test_a_broken_secret_is_refused_by_envoy(tmp_path: Path) -> None:
    staged, live, tls_root = _stage(tmp_path)
    _install_certificates(tls_root, tmp_path)
    key = tls_root / SIDECAR / "current" / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")

    result = _run(staged, live)

    assert result.returncode == 1
    assert "resources inlined" in result.stderr, result.stderr
