"""Property-based: any catalog the schema accepts renders to configs the real Envoy accepts,
and rendering is deterministic. Examples are derandomized, so every run checks the same ones."""

from __future__ import annotations

import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshgen.model import load_mesh
from meshgen.render.envoy import render_envoy
from meshgen.render.envoy.validate import find_envoy, validate_sidecar
from meshgen.render.output import write_tree
from tests.support import layout_of

durations = st.sampled_from(["50ms", "250ms", "1s", "2s", "1500ms", "1m"])
percents = st.sampled_from([0, 0.5, 10, 33.3, 100])
retry_on = st.lists(
    st.sampled_from(["5xx", "reset", "connect-failure", "gateway-error", "retriable-4xx"]),
    min_size=1,
    max_size=3,
    unique=True,
)


@st.composite
def retries(draw: st.DrawFn) -> dict[str, Any]:
    policy: dict[str, Any] = {"attempts": draw(st.integers(1, 4))}
    if draw(st.booleans()):
        policy["on"] = draw(retry_on)
    if draw(st.booleans()):
        policy["per_try_timeout"] = draw(durations)
    if draw(st.booleans()):
        policy["backoff"] = {"base": "10ms", "max": draw(st.sampled_from(["10ms", "100ms", "1s"]))}
    policy["methods"] = draw(st.sampled_from(["idempotent", "all"]))
    policy["another_host"] = draw(st.booleans())
    if draw(st.booleans()):
        policy["status_codes"] = [503]
    return policy


def weights(draw: st.DrawFn, versions: list[str]) -> dict[str, int]:
    """Relative weights, at least one above 0: percentages, or any other scale."""
    chosen = draw(st.lists(st.sampled_from(versions), min_size=1, max_size=len(versions), unique=True))
    total = draw(st.sampled_from([1, 100, 1000]))
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=len(chosen) - 1, max_size=len(chosen) - 1)))
    bounds = [0, *cuts, total]
    split = {version: bounds[i + 1] - bounds[i] for i, version in enumerate(chosen)}
    if not any(split.values()):
        split[chosen[0]] = 1
    return split


@st.composite
def http_route(draw: st.DrawFn, index: int, versions: list[str]) -> dict[str, Any]:
    route: dict[str, Any] = {"name": f"r{index}", "to": weights(draw, versions)}
    kind = draw(st.sampled_from(["none", "prefix", "path", "header"]))
    if kind == "prefix":
        route["match"] = {"prefix": f"/p{index}"}
    elif kind == "path":
        route["match"] = {"path": f"/exact/{index}", "methods": ["GET", "POST"]}
    elif kind == "header":
        route["match"] = {
            "headers": {"x-h": draw(st.sampled_from(["yes", {"regex": "a|b"}, {"present": False}, {"prefix": "p"}]))}
        }
    if draw(st.booleans()):
        route["timeout"] = draw(durations)
    if draw(st.booleans()):
        route["retries"] = draw(retries())
    if draw(st.booleans()):
        fault: dict[str, Any] = {"abort": {"status": 503, "percent": draw(percents)}}
        if draw(st.booleans()):
            fault["delay"] = {"duration": draw(durations), "percent": draw(percents)}
        if draw(st.booleans()):
            fault["headers"] = {"x-fault": "on"}
        route["fault"] = fault
    if draw(st.booleans()):
        route["mirror"] = {"to": draw(st.sampled_from(versions)), "percent": draw(percents)}
    return route


