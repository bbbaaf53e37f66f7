"""An external's circuit breaker reaches its cluster whole: max_requests_per_connection and
panic_threshold were dropped for externals (kept for services), so a catalog setting them got
nothing, silently. Checked in the rendered cluster and by the real Envoy."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
import yaml

from meshgen.model import load_mesh
from meshgen.render.envoy import Layout, render_envoy
from meshgen.render.envoy.validate import split_sidecars, validate_sidecars

CATALOG = """\
mesh: {name: ext, security: {mtls: off}}
hosts:
  web-1: {address: 127.0.75.1}
external:
  payments:
    address: 127.0.75.50
    port: 8443
    circuit_breaker: {max_requests_per_connection: 7, panic_threshold: 0}
services:
  web:
    port: 8080
    edge: true
    versions: {v1: {instances: [web-1]}}
    dependencies: [payments]
"""


def _cluster(files: dict[str, str], sidecar: str, name: str) -> dict[str, object]:
    document = yaml.safe_load(files[f"{sidecar}/cds.yaml"])
    return next(c for c in document["resources"] if c["name"] == name)


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    return render_envoy(load_mesh(tmp_path / "catalog.yaml"), Layout(PurePosixPath("/etc/envoy")))


def test_an_externals_connection_reuse_and_panic_threshold_reach_its_cluster(files: dict[str, str]) -> None:
    cluster = _cluster(files, "web.v1.web-1", "external.payments")
    options = cluster["typed_extension_protocol_options"]
    assert isinstance(options, dict)
    http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert http["common_http_protocol_options"] == {"max_requests_per_connection": 7}
    assert cluster["common_lb_config"] == {"healthy_panic_threshold": {"value": 0}}


@pytest.mark.envoy
def test_envoy_accepts_it(files: dict[str, str]) -> None:
    validate_sidecars(split_sidecars(files))
