"""Metrics: every sidecar's stats listener, the mesh's real Prometheus scraping them, `meshgen top`
from both sources and the Grafana dashboard's queries, against a live mesh with known traffic.

The mesh runs on 127.0.71.x. The traffic is counted from the answers themselves: N calls at the
gateway, each gateway -> web -> api -> store, api failing a quarter of its calls (the demo app's counter, no
randomness) and every fourth call delayed 300 ms at api. Counts must match exactly; durations
must fall in the histogram bucket that holds the true value (Envoy's buckets: ... 100, 250, 500).
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local import prometheus as local_prometheus
from meshgen.deploy.local.runner import down
from meshgen.metrics.exposition import Snapshot, parse
from meshgen.metrics.grafana import dashboard, expressions
from meshgen.metrics.red import INBOUND_PREFIXES, Samples, increase, quantile, red, report
from meshgen.metrics.sources import PrometheusSource, SidecarSource
from meshgen.model import Mesh, load_mesh
from meshgen.verify.http import Reply, run_all, send
from tests.support import REPO, REQUIRE_TOOLS, need_tool

CATALOG = """\
# The metrics test mesh, on 127.0.71.x; Prometheus on a port the Debian package's own service
# (9090, every address) never takes.
mesh:
  name: metrics
  metrics: {prometheus: prometheus-1:9091}
hosts:
  web-1: {address: 127.0.71.1}
  api-1: {address: 127.0.71.2}
  api-2: {address: 127.0.71.3}
  store-1: {address: 127.0.71.4}
  gateway-1: {address: 127.0.71.8}
  prometheus-1: {address: 127.0.71.9}
gateways:
  public:
    hosts: [gateway-1]
    routes: [{name: all, domains: ["*"], service: web}]
services:
  web:
    port: 8080
    edge: true
    versions:
      v1: {instances: [web-1]}
    dependencies: [api]
  api:
    port: 8080
    versions:
      v1: {instances: [api-1]}
      v2: {instances: [api-2]}
    dependencies: [store]
  store:
    port: 8080
    versions:
      v1: {instances: [store-1]}
"""
CALLS = 200
SETTLE_SECONDS = 30.0


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def wait_for(what: str, check: Callable[[], bool]) -> None:
    """Poll `check` until it holds; fail (not a timing assert: a bound on waiting) after a while."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {SETTLE_SECONDS:.0f}s")


# -- without a mesh -------------------------------------------------------------------------------


def test_exposition_reads_envoy_samples_with_escaped_labels() -> None:
    text = (
        "# TYPE envoy_cluster_upstream_rq_xx counter\n"
        'envoy_cluster_upstream_rq_xx{mesh="m",envoy_response_code_class="5",note="a \\"b\\" \\\\ c"} 7\n'
        'envoy_http_downstream_rq_time_bucket{le="+Inf"} 3\n'
        "envoy_server_live 1\n"
    )
    samples = parse(text)
    assert (
        samples[
            (
                "envoy_cluster_upstream_rq_xx",
                (("envoy_response_code_class", "5"), ("mesh", "m"), ("note", 'a "b" \\ c')),
            )
        ]
        == 7
    )
    assert samples[("envoy_http_downstream_rq_time_bucket", (("le", "+Inf"),))] == 3
    assert parse(text, {"envoy_server_live"}) == {("envoy_server_live", ()): 1}


def test_quantile_reads_buckets_as_prometheus_does() -> None:
    # 10 in (0, 1], 80 in (1, 5], 10 in (250, 500]: cumulative counts.
    buckets = {1.0: 10, 5.0: 90, 250.0: 90, 500.0: 100, math.inf: 100}
    assert quantile(0.05, buckets) == pytest.approx(0.5)  # halfway through the first bucket
    assert quantile(0.5, buckets) == pytest.approx(1 + 4 * (50 - 10) / 80)
    assert quantile(0.99, buckets) == pytest.approx(250 + 250 * 9 / 10)
    assert quantile(0.5, {1.0: 0, math.inf: 0}) is None
    assert quantile(0.99, {1.0: 1, math.inf: 100}) == 1.0  # in +Inf: the highest finite bound


def test_a_counter_that_fell_was_reset() -> None:
    series = ("x", (("instance", "a"),))
    assert increase({series: 10}, {series: 4}, {"a"}) == {series: 4}
    assert increase({series: 10}, {series: 14}, {"a"}) == {series: 4}
    assert increase({}, {series: 14}, set()) == {}  # an instance not reached both times counts nothing


