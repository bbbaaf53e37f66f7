"""`meshgen dashboard` in a real browser (Debian's headless Chromium, driven through Debian's
chromedriver) against a live mesh with real traffic: the graph shows every service, version,
external and gateway; edge numbers rise under traffic and fall back when it stops, traffic through
the gateway on the gateway's own edges; an instance made to fail turns its edge red; a click opens a
service's routes, policies and instances, a gateway's routes and URLs, and a trace's waterfall; the
last verify shows; an instance, or a gateway, that stops shows down. Hosts on 127.0.72.x.

MESHGEN_DASHBOARD_SCREENSHOTS=DIR saves the README's pictures into DIR (docs/ for the README).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from meshgen.cli import main
from meshgen.dashboard.topology import topology
from meshgen.deploy.local.processes import stop
from meshgen.deploy.local.runner import down, up
from meshgen.deploy.local.state import load_state
from meshgen.model import Mesh, load_mesh
from meshgen.verify.checks.base import set_fault
from meshgen.verify.http import send
from meshgen.verify.targets import app_address, inbound_address
from tests.support import TESTDATA, need_tool

pytestmark = pytest.mark.envoy

CATALOG = TESTDATA / "catalogs/dashboard.yaml"
ADDRESS = "127.0.72.100"  # the dashboard's own
SCREENSHOTS = os.environ.get("MESHGEN_DASHBOARD_SCREENSHOTS")
RED, GREEN = "rgb(211,59,59)", "rgb(46,158,91)"  # app.js HEALTH_COLORS, as Cytoscape reports them

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T], timeout: float = 60.0) -> T:
    """The first truthy value of `check()`, polled; fails saying what was last seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s; last seen: {value!r}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Mesh]]:
    state_dir = tmp_path_factory.mktemp("dashboard-state")
    try:
        up(CATALOG, state_dir)
        yield state_dir, load_mesh(CATALOG)
    finally:
        down(state_dir)


