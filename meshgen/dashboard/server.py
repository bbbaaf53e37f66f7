"""`meshgen dashboard`: a web page for the running local mesh, served on a loopback address.

The page (static/, plain HTML, CSS and JavaScript with a vendored Cytoscape.js) polls these
JSON endpoints; every one is a GET and changes nothing:

  /api/graph             nodes and edges, each edge with its rate, error share, p99 and health
  /api/service/{name}    a service's panel: routes, policies, authorization, instances
  /api/gateway/{name}    a gateway's panel: routes, listeners and rate limits, URLs, instances
  /api/traces?limit=N    recent traces from the mesh's collector
  /api/trace/{id}        one trace as a waterfall
  /api/verify            the last `meshgen verify` result against this mesh

The mesh is the one the state directory records, re-read whenever `meshgen up` rewrites the
state, so the page follows a changed mesh and says when none is running.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from meshgen.dashboard.metrics import EdgeMetrics, EdgeStats, EnvoyAdminMetrics
from meshgen.dashboard.panels import gateway_panel, service_panel
from meshgen.dashboard.topology import Topology, gateway_id, topology, version_id
from meshgen.dashboard.traces import summary, waterfall
from meshgen.deploy.local.processes import alive
from meshgen.deploy.local.state import STATE_FILE, MeshState, load_state
from meshgen.errors import InputError, UserError
from meshgen.model import Mesh, load_mesh
from meshgen.verify.http import send
from meshgen.verify.saved import load_result

STATIC = Path(__file__).parent / "static"
INTERVAL = 2.0  # seconds between samples; the page polls as often
WINDOW = 10.0  # seconds the rates cover


@dataclass
class Dashboard:
    """The running local mesh as the page sees it, re-read when its state file changes."""

    state_dir: Path
    metrics: EdgeMetrics = field(default_factory=lambda: EnvoyAdminMetrics(window=WINDOW))
    interval: float = INTERVAL
    state: MeshState | None = None
    mesh: Mesh | None = None
    graph: Topology | None = None
    problem: str | None = None  # why the graph may be out of date (a catalog that no longer loads)
    stats: dict[str, EdgeStats] = field(default_factory=dict)
    sampled_at: float | None = None
    _seen: tuple[int, str] | None = None

    def refresh(self) -> None:
        try:
            changed = (self.state_dir / STATE_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            self.state, self.mesh, self.graph, self._seen, self.stats = None, None, None, None, {}
            return
        state = load_state(self.state_dir)
        if state is None:
            return
        self.state = state
        if self._seen == (changed, state.catalog):
            return
        self._seen = (changed, state.catalog)
        try:
            mesh = load_mesh(Path(state.catalog))
        except UserError as exc:
            self.problem = f"cannot read {state.catalog}: {exc}"
            return
        self.problem = None
        self.mesh, self.graph = mesh, topology(mesh)

    async def run(self) -> None:
        """Sample for ever, every `interval` seconds."""
        while True:
            await asyncio.to_thread(self.refresh)
            if self.graph is not None:
                self.stats = await self.metrics.sample(self.graph)
                self.sampled_at = time.time()
            await asyncio.sleep(self.interval)

    def down_instances(self) -> set[str]:
        """Instances whose app or sidecar, and gateway instances whose Envoy, is not running, per
        the state file."""
        if self.state is None or self.mesh is None:
            return set()
        running = {(p.instance, p.kind) for p in self.state.processes if p.instance and alive(p)}
        return {
            i.id
            for i in self.mesh.proxies
            if (i.id, "envoy") not in running or (not i.gateway and (i.id, "app") not in running)
        }

    def graph_json(self) -> dict[str, Any]:
        if self.state is None or self.mesh is None or self.graph is None:
            return {"mesh": None, "problem": self.problem or "no local mesh is running (meshgen up)"}
        down = self.down_instances()
        # The instances each version node, and each gateway node, stands for.
        members = {
            version_id(s.name, v.name): [i.id for i in v.instances] for s in self.mesh.services for v in s.versions
        } | {gateway_id(g.name): [i.id for i in g.instances] for g in self.mesh.gateways}
        nodes = []
        for node in self.graph.nodes:
            data = node.to_json()
            if node.id in members:
                data["instances"] = len(members[node.id])
                data["down"] = sorted(set(members[node.id]) & down)
            nodes.append(data)
        edges = []
        for edge in self.graph.edges:
            stats = self.stats.get(edge.id, EdgeStats(None, None, None, 0.0))
            edges.append(
                {
                    "id": edge.id,
                    "source": edge.source,
                    "target": edge.target,
                    "protocol": edge.protocol,
                    "unit": "conn/s" if edge.protocol == "tcp" else "req/s",
                    "measured": bool(edge.readings),
                    "rate": stats.rate,
                    "errors": stats.errors,
                    "p99": stats.p99,
                    "health": stats.health,
                    "window": stats.window,
                }
            )
        alive_count = sum(1 for p in self.state.processes if alive(p))
        return {
            "mesh": self.mesh.name,
            "catalog": self.state.catalog,
            "problem": self.problem,
            "source": self.metrics.description,
            "interval": self.interval,
            "sampled_at": self.sampled_at,
            "processes": {"running": alive_count, "total": len(self.state.processes)},
            "nodes": nodes,
            "edges": edges,
        }

    def collector(self) -> tuple[str, int] | None:
        tracing = self.mesh.tracing if self.mesh else None
        return (tracing.collector_address, tracing.collector_port) if tracing else None


DASHBOARD = web.AppKey("dashboard", Dashboard)


def _board(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD]


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def graph(request: web.Request) -> web.Response:
    board = _board(request)
    return web.json_response(await asyncio.to_thread(board.graph_json))


async def service(request: web.Request) -> web.Response:
    board = _board(request)
    name = request.match_info["name"]
    mesh = board.mesh
    if mesh is None or name not in {s.name for s in mesh.services}:
        return web.json_response({"problem": f"no service {name} in the running mesh"}, status=404)
    panel = await asyncio.to_thread(service_panel, mesh, mesh.service(name), board.state)
    return web.json_response(panel)


async def gateway(request: web.Request) -> web.Response:
    board = _board(request)
    name = request.match_info["name"]
    mesh = board.mesh
    if mesh is None or name not in {g.name for g in mesh.gateways}:
        return web.json_response({"problem": f"no gateway {name} in the running mesh"}, status=404)
    panel = await asyncio.to_thread(gateway_panel, mesh, mesh.gateway(name), board.state)
    return web.json_response(panel)


async def _collector_get(board: Dashboard, path: str) -> tuple[Any, str | None]:
    """The collector's answer to `path`, or None and why not."""
    where = board.collector()
    if where is None:
        return None, "the mesh has no tracing configured, so no collector"
    reply = await asyncio.to_thread(send, where[0], where[1], path, timeout=5)
    if reply.status == 404:
        return None, "not found"
    if reply.status != 200:
        return None, f"the collector at {where[0]}:{where[1]} answered {reply.status or reply.body}"
    return reply.body, None