def test_top_table_says_whom_it_had_no_data_from_and_why() -> None:
    from meshgen.metrics.top import to_table

    row = {"requests": 0, "rps": 0.0, "errors": 0, "error_percent": None, "p50_ms": None, "p99_ms": None}
    document = {
        "mesh": "m",
        "source": "prometheus",
        "prometheus": "http://127.0.0.1:9091",
        "window_seconds": 10.0,
        "services": [{"service": "a", **row}],
        "edges": [{"caller": "a", "callee": "b", **row}],
        "missing": ["a.v1.a-1"],
    }
    text = to_table(document)
    assert "a -> b" in text and "     -" in text
    assert "no data from: a.v1.a-1: Prometheus has no sample of them both now and 10s ago" in text
    assert "their stats listeners did not answer" in to_table({**document, "source": "sidecars", "prometheus": None})


def test_without_the_binary_up_says_how_to_install_prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    monkeypatch.setenv("MESHGEN_PROMETHEUS", str(tmp_path / "no-such-prometheus"))
    mesh = load_mesh(path)
    assert not local_prometheus.runs_prometheus(mesh)
    assert local_prometheus.spec(mesh, tmp_path) is None
    [note] = local_prometheus.notes(mesh)
    assert "apt-get install prometheus" in note and "127.0.71.9:9091" in note