@pytest.fixture(scope="module")
def url(mesh: tuple[Path, Mesh]) -> Iterator[str]:
    """`meshgen dashboard` as a user starts it, on any free port of its own loopback address."""
    state_dir, _ = mesh
    command = [sys.executable, "-m", "meshgen", "dashboard", "--state-dir", str(state_dir)]
    server = subprocess.Popen(
        [*command, "--address", ADDRESS, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(server.stdout, selectors.EVENT_READ)
        announced = server.stdout.readline() if selector.select(timeout=30) else ""
    try:
        assert announced.startswith(f"dashboard: http://{ADDRESS}:"), (announced, server.poll())
        yield announced.split()[1]
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=15) == 130  # Ctrl-C, as everywhere in meshgen


@pytest.fixture(scope="module")
def browser(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = need_tool("chromium")  # scripts/debian-tools installs chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1400,1560",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(need_tool("chromedriver")), options=options)  # and chromium-driver
    try:
        driver.get(url)
        yield driver
    finally:
        driver.quit()


def through_gateway(mesh: Mesh) -> tuple[str, int]:
    """Where callers from outside reach the gateway's HTTP listener."""
    gateway = mesh.gateway("front")
    return gateway.instances[0].host.address, gateway.port


class Traffic:
    """Requests from outside to web, at its edge sidecar or through the gateway (`entry`), each
    calling api (which calls store), until stopped; at most 4000 requests or 3 minutes, whichever
    comes first."""

    def __init__(self, mesh: Mesh, path: str = "/", entry: tuple[str, int] | None = None) -> None:
        self.edge = entry or inbound_address(mesh.service("web").instances[0])
        self.path = path
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 180
        for _ in range(4000):
            if self.stopped.is_set() or time.monotonic() > deadline:
                return
            send(*self.edge, self.path, headers={"x-demo-call": "api>store"}, timeout=10)
            self.stopped.wait(0.05)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=15)


def drawn(driver: WebDriver) -> dict[str, Any] | None:
    """What Cytoscape drew: nodes and edges with their data, rendered positions and colours."""
    result: dict[str, Any] | None = driver.execute_script(
        """
        const cy = window.meshDashboard && window.meshDashboard.cy;
        if (!cy || cy.nodes().length === 0) return null;
        const box = cy.container().getBoundingClientRect();
        return {
          width: box.width, height: box.height,
          nodes: Object.fromEntries(cy.nodes().map((n) => [n.id(), {
            kind: n.data("kind"), label: n.data("label"), visible: n.visible(),
            x: n.renderedPosition("x"), y: n.renderedPosition("y"), border: n.style("border-color"),
          }])),
          edges: Object.fromEntries(cy.edges().map((e) => [e.id(), {
            health: e.data("health"), label: e.data("label"), color: e.style("line-color"),
          }])),
        };
        """
    )
    return result


def edge_rows(driver: WebDriver) -> dict[str, dict[str, str]]:
    """The edge table, by edge id."""
    rows: dict[str, dict[str, str]] = driver.execute_script(
        """
        return Object.fromEntries([...document.querySelectorAll("#edges tbody tr")].map((row) => [
          row.dataset.edge,
          { health: row.dataset.health, caller: row.cells[0].textContent, callee: row.cells[1].textContent,
            rate: row.cells[2].textContent, errors: row.cells[3].textContent, p99: row.cells[4].textContent },
        ]));
        """
    )
    return rows


def panel(driver: WebDriver) -> dict[str, Any]:
    """The side panel: its title and each section's rows as text."""
    result: dict[str, Any] = driver.execute_script(
        """
        return {
          title: document.querySelector("#details-title").textContent,
          sections: Object.fromEntries([...document.querySelectorAll("#details-body table")].map((table) => [
            table.dataset.section,
            [...table.tBodies[0].rows].map((row) => [...row.cells].map((cell) => cell.textContent)),
          ])),
        };
        """
    )
    return result


def click_node(driver: WebDriver, node: str) -> None:
    """A real mouse click where Cytoscape drew `node` on its canvas."""
    graph = driver.find_element(By.ID, "graph")
    where = drawn(driver)
    assert where is not None
    spot = where["nodes"][node]
    # Offsets are from the element's centre.
    ActionChains(driver).move_to_element_with_offset(
        graph, int(spot["x"] - where["width"] / 2), int(spot["y"] - where["height"] / 2)
    ).click().perform()


def screenshot(driver: WebDriver, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))


CALLED = [
    "outside->version:web/v1",
    "version:web/v1->version:api/v1",
    "version:web/v1->version:api/v2",
    "version:api/v1->version:store/v1",
    "version:api/v2->version:store/v1",
]
NOT_CALLED = "version:web/v1->external:payments"  # web declares it; the demo app never calls it
THROUGH_GATEWAY = ["outside->gateway:front", "gateway:front->version:web/v1"]
GATEWAY_TO_API = ["gateway:front->version:api/v1", "gateway:front->version:api/v2"]  # for Host api.dash.test


