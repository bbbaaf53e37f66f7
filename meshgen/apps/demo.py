"""The demo service: answers with who it is and what it received, calls its dependencies
through its sidecar, propagates trace headers, and has deterministic fault knobs.

Configured by environment (set by `meshgen up`, the demo_app role, or by hand):
MESHGEN_SERVICE, MESHGEN_VERSION, MESHGEN_INSTANCE, MESHGEN_LISTEN (address:port),
MESHGEN_OUTBOUND (address:port of the sidecar's outbound listener), MESHGEN_PROTOCOL (http|tcp),
MESHGEN_FORWARD_HEADERS (comma-separated request headers to pass on to dependencies, as real apps
are told to do with the headers routes match on; trace headers always are).

Per-request knobs, as headers. A value may be qualified with a service, `users:2`, to act only
there; qualified knobs are passed along the call chain, unqualified ones act where received.
  x-demo-fail-attempts: K   fail while Envoy's x-envoy-attempt-count <= K (retries succeed after K)
  x-demo-fail-percent: P    fail P% of requests, spread evenly by a counter (no randomness)
  x-demo-fail-status: S     status used for injected failures (default 503)
  x-demo-delay: D           wait D (250ms, 2s) before answering
  x-demo-call: a>b,c        call a (which calls b), then c; each hop may name a path: a/items>b
Instance-wide faults: PUT /_demo/faults {"fail_percent": 100, "fail_status": 500, "delay": "1s"};
counters: GET /_demo/stats, DELETE /_demo/stats; health: GET /healthz. The /_demo/ control
endpoints answer only callers on the app's own host (its listen address, or loopback when it
listens on all addresses) and never a request relayed by a sidecar: through the mesh they answer 403.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from meshgen.durations import Duration

TRACE_HEADERS = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "traceparent",
    "tracestate",
    "x-ot-span-context",
)
FAULT_HEADERS = ("x-demo-fail-attempts", "x-demo-fail-percent", "x-demo-fail-status", "x-demo-delay")


@dataclass(frozen=True)
class Identity:
    service: str
    version: str
    instance: str
    outbound: str | None
    forward: tuple[str, ...] = ()  # request headers passed on to dependencies, besides trace headers

    def as_dict(self) -> dict[str, str]:
        return {"service": self.service, "version": self.version, "instance": self.instance}


@dataclass
class State:
    identity: Identity
    listen_address: str = "127.0.0.1"
    faults: dict[str, Any] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    percent_counters: Counter[str] = field(default_factory=Counter)
    session: ClientSession | None = None


STATE = web.AppKey("state", State)


def knob(request: web.Request, name: str, service: str) -> str | None:
    """The header's value for this service: qualified `service:value` wins over a bare value."""
    values = request.headers.getall(name, [])
    bare = None
    for value in values:
        for part in value.split(","):
            target, sep, rest = part.strip().partition(":")
            if sep and target == service:
                return rest.strip()
            if not sep:
                bare = part.strip()
    return bare


def even_share(counter: int, percent: float) -> bool:
    """True for `percent`% of consecutive counter values, evenly spread, deterministic."""
    return int((counter + 1) * percent / 100) > int(counter * percent / 100)


def should_fail(request: web.Request, state: State) -> int | None:
    service = state.identity.service
    status = int(knob(request, "x-demo-fail-status", service) or state.faults.get("fail_status", 503))
    attempts = knob(request, "x-demo-fail-attempts", service)
    if attempts is not None:
        attempt = int(request.headers.get("x-envoy-attempt-count", "1"))
        if attempt <= int(attempts):
            return status
    percent_text = knob(request, "x-demo-fail-percent", service)
    for key, percent in (("request", percent_text), ("instance", state.faults.get("fail_percent"))):
        if percent is not None:
            count = state.percent_counters[key]
            state.percent_counters[key] += 1
            if even_share(count, float(percent)):
                return status
    return None


def delay_of(request: web.Request, state: State) -> float:
    text = knob(request, "x-demo-delay", state.identity.service) or state.faults.get("delay")
    return Duration.parse(text).seconds if text else 0.0


def forwarded_headers(request: web.Request, rest: str | None, forward: tuple[str, ...] = ()) -> dict[str, str]:
    headers = {name: request.headers[name] for name in (*TRACE_HEADERS, *forward) if name in request.headers}
    for name in FAULT_HEADERS:
        qualified = [v for v in request.headers.getall(name, []) if ":" in v]
        if qualified:
            headers[name] = ",".join(qualified)
    if rest:
        headers["x-demo-call"] = rest
    return headers


