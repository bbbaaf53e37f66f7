"""`mesh.dashboard`: `meshgen up` serves the dashboard as one of the mesh's processes, prints its
URL, keeps the same process across a changed catalog (the page follows the mesh), and
`meshgen down` stops it (127.0.74.x)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local.runner import down, status

pytestmark = pytest.mark.envoy

CATALOG = """\
mesh:
  name: board
  dashboard: 127.0.74.9:9900
hosts:
  web-1: {address: 127.0.74.1}
  api-1: {address: 127.0.74.2}
services:
  web:
    port: 8080
    edge: true
    versions: {v1: {instances: [web-1]}}
    dependencies: [api]
  api:
    port: 8080
    versions: {v1: {instances: [api-1]}}
"""
# The same mesh and a third service, which web calls too.
GROWN = CATALOG.replace("dependencies: [api]", "dependencies: [api, db]").replace(
    "  api-1: {address: 127.0.74.2}\n", "  api-1: {address: 127.0.74.2}\n  db-1: {address: 127.0.74.3}\n"
) + ("  db:\n    port: 8080\n    versions: {v1: {instances: [db-1]}}\n")
URL = "http://127.0.74.9:9900/"


def _nodes() -> set[str]:
    with urllib.request.urlopen(URL + "api/graph", timeout=10) as response:
        return {node["id"] for node in json.load(response)["nodes"]}


def _dashboard_pids(state_dir: Path) -> list[int]:
    return [p.process.pid for p in status(state_dir)[1] if p.process.kind == "dashboard" and p.healthy]


def _listening(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, port)) == 0


def test_up_serves_the_dashboard_follows_the_mesh_and_down_stops_it(tmp_path: Path) -> None:
    catalog, state_dir = tmp_path / "catalog.yaml", tmp_path / "state"
    catalog.write_text(CATALOG)
    try:
        result = CliRunner().invoke(main, ["up", str(catalog), "--state-dir", str(state_dir)])
        assert result.exit_code == 0, result.output
        assert f"dashboard: {URL}" in result.output
        assert {"service:web", "service:api"} <= _nodes()
        pids = _dashboard_pids(state_dir)
        assert len(pids) == 1, status(state_dir)

        catalog.write_text(GROWN)
        result = CliRunner().invoke(main, ["up", str(catalog), "--state-dir", str(state_dir), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["dashboard"] == URL
        assert _dashboard_pids(state_dir) == pids
        deadline = time.monotonic() + 10
        while "service:db" not in (nodes := _nodes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "service:db" in nodes, nodes
    finally:
        down(state_dir)
    assert not _listening("127.0.74.9", 9900)
