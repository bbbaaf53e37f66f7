"""The small HTTP client verification needs: one request, its status, JSON body and duration."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int  # 0 when no HTTP answer came back
    body: Any  # parsed JSON, or the text when not JSON
    elapsed: float
    headers: dict[str, str]

    @property
    def version(self) -> str | None:
        return self.body.get("version") if isinstance(self.body, dict) else None

    @property
    def instance(self) -> str | None:
        return self.body.get("instance") if isinstance(self.body, dict) else None

    @property
    def from_upstream(self) -> bool:
        """Whether an app answered, not the caller's sidecar itself (a fault's abort, no healthy
        instance): Envoy's router times the upstream only when there was one."""
        return "x-envoy-upstream-service-time" in self.headers


def send(
    address: str,
    port: int,
    path: str = "/",
    *,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 30.0,
    body: bytes | None = None,
    source: str | None = None,
) -> Reply:
    """One request; `source` binds the local end, to call as a process on that address's host would."""
    started = time.monotonic()
    connection = http.client.HTTPConnection(
        address, port, timeout=timeout, source_address=(source, 0) if source else None
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read().decode("utf-8", errors="replace")
        answered = {k.lower(): v for k, v in response.getheaders()}
        status = response.status
    except OSError as exc:
        return Reply(0, str(exc), time.monotonic() - started, {})
    finally:
        connection.close()
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw
    return Reply(status, parsed, time.monotonic() - started, answered)


def send_many(count: int, request: Any, workers: int = 4) -> list[Reply]:
    """`count` calls of `request()` from `workers` threads, in completion order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda _: request(), range(count)))


def run_all(requests: list[Any], workers: int = 4) -> list[Reply]:
    """Call each of `requests` from `workers` threads; replies in the order of `requests`."""
    if not requests:
        return []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda request: request(), requests))


def envoy_stat(admin: str, name: str) -> int:
    """One counter or gauge from an Envoy admin endpoint (address:port); 0 if it does not exist yet."""
    address, _, port = admin.rpartition(":")
    reply = send(address, int(port), f"/stats?format=json&filter=^{name}$")
    if not isinstance(reply.body, dict):
        return 0
    for stat in reply.body.get("stats", []):
        if stat.get("name") == name:
            return int(stat.get("value", 0))
    return 0


def envoy_stats(admin: str, pattern: str) -> dict[str, int]:
    """Every counter and gauge whose name matches the regex `pattern`, from one admin request."""
    address, _, port = admin.rpartition(":")
    reply = send(address, int(port), f"/stats?format=json&filter={pattern}")
    if not isinstance(reply.body, dict):
        return {}
    return {str(s["name"]): int(s.get("value", 0)) for s in reply.body.get("stats", []) if "value" in s}


def cluster_hosts(admin: str, cluster: str) -> tuple[set[str], set[str]]:
    """`address:port` of every host of `cluster`, and of those outlier detection has ejected,
    per the Envoy admin at `admin`."""
    address, _, port = admin.rpartition(":")
    reply = send(address, int(port), "/clusters?format=json")
    if not isinstance(reply.body, dict):
        return set(), set()
    hosts, ejected = set(), set()
    for status in reply.body.get("cluster_statuses", []):
        if status.get("name") != cluster:
            continue
        for host in status.get("host_statuses", []):
            socket = host["address"]["socket_address"]
            hosts.add(f"{socket['address']}:{socket['port_value']}")
            if host.get("health_status", {}).get("failed_outlier_check"):
                ejected.add(f"{socket['address']}:{socket['port_value']}")
    return hosts, ejected


def ejected_hosts(admin: str, cluster: str) -> set[str]:
    """`address:port` of each host of `cluster` that outlier detection has ejected."""
    return cluster_hosts(admin, cluster)[1]