def test_dashboard_structure(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    result = invoke("grafana", path)
    assert result.exit_code == 0, result.output
    board = json.loads(result.stdout)
    assert board == dashboard(load_mesh(path))
    assert board["schemaVersion"] == 39 and board["uid"] == "meshgen-metrics"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["mesh"]["query"] == "metrics" and variables["service"]["query"] == "public,web,api,store"
    rows = [p for p in board["panels"] if p["type"] == "row"]
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(rows) == 2 and len(panels) == 8
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in panels:
        assert panel["type"] == "timeseries" and panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        [target] = panel["targets"]
        assert target["refId"] == "A" and target["datasource"] == panel["datasource"]
        assert 'mesh="$mesh"' in target["expr"] and "$__rate_interval" in target["expr"]
    # Panels of a row side by side, rows one below the other: nothing overlaps.
    cells = {(p["gridPos"]["x"] + dx, p["gridPos"]["y"] + dy) for p in panels for dx in range(6) for dy in range(8)}
    assert len(cells) == 6 * 8 * len(panels)


GRAFANA_TYPES = REPO / "tests/grafana/node_modules"


def _type_check(board: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    """Grafana's own TypeScript type of a dashboard (@grafana/schema, pinned in tests/grafana)
    checked against `board` by the TypeScript compiler: an object literal may carry only fields the
    type knows, each of its type."""
    node = need_tool("node")
    tsc = GRAFANA_TYPES / "typescript/bin/tsc"
    if not tsc.exists():
        message = "tests/grafana has no node_modules: run scripts/node-tools"
        if REQUIRE_TOOLS:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    source = directory / "dashboard.ts"
    source.write_text(
        'import type { Dashboard } from "@grafana/schema";\n'
        f"export const dashboard: Dashboard = {json.dumps(board, indent=2)};\n"
    )
    types = GRAFANA_TYPES / "@grafana/schema/dist/types/index.d.ts"
    options = {"strict": True, "noEmit": True, "module": "esnext", "moduleResolution": "bundler", "target": "es2022"}
    config = {"compilerOptions": {**options, "paths": {"@grafana/schema": [str(types)]}}, "files": [str(source)]}
    (directory / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [node, str(tsc), "-p", str(directory / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dashboard_is_a_grafana_dashboard_by_grafana_s_own_types(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    board = dashboard(load_mesh(path))
    checked = _type_check(board, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check can fail: a misspelt field, and a value of the wrong type.
    board["panels"][1]["gridpos"] = board["panels"][1].pop("gridPos")
    board["schemaVersion"] = "39"
    wrong = _type_check(board, tmp_path)
    assert wrong.returncode != 0
    assert "'\"gridpos\"' does not exist" in wrong.stdout and "not assignable to type 'number'" in wrong.stdout


# -- a live mesh ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("metrics") / "catalog.yaml"
    path.write_text(CATALOG)
    return path


@pytest.fixture(scope="module")
def mesh(catalog: Path) -> Mesh:
    return load_mesh(catalog)


@pytest.fixture(scope="module")
def state_dir(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need_tool("prometheus")
    directory = tmp_path_factory.mktemp("state")
    try:
        result = invoke("up", catalog, "--state-dir", directory)
        assert result.exit_code == 0, result.output
        assert "metrics: http://127.0.71.9:9091 (Prometheus" in result.stdout
        assert "ready (11/11): " in result.stderr  # 4 apps, 4 sidecars, the gateway, Prometheus, the renewer
        yield directory
    finally:
        down(directory)


def _web_call(delayed: bool) -> Callable[[], Reply]:
    headers = {"x-demo-call": "api>store", "x-demo-fail-percent": "api:25"}
    if delayed:
        headers["x-demo-delay"] = "api:300ms"
    return lambda: send("127.0.71.8", 8080, "/", headers=headers)


@dataclass(frozen=True)
class Traffic:
    expected: dict[str, tuple[int, int]]  # service or "caller -> callee": (requests, 5xx)
    sidecars: Samples  # the sidecars' series just before and after the traffic
    started: float  # Unix time: Prometheus's samples then are from before the traffic
    settled: float  # Unix time: Prometheus has scraped what the traffic left


def _settled(mesh: Mesh, before: Snapshot, after: Snapshot, instances: set[str]) -> bool:
    """Every request counted is in its histogram too (Envoy merges histograms at each flush)."""
    services, edges = red(mesh, increase(before, after, instances))
    return all(r.requests == r.buckets.get(math.inf, 0) for r in [*services.values(), *edges.values()])


@pytest.fixture(scope="module")
def traffic(state_dir: Path, mesh: Mesh) -> Traffic:
    prometheus = PrometheusSource(mesh)
    sidecars = SidecarSource(mesh)
    every = {i.id for i in mesh.proxies}
    wait_for(
        "Prometheus scrapes every sidecar", lambda: prometheus.ready() and prometheus.snapshot(time.time())[1] == every
    )
    started = time.time()
    time.sleep(0.5)  # a scrape begun before `started` has been answered before any call
    before, reached = sidecars.snapshot()
    assert reached == every
    replies = run_all([_web_call(delayed=i % 4 == 0) for i in range(CALLS)], workers=8)
    failed_at_api = sum(1 for r in replies if r.status == 502 and r.body["calls"][0]["status"] == 503)
    assert {r.status for r in replies} == {200, 502} and failed_at_api == sum(r.status == 502 for r in replies)
    assert 0.2 * CALLS <= failed_at_api <= 0.3 * CALLS  # a quarter at each api instance
    wait_for("the sidecars' histograms hold every call", lambda: _settled(mesh, before, sidecars.snapshot()[0], every))
    after, reached = sidecars.snapshot()
    seconds = 1.0  # the rate's divisor only; the counts are what is compared
    wait_for(
        "Prometheus has scraped what the traffic left",
        # Their RED series: the stats listener's own (scrapes) rise with every scrape.
        lambda: red(mesh, prometheus.snapshot(time.time())[0]) == red(mesh, sidecars.snapshot()[0]),
    )
    return Traffic(
        expected={
            "public": (CALLS, failed_at_api),
            "public -> web": (CALLS, failed_at_api),
            "web": (CALLS, failed_at_api),
            "api": (CALLS, failed_at_api),
            "store": (CALLS - failed_at_api, 0),
            "web -> api": (CALLS, failed_at_api),
            "api -> store": (CALLS - failed_at_api, 0),
        },
        sidecars=Samples(before, after, seconds, reached),
        started=started,
        settled=time.time(),
    )


@pytest.mark.envoy
def test_stats_listener_serves_prometheus_stats_and_nothing_else(state_dir: Path, mesh: Mesh) -> None:
    for instance in mesh.proxies:
        address, port = instance.host.address, instance.stats_port
        reply = send(address, port, "/stats/prometheus")  # plaintext, no client certificate: mTLS is strict
        assert reply.status == 200, reply
        labels = f'mesh="metrics",service="{instance.service}",version="{instance.version}",instance="{instance.id}"'
        assert f"envoy_server_live{{{labels}}} 1" in reply.body
        for path in ("/stats", "/config_dump", "/quitquitquit", "/", "/stats/prometheus/../config_dump"):
            assert send(address, port, path).status in (400, 404), path
        assert send(address, port, "/stats/prometheus", method="POST").status == 404
        assert send(address, instance.admin_port, "/ready").status == 0  # admin: not on the mesh address
        assert send(instance.host.local_address, instance.admin_port, "/ready").status == 200


def _query(mesh: Mesh, promql: str, at: float) -> list[dict[str, Any]]:
    return PrometheusSource(mesh).query(promql, at)


@pytest.mark.envoy
def test_prometheus_has_per_service_request_rates_with_every_label(mesh: Mesh, traffic: Traffic) -> None:
    inbound = f'mesh="metrics",envoy_http_conn_manager_prefix=~"{"|".join(INBOUND_PREFIXES)}"'
    window = f"{math.ceil(traffic.settled - traffic.started) + 5}s"
    rates = _query(
        mesh,
        f"sum by (mesh, service, version, instance) (rate(envoy_http_downstream_rq_xx{{{inbound}}}[{window}]))",
        traffic.settled,
    )
    found = {tuple(r["metric"][k] for k in ("mesh", "service", "version", "instance")) for r in rates}
    assert found == {("metrics", i.service, i.version, i.id) for i in mesh.proxies}
    assert all(float(r["value"][1]) > 0 for r in rates)
    # The counts behind the rates, read off Prometheus at both ends: exactly the calls made.
    counted = f"sum by (service) (envoy_http_downstream_rq_xx{{{inbound}}})"
    after = {r["metric"]["service"]: float(r["value"][1]) for r in _query(mesh, counted, traffic.settled)}
    before = {r["metric"]["service"]: float(r["value"][1]) for r in _query(mesh, counted, traffic.started)}
    assert {s: after[s] - before.get(s, 0) for s in after} == {
        s: traffic.expected[s][0] for s in ("public", "web", "api", "store")
    }
    up = _query(mesh, 'up{job="meshgen-sidecars"}', traffic.settled)
    assert {r["metric"]["instance"] for r in up} == {i.id for i in mesh.proxies}


def _check_numbers(document: dict[str, Any], traffic: Traffic) -> None:
    rows = {r["service"]: r for r in document["services"]}
    rows |= {f"{r['caller']} -> {r['callee']}": r for r in document["edges"]}
    assert set(rows) == set(traffic.expected)
    for name, (requests, errors) in traffic.expected.items():
        row = rows[name]
        assert (row["requests"], row["errors"]) == (requests, errors), name
        assert row["error_percent"] == pytest.approx(100 * errors / requests, abs=0.001), name
        assert row["p50_ms"] is not None and row["p50_ms"] <= 100, name  # three quarters answer at once
    for name in ("public", "public -> web", "web", "api", "web -> api"):  # a quarter waited 300 ms at api
        assert 250 < rows[name]["p99_ms"] <= 500, name
    for name in ("store", "api -> store"):  # store never waits
        assert rows[name]["p99_ms"] <= 250, name
    assert document["missing"] == []


@pytest.mark.envoy
def test_top_from_the_sidecars_counts_the_traffic(mesh: Mesh, traffic: Traffic) -> None:
    document = report(mesh, traffic.sidecars)
    _check_numbers(document, traffic)
    assert document["services"][0]["rps"] == pytest.approx(CALLS / traffic.sidecars.seconds, abs=0.001)
    quiet = invoke("top", "--catalog", mesh.origin, "--source", "sidecars", "--window", "300ms", "--json")
    assert quiet.exit_code == 0, quiet.output
    now = json.loads(quiet.stdout)
    assert now["source"] == "sidecars" and now["prometheus"] is None and now["missing"] == []
    assert all(row["requests"] == 0 and row["p99_ms"] is None for row in now["services"] + now["edges"])


@pytest.mark.envoy
def test_top_from_prometheus_counts_the_traffic(mesh: Mesh, traffic: Traffic) -> None:
    window_ms = math.ceil((time.time() - traffic.started) * 1000)
    result = invoke("top", "--catalog", mesh.origin, "--source", "prometheus", "--window", f"{window_ms}ms", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["source"] == "prometheus" and document["prometheus"] == "http://127.0.71.9:9091"
    _check_numbers(document, traffic)
    # The same histograms from both sources: the same quantiles.
    sidecars = report(mesh, traffic.sidecars)
    for kind in ("services", "edges"):
        assert [{k: r[k] for k in ("requests", "errors", "p50_ms", "p99_ms")} for r in document[kind]] == [
            {k: r[k] for k in ("requests", "errors", "p50_ms", "p99_ms")} for r in sidecars[kind]
        ]
    table = invoke("top", "--catalog", mesh.origin, "--window", f"{window_ms + 1000}ms")
    assert table.exit_code == 0 and "from Prometheus http://127.0.71.9:9091" in table.stdout
    assert "web -> api" in table.stdout and "public (gateway)" in table.stdout and "public -> web" in table.stdout


@pytest.mark.envoy
def test_every_dashboard_query_returns_data_for_the_mesh(mesh: Mesh, traffic: Traffic) -> None:
    window = f"{math.ceil(traffic.settled - traffic.started) + 5}s"
    services = {"public", "web", "api", "store"}
    edges = {("public", "web.v1"), ("web", "api.v1"), ("web", "api.v2"), ("api", "store.v1")}
    for title, query in expressions(mesh).items():
        expr = (
            query["expr"]
            .replace("$mesh", "metrics")
            .replace("$service", "(public|web|api|store)")  # what Grafana makes of "All"
            .replace("$__rate_interval", window)
        )
        result = _query(mesh, expr, traffic.settled)
        values = [float(r["value"][1]) for r in result]
        assert values and all(math.isfinite(v) for v in values), (title, result)
        if title.startswith("Edge"):
            assert {(r["metric"]["service"], r["metric"]["envoy_cluster_name"]) for r in result} == edges, title
        else:
            assert {r["metric"]["service"] for r in result} == services, title


def test_top_refuses_watch_with_json_and_needs_a_mesh(tmp_path: Path) -> None:
    assert invoke("top", "--watch", "--json", "--state-dir", tmp_path).exit_code == 2
    result = invoke("top", "--state-dir", tmp_path / "none")
    assert result.exit_code == 1 and "no local mesh is running" in result.stderr


@pytest.mark.envoy
def test_a_changed_mesh_is_scraped_without_restarting_prometheus(
    state_dir: Path, catalog: Path, mesh: Mesh, traffic: Traffic, tmp_path: Path
) -> None:
    """Last: it changes the mesh. A new instance is scraped, and a sidecar whose stats port moved
    (a bootstrap change: Envoy's hot restart) is scraped at the new port; Prometheus runs on."""
    from meshgen.deploy.local.runner import status, up

    def pid_of(name: str) -> int:
        return next(p.process.pid for p in status(state_dir)[1] if p.process.name == name)

    prometheus_pid = pid_of("prometheus")
    text = (
        CATALOG.replace(
            "  store-1: {address: 127.0.71.4}\n", "  store-1: {address: 127.0.71.4}\n  store-2: {address: 127.0.71.5}\n"
        )
        .replace("v1: {instances: [store-1]}", "v1: {instances: [store-1, store-2]}")
        .replace("v1: {instances: [web-1]}", "v1: {instances: [{host: web-1, stats_port: 15091}]}")
    )
    assert text.count("store-2") == 2 and "15091" in text
    edited = tmp_path / "catalog.yaml"
    edited.write_text(text)
    report = up(edited, state_dir)
    assert report.restarted == ["web.v1.web-1 envoy"]
    assert sorted(report.started) == ["store.v1.store-2 app", "store.v1.store-2 envoy"]
    assert pid_of("prometheus") == prometheus_pid
    assert send("127.0.71.1", 15091, "/stats/prometheus").status == 200
    assert send("127.0.71.1", 15090, "/stats/prometheus").status == 0  # the old port is closed
    prometheus = PrometheusSource(load_mesh(edited))

    def scraped() -> dict[str, str]:
        url = f"{prometheus.url}/api/v1/targets?state=active"
        with urllib.request.urlopen(url, timeout=5) as response:
            targets = json.loads(response.read())["data"]["activeTargets"]
        return {t["labels"]["instance"]: t["scrapeUrl"] for t in targets if t["health"] == "up"}

    wanted = {
        "public.gateway.gateway-1": "http://127.0.71.8:15090/stats/prometheus",
        "web.v1.web-1": "http://127.0.71.1:15091/stats/prometheus",
        "api.v1.api-1": "http://127.0.71.2:15090/stats/prometheus",
        "api.v2.api-2": "http://127.0.71.3:15090/stats/prometheus",
        "store.v1.store-1": "http://127.0.71.4:15090/stats/prometheus",
        "store.v1.store-2": "http://127.0.71.5:15090/stats/prometheus",
    }
    wait_for("Prometheus scrapes the changed mesh", lambda: scraped() == wanted)
    up(catalog, state_dir)  # back to the mesh the module started with