async def call(state: State, request: web.Request, chain: str) -> dict[str, Any]:
    hop, _, rest = chain.partition(">")
    target, slash, path = hop.partition("/")
    if state.identity.outbound is None or state.session is None:
        return {"target": target, "status": 0, "error": "no outbound sidecar configured"}
    url = f"http://{state.identity.outbound}/{path if slash else ''}"
    headers = {**forwarded_headers(request, rest or None, state.identity.forward), "Host": target}
    try:
        async with state.session.get(url, headers=headers) as response:
            text = await response.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return {"target": target, "status": response.status, "body": body}
    except (OSError, TimeoutError) as exc:
        return {"target": target, "status": 0, "error": str(exc) or type(exc).__name__}


async def handle(request: web.Request) -> web.Response:
    state = request.app[STATE]
    identity = state.identity
    mirrored = request.host.split(":")[0].endswith("-shadow")
    state.stats["requests"] += 1
    state.stats["mirrored" if mirrored else "primary"] += 1
    delay = delay_of(request, state)
    if delay:
        await asyncio.sleep(delay)
    failure = should_fail(request, state)
    body: dict[str, Any] = {
        **identity.as_dict(),
        "method": request.method,
        "path": request.path_qs,
        "host": request.host,
        "attempt": int(request.headers.get("x-envoy-attempt-count", "1")),
        "headers": dict(sorted((k.lower(), v) for k, v in request.headers.items())),
    }
    if failure is not None:
        state.stats["failed"] += 1
        return web.json_response({**body, "error": "injected failure"}, status=failure)
    chains = [c.strip() for c in request.headers.get("x-demo-call", "").split(",") if c.strip()]
    body["calls"] = [await call(state, request, chain) for chain in chains]
    status = 200 if all(200 <= c["status"] < 300 for c in body["calls"]) else 502
    return web.json_response(body, status=status)


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.faults.get("unhealthy"):
        return web.json_response({"healthy": False}, status=503)
    return web.json_response({"healthy": True, **state.identity.as_dict()})


def from_own_host(request: web.Request, state: State) -> bool:
    """The caller is a process on this app's host, not a request relayed from the mesh.

    Its connection comes from the app's listen address (or loopback, if it listens everywhere), and
    it carries no x-forwarded-proto, which Envoy sets on every request it forwards: the app's own
    sidecar connects from this host too, on behalf of callers anywhere in the mesh.
    """
    if "x-forwarded-proto" in request.headers:
        return False
    peer = request.remote or ""
    if state.listen_address in ("0.0.0.0", "::", ""):
        try:
            return ipaddress.ip_address(peer).is_loopback
        except ValueError:
            return False
    return peer == state.listen_address


def _refused() -> web.Response:
    return web.json_response({"error": "demo control endpoints answer only callers on this host"}, status=403)


async def faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not from_own_host(request, state):
        return _refused()
    if request.method == "PUT":
        state.faults = dict(await request.json())
        state.percent_counters.clear()
    return web.json_response(state.faults)


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not from_own_host(request, state):
        return _refused()
    if request.method == "DELETE":
        state.stats.clear()
    return web.json_response({**state.identity.as_dict(), **state.stats})


def build_app(identity: Identity, listen_address: str = "127.0.0.1") -> web.Application:
    app = web.Application()
    state = State(identity=identity, listen_address=listen_address)
    app[STATE] = state

    async def session_context(app: web.Application) -> Any:
        state.session = ClientSession(timeout=ClientTimeout(total=60), auto_decompress=True)
        yield
        await state.session.close()

    app.cleanup_ctx.append(session_context)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/_demo/faults", faults)
    app.router.add_route("*", "/_demo/stats", stats)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def serve_tcp(identity: Identity, host: str, port: int) -> None:
    """TCP services: answer each line with `service version instance: line`."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        prefix = f"{identity.service} {identity.version} {identity.instance}: ".encode()
        while line := await reader.readline():
            writer.write(prefix + line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, host, port)
    async with server:
        await server.serve_forever()


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main() -> None:
    env = os.environ
    missing = [k for k in ("MESHGEN_SERVICE", "MESHGEN_LISTEN") if not env.get(k)]
    if missing:
        sys.exit(f"demo app: set {', '.join(missing)}")
    identity = Identity(
        service=env["MESHGEN_SERVICE"],
        version=env.get("MESHGEN_VERSION", "v1"),
        instance=env.get("MESHGEN_INSTANCE", env["MESHGEN_SERVICE"]),
        outbound=env.get("MESHGEN_OUTBOUND") or None,
        forward=tuple(h.strip().lower() for h in env.get("MESHGEN_FORWARD_HEADERS", "").split(",") if h.strip()),
    )
    host, port = split_address(env["MESHGEN_LISTEN"])
    if env.get("MESHGEN_PROTOCOL", "http") == "tcp":
        asyncio.run(serve_tcp(identity, host, port))
    else:
        web.run_app(build_app(identity, host), host=host, port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