@st.composite
def authorization(draw: st.DrawFn, names: list[str], tcp: bool, edge: bool) -> list[dict[str, Any]]:
    """Rules that narrow who may call: some callers (any of them may not call at all), named
    clients, outside callers at an edge, methods and path prefixes for HTTP services."""
    rules = []
    for _ in range(draw(st.integers(1, 3))):
        rule: dict[str, Any] = {}
        if draw(st.booleans()):
            rule["from"] = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        if draw(st.booleans()):
            rule["clients"] = ["reports"]
        if edge and draw(st.booleans()):
            rule["outside"] = True
        if not rule:
            rule["from"] = [names[0]]
        if not tcp and draw(st.booleans()):
            rule["methods"] = draw(
                st.lists(st.sampled_from(["GET", "POST", "DELETE"]), min_size=1, max_size=2, unique=True)
            )
        if not tcp and draw(st.booleans()):
            rule["paths"] = draw(
                st.lists(st.sampled_from(["/", "/api/", "/admin"]), min_size=1, max_size=2, unique=True)
            )
        rules.append(rule)
    return rules


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    names = [f"s{i}" for i in range(count)]
    protocols = {name: draw(st.sampled_from(["http", "http2", "grpc", "tcp"])) for name in names}
    hosts: dict[str, Any] = {}
    services: dict[str, Any] = {}
    external = {
        "web": {"address": "api.partner.example", "port": 443, "tls": True},
        "legacy": {"address": "192.0.2.7", "port": 9900, "protocol": "tcp"},
    }
    for index, name in enumerate(names):
        versions = [f"v{i}" for i in range(draw(st.integers(1, 3)))]
        spec: dict[str, Any] = {"port": 8000 + index, "protocol": protocols[name], "versions": {}}
        for version in versions:
            host = f"h{len(hosts)}"
            hosts[host] = {"address": f"127.0.40.{len(hosts) + 1}"}
            spec["versions"][version] = {"instances": [host]}
        others = [n for n in names if n != name] + list(external)
        spec["dependencies"] = draw(st.lists(st.sampled_from(others), unique=True, max_size=3)) if others else []
        if protocols[name] == "tcp":
            if draw(st.booleans()):
                spec["routes"] = [{"to": weights(draw, versions)}]
        else:
            spec["routes"] = [draw(http_route(i, versions)) for i in range(draw(st.integers(0, 3)))]
            if draw(st.booleans()):
                spec["retries"] = draw(retries())
            if draw(st.booleans()):
                spec["rate_limit"] = {"requests": 10, "per": draw(st.sampled_from(["50ms", "1s"]))}
            if draw(st.booleans()):
                spec["health_check"] = {"grpc_service": ""} if protocols[name] == "grpc" else {"path": "/healthz"}
        if draw(st.booleans()):
            spec["edge"] = True
        if draw(st.booleans()):
            spec["authorization"] = draw(authorization(names, protocols[name] == "tcp", spec.get("edge", False)))
        if draw(st.booleans()):
            spec["timeout"] = draw(durations)
        if draw(st.booleans()):
            spec["circuit_breaker"] = {
                "max_requests": draw(st.integers(1, 100)),
                "consecutive_5xx": 2,
                "max_ejection_percent": 100,
                "panic_threshold": draw(st.sampled_from([0, 25.5, 100])),
            }
            if protocols[name] != "tcp" and draw(st.booleans()):
                spec["circuit_breaker"]["max_requests_per_connection"] = draw(st.integers(1, 1000))
        if protocols[name] == "tcp" and draw(st.booleans()):
            spec["health_check"] = {
                "interval": "2s",
                **({"send": "PING\r\n", "expect": "PONG"} if draw(st.booleans()) else {}),
            }
        services[name] = spec
    for spec in services.values():
        tcp_targets = [d for d in spec["dependencies"] if protocols.get(d) == "tcp" or d == "legacy"]
        spec["dependencies"] = [
            {"service": d, "rate_limit": {"requests": 5, "per": "1s"}}
            if d not in tcp_targets and draw(st.booleans())
            else d
            for d in spec["dependencies"]
        ]
    mesh: dict[str, Any] = {
        "name": "prop",
        "access_log": {"format": draw(st.sampled_from(["json", "text"]))},
        "security": {"mtls": draw(st.sampled_from(["strict", "strict", "permissive", "off"]))},
    }
    if draw(st.booleans()):
        mesh["tracing"] = {
            "provider": draw(st.sampled_from(["zipkin", "opentelemetry"])),
            "collector": "127.0.0.9:9411",
            "sample_percent": draw(percents),
        }
    if draw(st.booleans()):
        mesh["defaults"] = {"timeout": draw(durations), "retries": draw(retries())}
    return {"mesh": mesh, "hosts": hosts, "services": services, "external": external}


def _render(catalog: dict[str, Any], workdir: Path) -> tuple[Any, dict[str, str]]:
    source = workdir / "catalog.yaml"
    source.write_text(yaml.safe_dump(catalog, sort_keys=False))
    mesh = load_mesh(source)
    return mesh, render_envoy(mesh, layout_of(workdir / "out"))


@pytest.mark.envoy
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs())
def test_generated_catalogs_render_configs_envoy_accepts(catalog: dict[str, Any]) -> None:
    envoy = find_envoy()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        mesh, files = _render(catalog, workdir)
        write_tree(workdir / "out", files)
        # Sidecars of one service differ only in addresses: one per service is enough.
        firsts = {i.service: i for i in reversed(mesh.instances)}
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda i: validate_sidecar(workdir / "out" / i.id, envoy), firsts.values()))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(catalogs())
def test_rendering_is_deterministic(catalog: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        _, files_a = _render(catalog, Path(first))
        _, again = _render(catalog, Path(first))
        _, files_b = _render(catalog, Path(second))
    assert files_a == again
    # Elsewhere only the paths differ, and the version digests, which cover those paths.
    version = re.compile(r'"version_info": "[0-9a-f]+"')

    def strip(files: dict[str, str], root: str) -> dict[str, str]:
        return {k: version.sub("VERSION", v.replace(root, "ROOT")) for k, v in files.items()}

    assert strip(files_a, str(Path(first).resolve())) == strip(files_b, str(Path(second).resolve()))
