"""The dashboard's parts that need no running mesh: the graph derived from a catalog, the rate and
percentile arithmetic on successive samples, the loopback-only rule, the vendored library, and
verify's saved result. The page itself, on a live mesh in a real browser: test_dashboard.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.dashboard.metrics import EdgeStats, EnvoyAdminMetrics, Snapshot, bins_grown, quantile
from meshgen.dashboard.server import STATIC, loopback
from meshgen.dashboard.topology import OUTSIDE, Topology, topology
from meshgen.dashboard.traces import summary, waterfall
from meshgen.deploy.local.state import MeshState, save_state
from meshgen.errors import InputError
from meshgen.metrics.red import grown
from meshgen.model import load_mesh
from meshgen.verify.saved import VERIFY_FILE
from tests.support import TESTDATA

CATALOG = TESTDATA / "catalogs/dashboard.yaml"


def test_graph_has_every_service_version_and_external_and_an_edge_per_called_version() -> None:
    graph = topology(load_mesh(CATALOG))
    kinds = {node.id: node.kind for node in graph.nodes}
    assert kinds == {
        OUTSIDE: "outside",
        "gateway:front": "gateway",
        "service:web": "service",
        "version:web/v1": "version",
        "service:api": "service",
        "version:api/v1": "version",
        "version:api/v2": "version",
        "service:store": "service",
        "version:store/v1": "version",
        "external:payments": "external",
    }
    parents = {node.id: node.parent for node in graph.nodes if node.kind == "version"}
    assert parents["version:api/v2"] == "service:api"
    edges = {edge.id: edge for edge in graph.edges}
    assert set(edges) == {
        "outside->gateway:front",
        "gateway:front->version:web/v1",
        "gateway:front->version:api/v1",
        "gateway:front->version:api/v2",
        "outside->version:web/v1",
        "version:web/v1->version:api/v1",
        "version:web/v1->version:api/v2",
        "version:web/v1->external:payments",
        "version:api/v1->version:store/v1",
        "version:api/v2->version:store/v1",
    }
    # Measured where the caller's sidecar counts: the cluster of the callee's version, per caller instance.
    (reading,) = edges["version:web/v1->version:api/v2"].readings
    assert (reading.sidecar, reading.admin) == ("web.v1.web-1", "127.0.72.129:15000")
    assert (reading.requests, reading.errors, reading.latency) == (
        "cluster.api.v2.upstream_rq_total",
        "cluster.api.v2.upstream_rq_5xx",
        "cluster.api.v2.upstream_rq_time",
    )
    (payments,) = edges["version:web/v1->external:payments"].readings
    assert payments.requests == "cluster.external.payments.upstream_rq_total"
    # Calls from outside: the plaintext chain of the edge's inbound listener (mutual TLS is strict).
    (outside,) = edges["outside->version:web/v1"].readings
    assert outside.requests == "http.inbound_plaintext_http.downstream_rq_total"
    # A gateway is read from its own Envoy: what its HTTP and HTTPS listeners answered outside
    # callers, and what it sent to each version it routes to, as a caller's sidecar counts it.
    entering = edges["outside->gateway:front"].readings
    assert [(r.sidecar, r.admin, r.requests, r.errors, r.latency) for r in entering] == [
        (
            "front.gateway.gateway-1",
            "127.0.72.134:15000",
            f"http.{listener}.downstream_rq_total",
            f"http.{listener}.downstream_rq_5xx",
            f"http.{listener}.downstream_rq_time",
        )
        for listener in ("gateway_http", "gateway_https")
    ]
    (through,) = edges["gateway:front->version:web/v1"].readings
    assert (through.sidecar, through.requests, through.latency) == (
        "front.gateway.gateway-1",
        "cluster.web.v1.upstream_rq_total",
        "cluster.web.v1.upstream_rq_time",
    )
    gateway = next(node for node in graph.nodes if node.kind == "gateway")
    assert (gateway.label, gateway.details) == ("front", "/api/gateway/front")


PLAINTEXT = """
mesh: {name: plain, security: {mtls: off}}
hosts: {web-1: {address: 127.0.72.1}, gateway-1: {address: 127.0.72.6}}
services:
  web: {port: 8080, edge: true, versions: {v1: {instances: [web-1]}}}
"""
THROUGH_A_GATEWAY = """
gateways:
  front: {hosts: [gateway-1], port: 8080, routes: [{name: site, service: web}]}
