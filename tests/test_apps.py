"""The demo app and the trace collector, in-process through aiohttp's test client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from meshgen.apps import collector, demo


def run(app_factory: Callable[[], Any], scenario: Callable[[TestClient], Awaitable[None]]) -> None:
    async def main() -> None:
        async with TestClient(TestServer(app_factory())) as client:
            await scenario(client)

    asyncio.run(main())


def demo_app() -> Any:
    return demo.build_app(demo.Identity(service="users", version="v2", instance="users.v2.h1", outbound=None))


def test_even_share_is_exact_and_deterministic() -> None:
    assert sum(demo.even_share(n, 10) for n in range(100)) == 10
    assert sum(demo.even_share(n, 33.3) for n in range(1000)) == 333
    assert [demo.even_share(n, 50) for n in range(4)] == [False, True, False, True]


def test_demo_answers_who_it_is_and_what_it_received() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/items?q=1", headers={"x-request-id": "abc"})
        body = await response.json()
        assert response.status == 200
        assert (body["service"], body["version"], body["instance"]) == ("users", "v2", "users.v2.h1")
        assert body["path"] == "/items?q=1" and body["headers"]["x-request-id"] == "abc"
        assert body["calls"] == []

    run(demo_app, scenario)


def test_fail_first_k_attempts_follows_envoys_attempt_count() -> None:
    async def scenario(client: TestClient) -> None:
        statuses = []
        for attempt in (1, 2, 3):
            response = await client.get(
                "/", headers={"x-demo-fail-attempts": "2", "x-envoy-attempt-count": str(attempt)}
            )
            statuses.append(response.status)
        assert statuses == [503, 503, 200]
        qualified = await client.get("/", headers={"x-demo-fail-attempts": "orders:5"})
        assert qualified.status == 200  # aimed at another service
        aimed = await client.get("/", headers={"x-demo-fail-attempts": "users:1", "x-demo-fail-status": "500"})
        assert aimed.status == 500

    run(demo_app, scenario)


def test_fail_percent_and_instance_faults_and_stats() -> None:
    async def scenario(client: TestClient) -> None:
        results = [(await client.get("/", headers={"x-demo-fail-percent": "25"})).status for _ in range(8)]
        assert results.count(503) == 2
        await client.put("/_demo/faults", json={"fail_percent": 100, "fail_status": 502})
        assert (await client.get("/")).status == 502
        await client.put("/_demo/faults", json={})
        assert (await client.get("/", headers={"Host": "users-shadow"})).status == 200
        stats = await (await client.get("/_demo/stats")).json()
        assert (stats["requests"], stats["failed"], stats["mirrored"]) == (10, 3, 1)
        await client.delete("/_demo/stats")
        assert "requests" not in await (await client.get("/_demo/stats")).json()

    run(demo_app, scenario)


def test_calls_without_an_outbound_sidecar_fail_clearly() -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/", headers={"x-demo-call": "orders>inventory"})
        body = await response.json()
        assert response.status == 502
        assert body["calls"] == [{"target": "orders", "status": 0, "error": "no outbound sidecar configured"}]

    run(demo_app, scenario)


def test_forwarded_headers_carry_trace_context_and_qualified_knobs_only() -> None:
    class FakeRequest:
        headers = CIMultiDict(
            {
                "x-b3-traceid": "t",
                "traceparent": "00-x",
                "x-demo-delay": "1s",
                "x-demo-fail-attempts": "inventory:2",
                "cookie": "secret",
            }
        )

    forwarded = demo.forwarded_headers(FakeRequest(), "inventory")  # type: ignore[arg-type]
    assert forwarded == {
        "x-b3-traceid": "t",
        "traceparent": "00-x",
        "x-demo-fail-attempts": "inventory:2",
        "x-demo-call": "inventory",
    }


SPAN = {
    "traceId": "abc",
    "id": "1",
    "kind": "SERVER",
    "localEndpoint": {"serviceName": "web"},
    "timestamp": 1,
    "duration": 5,
}


def test_collector_accepts_spans_and_serves_zipkin_queries() -> None:
    async def scenario(client: TestClient) -> None:
        child = {**SPAN, "id": "2", "parentId": "1", "localEndpoint": {"serviceName": "api"}}
        assert (await client.post("/api/v2/spans", json=[SPAN, child])).status == 202
        assert (await client.post("/api/v2/spans", json=[{"id": "x"}])).status == 400
        assert (await client.post("/api/v2/spans", data=b"not json")).status == 400
        trace = await (await client.get("/api/v2/trace/abc")).json()
        assert [s["id"] for s in trace] == ["1", "2"]
        assert await (await client.get("/api/v2/services")).json() == ["api", "web"]
        assert len(await (await client.get("/api/v2/traces?serviceName=api")).json()) == 1
        assert await (await client.get("/api/v2/traces?serviceName=nope")).json() == []
        assert (await client.get("/api/v2/trace/ffff")).status == 404

    run(collector.build_app, scenario)


def test_demo_control_endpoints_answer_only_callers_on_its_own_host() -> None:
    """Listening on 127.0.10.129, a caller from 127.0.0.1 is another host of the local mesh."""

    def elsewhere() -> Any:
        identity = demo.Identity(service="users", version="v2", instance="users.v2.h1", outbound=None)
        return demo.build_app(identity, listen_address="127.0.10.129")

    async def refused(client: TestClient) -> None:
        for method, path in (("PUT", "/_demo/faults"), ("GET", "/_demo/stats"), ("DELETE", "/_demo/stats")):
            response = await client.request(method, path, json={"fail_percent": 100})
            assert response.status == 403, (method, path)
        assert (await client.get("/")).status == 200  # the app itself still answers

    async def allowed(client: TestClient) -> None:
        assert (await client.put("/_demo/faults", json={"fail_percent": 100})).status == 200
        assert (await client.get("/")).status == 503

    run(elsewhere, refused)
    run(demo_app, allowed)


def test_demo_passes_on_the_headers_it_is_told_to_and_trace_headers() -> None:
    from aiohttp.test_utils import make_mocked_request

    request = make_mocked_request(
        "GET", "/", headers={"end-user": "jason", "x-b3-traceid": "abc", "cookie": "secret", "x-canary": "true"}
    )
    assert demo.forwarded_headers(request, None, ("end-user", "x-canary")) == {
        "x-b3-traceid": "abc",
        "end-user": "jason",
        "x-canary": "true",
    }
    assert demo.forwarded_headers(request, "b>c") == {"x-b3-traceid": "abc", "x-demo-call": "b>c"}