async def traces(request: web.Request) -> web.Response:
    board = _board(request)
    try:
        limit = max(1, min(int(request.query.get("limit", "20")), 200))
    except ValueError:
        return web.json_response({"problem": "limit must be a number"}, status=400)
    found, problem = await _collector_get(board, f"/api/v2/traces?limit={limit}")
    listed = [summary(spans) for spans in found or [] if isinstance(spans, list) and spans]
    return web.json_response({"traces": listed, "problem": problem})


async def trace(request: web.Request) -> web.Response:
    board = _board(request)
    trace_id = request.match_info["trace_id"]
    spans, problem = await _collector_get(board, f"/api/v2/trace/{quote(trace_id, safe='')}")
    if not isinstance(spans, list) or not spans:
        return web.json_response({"problem": problem or "empty trace"}, status=404)
    return web.json_response(waterfall(spans))


async def verify(request: web.Request) -> web.Response:
    board = _board(request)
    return web.json_response({"result": await asyncio.to_thread(load_result, board.state_dir)})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_guard(allowed: set[str]) -> Any:
    """Answer only requests addressed to this server by its own address or `localhost`: a web
    page elsewhere that rebinds its DNS name to a loopback address gets nothing."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.host not in allowed:
            return web.Response(status=421, text="this dashboard answers only its own loopback address\n")
        response = await handler(request)
        response.headers["Content-Security-Policy"] = (
            # Cytoscape.js sets inline styles on the elements it draws into.
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    return guard


def build_app(board: Dashboard, allowed_hosts: set[str]) -> web.Application:
    app = web.Application(middlewares=[host_guard(allowed_hosts)])
    app[DASHBOARD] = board

    async def sampler(app: web.Application) -> Any:
        task = asyncio.create_task(board.run())
        yield
        task.cancel()

    app.cleanup_ctx.append(sampler)
    app.router.add_get("/", index)
    app.router.add_get("/api/graph", graph)
    app.router.add_get("/api/service/{name}", service)
    app.router.add_get("/api/gateway/{name}", gateway)
    app.router.add_get("/api/traces", traces)
    app.router.add_get("/api/trace/{trace_id}", trace)
    app.router.add_get("/api/verify", verify)
    app.router.add_static("/static/", STATIC)
    return app


def loopback(address: str) -> str:
    """`address` as an IP literal, refused unless it is a loopback address."""
    if address == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise InputError(
            f"--address {address!r} is not an IP address; give a loopback one, such as 127.0.0.1"
        ) from None
    if not ip.is_loopback:
        raise InputError(f"--address {address} is not a loopback address: the dashboard serves this machine only")
    return str(ip)


def _authority(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


async def _serve(board: Dashboard, address: str, port: int, announce: Callable[[str], None]) -> None:
    allowed: set[str] = set()
    runner = web.AppRunner(build_app(board, allowed), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, address, port)
        try:
            await site.start()
        except OSError as exc:
            raise UserError(f"cannot listen on {_authority(address, port)}: {exc.strerror or exc}") from None
        bound = int(runner.addresses[0][1])
        allowed |= {_authority(address, bound), f"localhost:{bound}"}
        announce(f"http://{_authority(address, bound)}/")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def serve(state_dir: Path, address: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve the dashboard until interrupted; `announce` hears its URL once it listens."""
    address = loopback(address)
    board = Dashboard(state_dir)
    board.refresh()
    if board.state is None:
        raise UserError(f"no local mesh is running (no state in {state_dir}); start one with meshgen up")
    asyncio.run(_serve(board, address, port, announce))
