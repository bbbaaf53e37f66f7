"""Knobs users of other meshes reach for, on a live mesh: the panic threshold, TCP health checks,
requests per connection, relative weights, and untraced health checks. Hosts on 127.0.66.x."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshgen.deploy.local.runner import down, up
from meshgen.model import load_mesh
from meshgen.verify import run_checks
from meshgen.verify.authority import find_authority
from meshgen.verify.checks.base import demo_stats, set_fault
from meshgen.verify.http import envoy_stat, send

pytestmark = pytest.mark.envoy

CATALOG = """
mesh:
  name: knobs
  tracing: {provider: zipkin, collector: collector-1:9411}
hosts:
  collector-1: {address: 127.0.66.9}
  front-1: {address: 127.0.66.1}
  lone-1: {address: 127.0.66.2}
  pool-1: {address: 127.0.66.3}
  db-1: {address: 127.0.66.4}
  db-2: {address: 127.0.66.5}
  ab-1: {address: 127.0.66.6}
  ab-2: {address: 127.0.66.7}
services:
  front:
    port: 8080
    edge: true
    versions: {v1: {instances: [front-1]}}
    dependencies: [lone, pool, db, ab]
    authorization: [{outside: true}]
  lone:
    port: 8080
    versions: {v1: {instances: [lone-1]}}
    circuit_breaker: {consecutive_5xx: 2, max_ejection_percent: 100, ejection_time: 30s, panic_threshold: 0}
  pool:
    port: 8080
    versions: {v1: {instances: [pool-1]}}
    circuit_breaker: {max_requests_per_connection: 5}
    health_check: {path: /healthz, interval: 1s}
  db:
    port: 5432
    protocol: tcp
    versions: {v1: {instances: [db-1, db-2]}}
    health_check: {send: "health\\n", expect: "db v1", interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1}
  ab:
    port: 8080
    versions: {a: {instances: [ab-1]}, b: {instances: [ab-2]}}
    routes:
      - {name: mostly-a, to: {a: 9, b: 1}}
"""
FRONT_LOCAL, FRONT_ADMIN = "127.0.66.129", "127.0.66.129:15000"


@pytest.fixture(scope="module")
def mesh_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("knobs")
    catalog = directory / "catalog.yaml"
    catalog.write_text(CATALOG)
    try:
        up(catalog, directory / "state")
        yield directory
    finally:
        down(directory / "state")


def call(host: str) -> int:
    return send(FRONT_LOCAL, 15001, "/", headers={"Host": host}, timeout=10).status


def test_panic_threshold_0_stops_traffic_to_an_ejected_only_instance(mesh_dir: Path) -> None:
    """Envoy's default (50%) keeps sending to a pool whose only host is ejected; 0 stops it."""
    lone = ("127.0.66.130", 8080)
    set_fault(lone, {"fail_percent": 100})
    try:
        deadline = time.monotonic() + 10
        while envoy_stat(FRONT_ADMIN, "cluster.lone.v1.outlier_detection.ejections_active") == 0:
            assert time.monotonic() < deadline, "lone was not ejected"
            call("lone")
        demo_stats(lone, reset=True)
        statuses = [call("lone") for _ in range(10)]
        assert statuses == [503] * 10
        assert demo_stats(lone).get("requests", 0) == 0  # none reached the ejected instance
    finally:
        set_fault(lone, {})


def test_requests_per_connection_are_capped(mesh_dir: Path) -> None:
    before = envoy_stat(FRONT_ADMIN, "cluster.pool.v1.upstream_cx_max_requests")
    assert all(call("pool") == 200 for _ in range(12))
    assert envoy_stat(FRONT_ADMIN, "cluster.pool.v1.upstream_cx_max_requests") - before >= 2  # 12 over 5 a piece


def test_a_tcp_health_check_takes_a_dead_instance_out(mesh_dir: Path) -> None:
    state = load_mesh(mesh_dir / "catalog.yaml")
    assert state.service("db").health_check is not None

    def flags() -> list[str]:
        clusters = str(send(FRONT_LOCAL, 15000, "/clusters").body)
        return re.findall(r"^db\.v1::127\.0\.66\.\d+:\d+::health_flags::(\S+)$", clusters, re.MULTILINE)

    assert flags() == ["healthy", "healthy"]
    # db-2's sidecar still listens, its app goes away: the check gets no answer from the app.
    down_app = _stop_app(mesh_dir, "db.v1.db-2 app")
    try:
        deadline = time.monotonic() + 6
        while sorted(flags()) != ["/failed_active_hc", "healthy"]:
            assert time.monotonic() < deadline, flags()
            time.sleep(0.2)
        for _ in range(6):  # every new connection lands on db-1, the healthy one
            with socket.create_connection((FRONT_LOCAL, 5432), timeout=5) as client:
                client.sendall(b"hi\n")
                assert client.recv(100).startswith(b"db v1 db.v1.db-1")
    finally:
        up(mesh_dir / "catalog.yaml", mesh_dir / "state")  # starts the app again
    assert down_app


def _stop_app(mesh_dir: Path, name: str) -> bool:
    from meshgen.deploy.local.processes import stop
    from meshgen.deploy.local.state import load_state

    state = load_state(mesh_dir / "state")
    assert state is not None
    process = state.by_name()[name]
    stop(process)
    return True


def test_relative_weights_route_as_their_shares(mesh_dir: Path) -> None:
    mesh = load_mesh(mesh_dir / "catalog.yaml")
    assert mesh.service("ab").routes[0].shares() == (("a", 90.0), ("b", 10.0))
    results, _ = run_checks(mesh, ("routing",), authority=find_authority(mesh, None, mesh_dir / "state"))
    verdict = next(r for r in results if r.name == "ab/mostly-a")
    assert verdict.passed, verdict


def test_health_checks_are_not_traced(mesh_dir: Path) -> None:
    """Probes reach the app (front's checks of pool succeed) but leave no span; requests do."""
    deadline = time.monotonic() + 10
    while envoy_stat(FRONT_ADMIN, "cluster.pool.v1.health_check.success") < 3:
        assert time.monotonic() < deadline, "front's sidecar does not probe pool"
        time.sleep(0.2)
    assert call("pool") == 200
    spans: list[dict[str, object]] = []
    deadline = time.monotonic() + 10
    while not any(s.get("localEndpoint", {}).get("serviceName") == "pool" for s in spans):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, spans
        time.sleep(0.3)
        traces = send("127.0.66.9", 9411, "/api/v2/traces?limit=1000").body
        spans = [span for trace in traces for span in trace]
    urls = [str(span.get("tags", {}).get("http.url", "")) for span in spans]  # type: ignore[union-attr]
    assert urls and not [url for url in urls if url.endswith("/healthz")], urls