"""


@pytest.mark.parametrize(("gateway", "counted"), [("", True), (THROUGH_A_GATEWAY, False)])
def test_without_mutual_tls_calls_from_outside_are_counted_apart_only_where_nothing_in_the_mesh_calls(
    tmp_path: Path, gateway: str, counted: bool
) -> None:
    # With mutual TLS off every caller, a gateway too, shares the edge sidecar's one inbound chain:
    # its count is then no longer that of callers from outside.
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(PLAINTEXT + gateway)
    edges = {edge.id: edge for edge in topology(load_mesh(catalog)).edges}
    readings = edges["outside->version:web/v1"].readings
    assert [r.requests for r in readings] == (["http.inbound_http.downstream_rq_total"] if counted else [])


def snapshot(taken: float, counters: dict[str, int], latency: dict[tuple[float, float], int]) -> Snapshot:
    return Snapshot(taken, counters, {"cluster.api.v1.upstream_rq_time": latency})


def test_rates_errors_and_p99_come_from_the_difference_between_samples() -> None:
    graph = topology(load_mesh(CATALOG))
    edge = "version:web/v1->version:api/v1"
    samples = [
        snapshot(100.0, {"cluster.api.v1.upstream_rq_total": 50}, {(3.0, 0.1): 50}),
        # 10 s later: 40 more requests, 4 of them 5xx; 36 took 5.0-5.1 ms, 4 took 90-100 ms.
        snapshot(
            110.0,
            {"cluster.api.v1.upstream_rq_total": 90, "cluster.api.v1.upstream_rq_5xx": 4},
            {(3.0, 0.1): 50, (5.0, 0.1): 36, (90.0, 10.0): 4},
        ),
    ]
    web_admin = "127.0.72.129:15000"

    def read(admin: str, names: list[str]) -> Snapshot | None:
        assert "cluster.api.v1.upstream_rq_time" in names or admin != web_admin
        return samples.pop(0) if admin == web_admin and samples else None

    metrics = EnvoyAdminMetrics(window=10.0, read=read)
    first = asyncio.run(metrics.sample(graph))
    assert first[edge].health == "unknown"  # one sample gives no rate
    stats = asyncio.run(metrics.sample(graph))[edge]
    assert stats.rate == pytest.approx(4.0)
    assert stats.errors == pytest.approx(0.1)
    assert stats.health == "failing"
    assert stats.p99 == pytest.approx(90.0 + 10.0 * (0.99 * 40 - 36) / 4)
    assert stats.window == pytest.approx(10.0)
    # A sidecar that stops answering makes its edges unknown, not zero.
    assert asyncio.run(metrics.sample(graph))[edge].health == "unknown"


def test_counter_and_histogram_resets_count_from_zero() -> None:
    assert grown(7, 3) == 4
    assert grown(2, 30) == 2  # the Envoy restarted
    assert bins_grown({(1.0, 0.1): 5, (2.0, 0.1): 3}, {(1.0, 0.1): 4}) == {(1.0, 0.1): 1, (2.0, 0.1): 3}
    assert bins_grown({(1.0, 0.1): 2}, {(1.0, 0.1): 4}) == {(1.0, 0.1): 2}


def test_quantile_interpolates_within_a_bin() -> None:
    assert quantile({}, 0.99) is None
    assert quantile({(10.0, 1.0): 100}, 0.5) == pytest.approx(10.5)
    assert quantile({(1.0, 0.1): 99, (200.0, 10.0): 1}, 0.99) == pytest.approx(1.1)
    assert quantile({(1.0, 0.1): 98, (200.0, 10.0): 2}, 0.99) == pytest.approx(205.0)


@pytest.mark.parametrize(
    ("rate", "errors", "health"),
    [(None, None, "unknown"), (0.0, None, "idle"), (3.0, 0.0, "ok"), (3.0, 0.01, "degraded"), (3.0, 0.05, "failing")],
)
def test_edge_health(rate: float | None, errors: float | None, health: str) -> None:
    assert EdgeStats(rate, errors, None, 10.0).health == health


def test_an_edge_without_readings_is_drawn_but_not_measured() -> None:
    graph = topology(load_mesh(CATALOG))
    bare = Topology(graph.nodes, tuple(e.__class__(e.id, e.source, e.target, e.protocol, ()) for e in graph.edges))
    stats = asyncio.run(EnvoyAdminMetrics(read=lambda admin, names: None).sample(bare))
    assert {s.health for s in stats.values()} == {"unknown"}


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.72.100", "::1", "localhost"])
def test_loopback_addresses_are_accepted(address: str) -> None:
    assert loopback(address) in {"127.0.0.1", "127.0.72.100", "::1"}


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.0.2.10", "10.0.0.1", "example.com"])
def test_other_addresses_are_refused(address: str) -> None:
    with pytest.raises(InputError):
        loopback(address)


def test_dashboard_refuses_a_non_loopback_address_before_anything_else(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--state-dir", str(tmp_path), "--address", "0.0.0.0"])
    assert result.exit_code == 2, result.output
    assert "not a loopback address" in result.output


def test_dashboard_without_a_running_mesh_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--state-dir", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "no local mesh is running" in result.output


def test_vendored_library_is_the_published_build_with_its_licenses() -> None:
    vendor = STATIC / "vendor"
    sums = (vendor / "SHA256SUMS").read_text().splitlines()
    checked = {}
    for line in sums:
        digest, name = line.split()
        checked[name] = hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest
    assert checked == {
        "cytoscape.min.js": True,
        "cytoscape-dagre.min.js": True,
        "LICENSE.cytoscape": True,
        "LICENSE.cytoscape-dagre": True,
        "LICENSE.dagre": True,
        "LICENSE.graphlib": True,
    }
    page = (STATIC / "index.html").read_text()
    assert "/static/vendor/cytoscape.min.js" in page and "/static/vendor/cytoscape-dagre.min.js" in page
    assert "http" not in page.replace('"http', "")  # nothing loaded from elsewhere


@pytest.mark.parametrize("recorded", [None, "another-mesh"])
def test_verify_saves_a_result_only_for_the_local_mesh_the_state_records(tmp_path: Path, recorded: str | None) -> None:
    if recorded is not None:
        save_state(tmp_path, MeshState(mesh=recorded, catalog="/elsewhere/catalog.yaml", config_dir=str(tmp_path)))
    CliRunner().invoke(main, ["verify", str(CATALOG), "--only", "config", "--state-dir", str(tmp_path)])
    assert not (tmp_path / VERIFY_FILE).exists()


SPANS = [
    {
        "traceId": "ab",
        "id": "1",
        "timestamp": 1_000_000,
        "duration": 10_000,
        "kind": "SERVER",
        "name": "web/inbound",
        "localEndpoint": {"serviceName": "web"},
        "tags": {"http.method": "GET", "http.url": "http://127.0.72.1:15006/x", "http.status_code": "200"},
    },
    {
        "traceId": "ab",
        "id": "2",
        "parentId": "1",
        "timestamp": 1_002_000,
        "duration": 5_000,
        "kind": "CLIENT",
        "name": "api/split",
        "localEndpoint": {"serviceName": "web"},
        "tags": {"http.status_code": "503", "upstream_cluster": "api.v2", "node_id": "web.v1.web-1"},
    },
]


def test_trace_summary_and_waterfall_rows() -> None:
    listed = summary(SPANS)
    assert listed["root"] == "web: GET http://127.0.72.1:15006/x"
    assert (listed["spans"], listed["duration_ms"], listed["failed"], listed["partial"]) == (2, 10.0, True, False)
    assert summary(SPANS[1:])["partial"] is True
    rows = waterfall(SPANS)["rows"]
    assert [(r["depth"], r["kind"], r["offset"], r["width"], r["failed"]) for r in rows] == [
        (0, "server", 0.0, 100.0, False),
        (1, "client", 20.0, 50.0, True),
    ]
    assert rows[1]["cluster"] == "api.v2" and rows[1]["instance"] == "web.v1.web-1"
    json.dumps(waterfall(SPANS))  # what the page receives


BOARD = """\
mesh: {{name: board, dashboard: "{dashboard}"}}
hosts:
  web-1: {{address: 127.0.74.1}}
services:
  web:
    port: 8080
    versions: {{v1: {{instances: [web-1]}}}}
"""


def _validate(tmp_path: Path, dashboard: str) -> tuple[int, str]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(BOARD.format(dashboard=dashboard))
    result = CliRunner().invoke(main, ["validate", str(catalog)])
    return result.exit_code, result.output


def test_the_dashboard_of_up_is_on_a_loopback_address_of_its_own(tmp_path: Path) -> None:
    assert _validate(tmp_path, "127.0.74.9:9900")[0] == 0
    assert load_mesh(tmp_path / "catalog.yaml").dashboard is not None
    code, output = _validate(tmp_path, "10.1.2.3:9900")
    assert code == 2 and "catalog.yaml:1: mesh.dashboard: the dashboard serves this machine only" in output, output
    code, output = _validate(tmp_path, "web-1:15006")  # a catalog host's name: its address, here taken
    assert code == 2 and "two listeners on 127.0.74.1:15006" in output and "dashboard" in output, output
