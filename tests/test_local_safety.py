"""A live local mesh never takes a config its Envoy refuses, says when a sidecar runs something
else than its files, and changes that restart an Envoy lose no request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local.runner import down, status, up
from meshgen.errors import EnvoyRejectedError
from meshgen.model import load_mesh
from meshgen.verify import run_checks
from meshgen.verify.http import send
from tests.support import SteadyTraffic

pytestmark = pytest.mark.envoy

CATALOG = """
mesh:
  name: safety
  sidecar: {max_downstream_connections: %d}
hosts:
  front-1: {address: 127.0.62.1}
  back-1: {address: 127.0.62.2}
  back-2: {address: 127.0.62.3}
services:
  front: {port: 8080, edge: true, versions: {v1: {instances: [front-1]}}, dependencies: [back]}
  back:
    port: 8080
    versions: {v1: {instances: [back-1]}, v2: {instances: [back-2]}}
    routes:
      - name: bots
        match: {headers: {user-agent: {regex: "%s"}}}
        to: {v2: 100}
      - name: everyone
        to: {v1: 100}
"""
GOOD_REGEX = "^bot-.*"
# Python's re accepts a lookahead, so `meshgen validate` does; Envoy's RE2 does not.
REFUSED_REGEX = "^(?!human).*bot.*"


def write_catalog(directory: Path, regex: str, max_connections: int = 50_000) -> Path:
    path = directory / "catalog.yaml"
    path.write_text(CATALOG % (max_connections, regex))
    return path


@pytest.fixture
def mesh_dir(tmp_path: Path) -> Iterator[Path]:
    state_dir = tmp_path / "state"
    up(write_catalog(tmp_path, GOOD_REGEX), state_dir)
    try:
        yield tmp_path
    finally:
        down(state_dir)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*.yaml"))}


def call_back() -> int:
    return send("127.0.62.129", 15001, "/", headers={"Host": "back"}).status


def test_a_config_envoy_refuses_is_never_written(mesh_dir: Path) -> None:
    state_dir = mesh_dir / "state"
    before = snapshot(state_dir / "config")
    with pytest.raises(EnvoyRejectedError, match=r"(?s)sidecar front\.v1\.front-1.*invalid"):
        up(write_catalog(mesh_dir, REFUSED_REGEX), state_dir)
    assert snapshot(state_dir / "config") == before
    assert call_back() == 200
    _, processes = status(state_dir)
    assert all(p.healthy for p in processes), processes

    result = CliRunner().invoke(main, ["up", str(mesh_dir / "catalog.yaml"), "--state-dir", str(state_dir)])
    assert result.exit_code == 2, result.output
    assert "envoy rejected sidecar front.v1.front-1" in result.stderr
    assert snapshot(state_dir / "config") == before


def test_status_reports_a_file_envoy_refused_until_meshgen_replaces_it(mesh_dir: Path) -> None:
    state_dir = mesh_dir / "state"
    clusters = state_dir / "config" / "back.v1.back-1" / "cds.yaml"
    edited = clusters.read_text().replace('"connect_timeout": "1s"', '"connect_timeout": "-1s"', 1)
    edited = edited.replace('"version_info": "', '"version_info": "edited-', 1)
    temporary = clusters.with_name(".cds.yaml.edit")
    temporary.write_text(edited)
    temporary.rename(clusters)  # as an editor or another tool might, behind meshgen's back

    def refused() -> list[str]:
        _, processes = status(state_dir)
        return [problem for p in processes for problem in p.problems]

    problems = refused()
    for _ in range(50):  # Envoy notices the rename within milliseconds
        if problems:
            break
        problems = refused()
    assert any(f"{clusters}: not loaded" in p for p in problems), problems
    assert any("Invalid duration" in p for p in problems), problems
    result = CliRunner().invoke(main, ["status", "--state-dir", str(state_dir)])
    assert result.exit_code == 1 and "CONFIG REFUSED" in result.output, result.output
    mesh = load_mesh(mesh_dir / "catalog.yaml")
    verdicts = {r.name: r for r in run_checks(mesh, ("config",))[0]}
    assert not verdicts["back.v1.back-1"].passed and "cds.yaml not loaded" in verdicts["back.v1.back-1"].detail
    assert verdicts["front.v1.front-1"].passed

    up(mesh_dir / "catalog.yaml", state_dir)
    assert refused() == []
    assert CliRunner().invoke(main, ["status", "--state-dir", str(state_dir)]).exit_code == 0
    assert all(r.passed for r in run_checks(mesh, ("config",))[0])


def test_apps_are_reached_only_through_their_sidecar(mesh_dir: Path) -> None:
    """Apps bind their host's local address, never its mesh address; the demo app's control
    endpoints answer only callers on its own host, not the mesh."""
    back_mesh, back_local, front_local = "127.0.62.2", "127.0.62.130", "127.0.62.129"
    assert send(back_mesh, 8080, "/").status == 0  # nothing listens there: connection refused
    assert call_back() == 200  # through the sidecars, which do listen
    assert send(back_local, 8080, "/_demo/stats", source=back_local).status == 200
    assert send(back_local, 8080, "/_demo/stats", source=front_local).status == 403
    through_mesh = send(front_local, 15001, "/_demo/faults", headers={"Host": "back"}, method="PUT", body=b"{}")
    assert through_mesh.status == 403


def test_a_bootstrap_change_restarts_every_envoy_without_failing_a_request(mesh_dir: Path) -> None:
    """A bootstrap change (here every sidecar's connection limit) needs new Envoy processes: each
    takes over its predecessor's sockets (hot restart), callers and callees alike, under load."""
    state_dir = mesh_dir / "state"
    before = {p.process.name: p.process.pid for p in status(state_dir)[1] if p.process.kind == "envoy"}
    with SteadyTraffic(call_back, call_back) as traffic:
        report = up(write_catalog(mesh_dir, GOOD_REGEX, max_connections=40_000), state_dir)
    assert sorted(report.restarted) == sorted(before)
    after = {p.process.name: p.process.pid for p in status(state_dir)[1] if p.process.kind == "envoy"}
    assert set(after) == set(before) and all(after[name] != before[name] for name in before)
    assert set(traffic.statuses) == {200}, traffic.statuses
    assert all(p.healthy for p in status(state_dir)[1])
