"""A trace collector speaking the Zipkin v2 HTTP API, kept in memory.

POST /api/v2/spans (JSON list of spans, as Envoy's Zipkin tracer sends), GET /api/v2/services,
GET /api/v2/traces?serviceName=&limit=, GET /api/v2/trace/{traceId}. Enough for Envoy and for
tools that read Zipkin, and for `meshgen traces` and `meshgen verify`.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from collections import OrderedDict
from typing import Any

from aiohttp import web

MAX_TRACES = 10_000

TRACES = web.AppKey("traces", OrderedDict)


async def accept_spans(request: web.Request) -> web.Response:
    raw = await request.read()
    if request.headers.get("Content-Encoding") == "gzip":
        raw = gzip.decompress(raw)
    try:
        spans = json.loads(raw)
    except ValueError:
        return web.json_response({"error": "expected a JSON list of spans"}, status=400)
    if not isinstance(spans, list):
        return web.json_response({"error": "expected a JSON list of spans"}, status=400)
    traces: OrderedDict[str, list[dict[str, Any]]] = request.app[TRACES]
    for span in spans:
        if not isinstance(span, dict) or "traceId" not in span or "id" not in span:
            return web.json_response({"error": "each span needs traceId and id"}, status=400)
        trace_id = str(span["traceId"]).lower().rjust(32, "0")
        traces.setdefault(trace_id, []).append(span)
        traces.move_to_end(trace_id)
    while len(traces) > MAX_TRACES:
        traces.popitem(last=False)
    return web.Response(status=202)


def _service_names(spans: list[dict[str, Any]]) -> set[str]:
    return {str(s.get("localEndpoint", {}).get("serviceName", "")) for s in spans}


async def list_traces(request: web.Request) -> web.Response:
    traces: OrderedDict[str, list[dict[str, Any]]] = request.app[TRACES]
    service = request.query.get("serviceName")
    limit = int(request.query.get("limit", "10"))
    selected = []
    for spans in reversed(traces.values()):
        if service and service not in _service_names(spans):
            continue
        selected.append(spans)
        if len(selected) >= limit:
            break
    return web.json_response(selected)


async def get_trace(request: web.Request) -> web.Response:
    trace_id = request.match_info["trace_id"].lower().rjust(32, "0")
    spans = request.app[TRACES].get(trace_id)
    if spans is None:
        return web.json_response({"error": "trace not found"}, status=404)
    return web.json_response(spans)


async def services(request: web.Request) -> web.Response:
    names: set[str] = set()
    for spans in request.app[TRACES].values():
        names |= _service_names(spans)
    return web.json_response(sorted(n for n in names if n))


async def clear(request: web.Request) -> web.Response:
    request.app[TRACES].clear()
    return web.Response(status=204)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "UP"})


def build_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[TRACES] = OrderedDict()
    app.router.add_post("/api/v2/spans", accept_spans)
    app.router.add_get("/api/v2/traces", list_traces)
    app.router.add_get("/api/v2/trace/{trace_id}", get_trace)
    app.router.add_get("/api/v2/services", services)
    app.router.add_delete("/api/v2/traces", clear)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    listen = os.environ.get("MESHGEN_LISTEN") or (sys.argv[1] if len(sys.argv) > 1 else "")
    if not listen:
        sys.exit("collector: set MESHGEN_LISTEN=address:port")
    host, _, port = listen.rpartition(":")
    web.run_app(build_app(), host=host.strip("[]"), port=int(port), print=None, access_log=None)


if __name__ == "__main__":
    main()
