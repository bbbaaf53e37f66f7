"""A changed bootstrap restarts Envoy (a hot restart: a new process). What changes live (routes,
clusters, listeners, secrets, the mTLS mode, a dependency's own listener) must leave every
bootstrap byte for byte the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshgen.model import load_mesh
from meshgen.render.envoy import render_envoy
from meshgen.render.envoy.names import BOOTSTRAP_FILE
from tests.support import layout_of

CATALOG = """
mesh:
  name: stable
  security: {mtls: MODE}
hosts:
  a-1: {address: 127.0.30.1}
  b-1: {address: 127.0.30.2}
services:
  a:
    port: 8080
    edge: true
    versions: {v1: {instances: [a-1]}}
    dependencies: [DEPENDENCY]
  b:
    port: 8080
    versions: {v1: {instances: [b-1]}}
"""

VARIANTS = {
    "off": ("off", "b"),
    "permissive": ("permissive", "b"),
    "strict": ("strict", "b"),
    "own listener": ("strict", "{service: b, local_port: 9091}"),
    "own address": ("strict", "{service: b, address: 127.0.30.200}"),
}


def bootstraps(tmp_path: Path, mode: str, dependency: str) -> dict[str, str]:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.replace("MODE", mode).replace("DEPENDENCY", dependency))
    files = render_envoy(load_mesh(path), layout_of(tmp_path / "out"))
    return {name: text for name, text in files.items() if name.endswith(f"/{BOOTSTRAP_FILE}")}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_bootstrap_is_the_same_whatever_changes_live(tmp_path: Path, variant: str) -> None:
    assert bootstraps(tmp_path, *VARIANTS[variant]) == bootstraps(tmp_path, "off", "b")
