"""Handshake cost: new mutual-TLS connections per second against a callee Envoy's listener.

Keep-alive load (wrk) pays the TLS handshake once per connection, so it shows what TLS costs
per request (record encryption) and hides what it costs per connection. Here every request
opens a fresh connection: TCP connect, a TLS 1.3 handshake presenting the certificate of an
identity the callee admits (the caller's), one `GET /` with `Connection: close`, the answer read
to the end. The client is Python's `ssl` (OpenSSL) in a few threads (the handshake runs without
the GIL), not `openssl s_time`: s_time sends HTTP/1.0, which Envoy refuses (426) before any route
or authorization runs, and without a request it counts a TLS 1.3 connection as done before the
server has even checked the client's certificate. The client's own crypto costs about as much
as the server's and shares the 2 cores, so the connections per second are a property of this
machine; the callee Envoy's CPU time per connection is the cost on the server side alone.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.processes import Proc, require_loopback
from bench.stats import median, median_interval, percentile, rounded

MAX_CONNECTIONS_PER_WORKER = 200_000  # a bound on every client loop, besides its deadline
CONNECT_TIMEOUT_SECONDS = 2.0
KEYS = ("connections_per_s", "p50_ms", "p99_ms", "envoy_cpu_us_per_connection")


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    port: int
    context: ssl.SSLContext | None  # None: plaintext
    host: str = "callee"


def client_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """TLS 1.3 only, presenting `cert`, trusting `ca`; no host name check (a mesh identity is a
    SPIFFE URI, not a DNS name)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(ca)
    context.load_cert_chain(cert, key)
    return context


def one_connection(endpoint: Endpoint) -> bool:
    """A fresh connection, one request, read to the end; True for a 200 answer."""
    conn = socket.create_connection((require_loopback(endpoint.address), endpoint.port), CONNECT_TIMEOUT_SECONDS)
    try:
        # No Nagle: the request must not wait for the ACK of the client's last handshake flight.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if endpoint.context is not None:
            conn = endpoint.context.wrap_socket(conn)  # takes the socket over; closed below
        request = f"GET / HTTP/1.1\r\nHost: {endpoint.host}\r\nConnection: close\r\n\r\n".encode()
        conn.sendall(request)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).startswith(b"HTTP/1.1 200")
    finally:
        conn.close()


def run_clients(endpoint: Endpoint, seconds: float, workers: int) -> dict[str, Any]:
    """`workers` threads opening connections until the deadline: counts, errors, latencies."""
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(workers)]
    errors = [0] * workers

    def work(index: int) -> None:
        for _ in range(MAX_CONNECTIONS_PER_WORKER):
            if time.monotonic() >= deadline:
                return
            began = time.perf_counter()
            try:
                ok = one_connection(endpoint)
            except (OSError, ssl.SSLError):
                ok = False
            if ok:
                latencies[index].append(time.perf_counter() - began)
            else:
                errors[index] += 1

    began = time.monotonic()
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    elapsed = time.monotonic() - began
    done = [value for values in latencies for value in values]
    return {"connections": len(done), "errors": sum(errors), "seconds": elapsed, "latencies": done}


def measure(endpoint: Endpoint, envoy: Proc | None, seconds: float, workers: int) -> dict[str, Any]:
    cpu_before = envoy.cpu_seconds() if envoy else None
    raw = run_clients(endpoint, seconds, workers)
    cpu_after = envoy.cpu_seconds() if envoy else None
    return sample_of(raw, None if cpu_before is None or cpu_after is None else cpu_after - cpu_before)


def sample_of(raw: dict[str, Any], envoy_cpu_seconds: float | None) -> dict[str, Any]:
    """One measurement's numbers from the clients' raw counts and the callee Envoy's CPU time."""
    latencies = raw["latencies"]
    sample: dict[str, Any] = {
        "connections": raw["connections"],
        "errors": raw["errors"],
        "connections_per_s": raw["connections"] / raw["seconds"] if raw["seconds"] > 0 else 0.0,
    }
    if latencies:
        sample["p50_ms"] = percentile(latencies, 50) * 1000
        sample["p99_ms"] = percentile(latencies, 99) * 1000
    if envoy_cpu_seconds is not None and raw["connections"]:
        sample["envoy_cpu_us_per_connection"] = envoy_cpu_seconds / raw["connections"] * 1e6
    return sample


def summarize(
    samples: dict[str, list[dict[str, Any]]], labels: dict[str, str], reference: str, conditions: dict[str, Any]
) -> dict[str, Any]:
    """Medians per endpoint, and each one's ratio to the reference measured around it (the
    `reference` key a sample carries, see dataplane.attach_brackets)."""
    configs: dict[str, Any] = {}
    for name, rounds in samples.items():
        if not rounds:
            continue
        summary: dict[str, Any] = {"label": labels.get(name, name)}
        for key in KEYS:
            values = [r[key] for r in rounds if key in r]
            if values:
                summary[key] = rounded(median(values), 3 if key.endswith("_ms") else 1)
        summary["connections"] = sum(r["connections"] for r in rounds)
        summary["errors"] = sum(r["errors"] for r in rounds)
        bracketed = [r for r in rounds if reference in r]
        if bracketed and name != reference:
            versus: dict[str, Any] = {}
            for key in KEYS:
                values = [r[key] / r[reference][key] for r in bracketed if r[reference].get(key) and key in r]
                versus[key] = rounded(median(values), 3) if values else None
                interval = median_interval(values)
                versus[f"{key}_ci95"] = [rounded(v, 3) for v in interval] if interval else None
            summary[f"vs_{reference}"] = versus
        configs[name] = summary
    return {"reference": reference, "configs": configs, "conditions": conditions}