def test_graph_shows_every_service_version_and_external(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    _, model = mesh
    expected = topology(model)
    graph = wait_for("the graph", lambda: drawn(browser))
    assert {node: data["kind"] for node, data in graph["nodes"].items()} == {n.id: n.kind for n in expected.nodes}
    assert (
        set(graph["edges"])
        == {e.id for e in expected.edges}
        == {*CALLED, NOT_CALLED, *THROUGH_GATEWAY, *GATEWAY_TO_API}
    )
    labels = {data["label"] for data in graph["nodes"].values() if data["kind"] in ("service", "external", "gateway")}
    assert labels == {"web", "api", "store", "payments", "front"}
    for node, data in graph["nodes"].items():  # laid out inside the visible canvas
        assert data["visible"] and 0 < data["x"] < graph["width"] and 0 < data["y"] < graph["height"], node
    rows = wait_for("the edge table", lambda: edge_rows(browser))
    assert rows[NOT_CALLED]["caller"] == "web v1" and rows[NOT_CALLED]["callee"] == "payments"


def test_edge_numbers_rise_under_traffic_and_fall_back_when_it_stops(
    mesh: tuple[Path, Mesh], browser: WebDriver
) -> None:
    _, model = mesh

    def health(wanted: str, edges: list[str]) -> dict[str, dict[str, str]] | None:
        rows = edge_rows(browser)
        return rows if rows and all(rows[e]["health"] == wanted for e in edges) else None

    everything = [*CALLED, NOT_CALLED, *THROUGH_GATEWAY, *GATEWAY_TO_API]
    before = wait_for("every edge idle before any traffic", lambda: health("idle", everything))
    assert {before[e]["rate"] for e in CALLED} == {"0.0 req/s"}
    with Traffic(model):
        during = wait_for("every called edge carrying traffic", lambda: health("ok", CALLED))
        for edge in CALLED:
            rate = float(during[edge]["rate"].split()[0])
            assert rate > 0 and during[edge]["errors"] == "0%", (edge, during[edge])
        assert {during[e]["health"] for e in [NOT_CALLED, *THROUGH_GATEWAY, *GATEWAY_TO_API]} == {"idle"}
        # The graph draws the same numbers on its edges, in green.
        graph = wait_for("green labelled edges", lambda: health("ok", CALLED) and drawn(browser))
        label = graph["edges"]["version:web/v1->version:api/v1"]
        assert "req/s" in label["label"] and "p99" in label["label"] and label["color"] == GREEN, label
    wait_for("every called edge idle again after the traffic", lambda: health("idle", CALLED))


def test_traffic_through_the_gateway_shows_on_the_gateways_edges(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    _, model = mesh
    downstream = CALLED[1:]  # web -> api -> store, as for calls straight at web

    def carried() -> dict[str, dict[str, str]] | None:
        rows = edge_rows(browser)
        if not rows or any(rows[e]["health"] != "ok" for e in [*THROUGH_GATEWAY, *downstream]):
            return None
        # Envoy merges histograms every 5 s, so p99 may show a little after the first counts.
        return rows if all(rows[e]["p99"].endswith(" ms") for e in THROUGH_GATEWAY) else None

    with Traffic(model, entry=through_gateway(model)):
        during = wait_for("the gateway's edges carrying traffic", carried)
        for edge in THROUGH_GATEWAY:
            rate = float(during[edge]["rate"].split()[0])
            assert rate > 0 and during[edge]["errors"] == "0%", (edge, during[edge])
        assert during["outside->gateway:front"]["caller"] == "outside the mesh"
        assert during["gateway:front->version:web/v1"]["caller"] == "gateway front"
        # Nothing reached web at its edge sidecar, nor api through the gateway.
        assert {during[e]["health"] for e in ["outside->version:web/v1", *GATEWAY_TO_API]} == {"idle"}
        graph = wait_for("the gateway's edge green and labelled", lambda: carried() and drawn(browser))
        label = graph["edges"]["gateway:front->version:web/v1"]
        assert "req/s" in label["label"] and "p99" in label["label"] and label["color"] == GREEN, label
        assert graph["nodes"]["gateway:front"]["kind"] == "gateway"
        click_node(browser, "gateway:front")
        wait_for("the gateway panel", lambda: panel(browser)["title"] == "gateway front")
        screenshot(browser, "dashboard-gateway.png")
    wait_for(
        "the gateway's edges idle again",
        lambda: all(edge_rows(browser)[e]["health"] == "idle" for e in THROUGH_GATEWAY),
    )


def test_clicking_the_gateway_shows_its_routes_limits_and_urls(browser: WebDriver) -> None:
    click_node(browser, "gateway:front")
    shown = wait_for(
        "the gateway panel", lambda: (p := panel(browser))["title"] == "gateway front" and p["sections"] and p
    )
    sections = shown["sections"]
    assert sections["Routes (first match wins)"] == [
        ["api", "api.dash.test", "prefix /v1/", "api", "2s", "none (1 attempt)", "100 per 1s, burst 100"],
        ["site", "any Host", "any request", "web", "2s", "none (1 attempt)", "none of its own"],
    ]
    limits = dict(map(tuple, sections["Listeners and limits"]))
    assert limits["http"] == "port 8080"
    assert limits["https"] == "port 8443, a certificate of the mesh CA for api.dash.test"
    assert limits["rate limit"].startswith("1000 per 1s, burst 1000 (per instance, every route")
    assert limits["identity towards the mesh"] == "spiffe://dash/gateway/front"
    assert sections["URLs"] == [
        ["front.gateway.gateway-1", "http://127.0.72.6:8080/"],
        ["front.gateway.gateway-1", "https://127.0.72.6:8443/"],
    ]
    assert sections["Instances"] == [["front.gateway.gateway-1", "127.0.72.6", "up"]]


def test_clicking_a_service_shows_its_routes_policies_and_instances(browser: WebDriver) -> None:
    click_node(browser, "service:api")
    shown = wait_for("the api panel", lambda: (p := panel(browser))["title"] == "api" and p["sections"] and p)
    sections = shown["sections"]
    assert sections["Routes (first match wins)"] == [
        ["canary", "prefix / header x-canary=yes", "v2 100%", "2s", "none (1 attempt)", "none", "none"],
        ["split", "any request", "v1 50%, v2 50%", "2s", "none (1 attempt)", "none", "none"],
    ]
    policies = dict(map(tuple, sections["Policies"]))
    assert policies["timeout"].startswith("2s")
    assert "eject after 1000 consecutive 5xx" in policies["circuit breaker"]
    assert sections["Authorization (who may call it)"] == [["web", "any call"], ["gateway front", "any call"]]
    assert sections["Instances"] == [
        ["api.v1.api-1", "127.0.72.2:15006", "up", "up", "healthy"],
        ["api.v2.api-2", "127.0.72.3:15006", "up", "up", "healthy"],
    ]


def test_a_trace_opens_as_a_waterfall_of_every_hop(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    _, model = mesh
    path = "/dashboard-trace-probe"
    reply = send(*inbound_address(model.service("web").instances[0]), path, headers={"x-demo-call": "api>store"})
    assert reply.status == 200, reply.body

    def listed() -> str | None:
        found: str | None = browser.execute_script(
            """
            const item = [...document.querySelectorAll("#traces li[data-trace]")].find((li) =>
              li.querySelector(".root").textContent.endsWith(arguments[0]) &&
              li.querySelector(".meta").textContent.includes(" 5 spans "));
            return item ? item.dataset.trace : null;
            """,
            path,
        )
        return found

    trace_id = wait_for("the probe's trace, complete, in the list", listed)

    def click() -> bool:
        try:  # the list is redrawn every few seconds
            browser.find_element(By.CSS_SELECTOR, f'#traces li[data-trace="{trace_id}"]').click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    wait_for("a click on it", click)

    def spans() -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = browser.execute_script(
            'return [...document.querySelectorAll("#waterfall .span")].map((r) => [r.dataset.service, r.dataset.kind]);'
        )
        return [tuple(row) for row in found]  # type: ignore[misc]

    hops = wait_for("its waterfall", lambda: len(found := spans()) == 5 and found)
    # A span per sidecar hop, each nested in the one before: web's inbound, web -> api, api's
    # inbound, api -> store, store's inbound.
    assert hops == [("web", "server"), ("web", "client"), ("api", "server"), ("api", "client"), ("store", "server")]
    head = browser.find_element(By.CSS_SELECTOR, "#waterfall .waterfall-head").text
    assert trace_id in head and head.endswith(path)
    bars = browser.find_elements(By.CSS_SELECTOR, "#waterfall .bar")
    widths = [bar.size["width"] for bar in bars]
    assert widths[0] == max(widths) > 0  # the first hop spans the whole trace


def test_the_last_verify_result_shows(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    state_dir, _ = mesh
    verify = browser.find_element(By.ID, "verify")
    assert "no result yet" in verify.text
    result = CliRunner().invoke(
        main, ["verify", str(CATALOG), "--only", "config", "--state-dir", str(state_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)["checks"]
    assert checks and all(c["passed"] for c in checks)
    summary = wait_for("the verify result", lambda: browser.find_elements(By.ID, "verify-summary"))
    assert summary[0].text.startswith(f"{len(checks)} passed, 0 failed, 0 skipped"), summary[0].text
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#verify tbody tr")]
    assert [row.split()[:2] for row in rows] == [[c["kind"], c["name"]] for c in checks]


def test_a_failing_instance_turns_its_edge_red(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    _, model = mesh
    api_2 = app_address(model.service("api").version("v2").instances[0])
    failing, healthy = "version:web/v1->version:api/v2", "version:web/v1->version:api/v1"
    set_fault(api_2, {"fail_percent": 100})  # from its own host, as the demo app demands
    try:
        with Traffic(model, entry=through_gateway(model)):

            def red() -> dict[str, Any] | None:
                rows, graph = edge_rows(browser), drawn(browser)
                # Once the window holds only calls made since the fault: every one of them failed.
                if not rows or not graph or rows[failing]["errors"] != "100%":
                    return None
                return {"rows": rows, "graph": graph}

            seen = wait_for("the failing instance's edge red", red)
            assert seen["rows"][failing]["health"] == "failing"
            assert seen["graph"]["edges"][failing]["color"] == RED
            assert "100%" in seen["graph"]["edges"][failing]["label"]
            assert seen["rows"][healthy]["health"] == "ok" and seen["graph"]["edges"][healthy]["color"] == GREEN
            # Every call through the gateway that went to v2 failed too: its edges show errors as well.
            assert {seen["rows"][e]["health"] for e in THROUGH_GATEWAY} == {"failing"}
            wait_for("a failed trace in the list", lambda: browser.find_elements(By.CSS_SELECTOR, "#traces li.error"))
            screenshot(browser, "dashboard.png")
    finally:
        set_fault(api_2, {})


def test_an_instance_that_stops_shows_down(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    state_dir, _ = mesh
    state = load_state(state_dir)
    assert state is not None
    assert stop(state.by_name()["store.v1.store-2 app"])
    node = wait_for(
        "store v1 drawn with an instance down",
        lambda: (g := drawn(browser)) and g["nodes"]["version:store/v1"]["label"] == "v1 (1 down)" and g,
    )
    assert node["nodes"]["version:store/v1"]["border"] == RED
    click_node(browser, "service:store")

    def instances() -> dict[str, list[str]] | None:
        shown = panel(browser)
        rows = {row[0]: row[2:] for row in shown["sections"].get("Instances", [])} if shown["title"] == "store" else {}
        return (
            rows
            if rows.get("store.v1.store-2", [""])[0] == "down"
            and rows["store.v1.store-2"][2].startswith("failing health checks")
            else None
        )

    rows = wait_for("the store panel with store-2 down, failing its callers' health checks", instances)
    assert rows["store.v1.store-1"] == ["up", "up", "healthy"]
    assert rows["store.v1.store-2"] == ["down", "up", "failing health checks of api.v1.api-1, api.v2.api-2"]
    screenshot(browser, "dashboard-down.png")


def test_a_gateway_that_stops_shows_down(mesh: tuple[Path, Mesh], browser: WebDriver) -> None:
    state_dir, _ = mesh
    state = load_state(state_dir)
    assert state is not None
    assert stop(state.by_name()["front.gateway.gateway-1 envoy"])
    graph = wait_for(
        "the gateway drawn with its instance down",
        lambda: (g := drawn(browser)) and g["nodes"]["gateway:front"]["label"] == "front (1 down)" and g,
    )
    assert graph["nodes"]["gateway:front"]["border"] == RED
    # Its Envoy counted its edges: with it gone they are unknown, not idle.
    wait_for("its edges unknown", lambda: all(edge_rows(browser)[e]["health"] == "unknown" for e in THROUGH_GATEWAY))
    click_node(browser, "gateway:front")
    wait_for(
        "the gateway panel with its Envoy down",
        lambda: (
            (p := panel(browser))["title"] == "gateway front"
            and p["sections"].get("Instances") == [["front.gateway.gateway-1", "127.0.72.6", "down"]]
        ),
    )


def test_the_page_logged_no_errors(browser: WebDriver) -> None:
    problems = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == []
