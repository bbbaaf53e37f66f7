"""Data-plane overhead on loopback: direct, a minimal Envoy pair, and meshgen's sidecar pair.

One app (nginx answering `return 200`), one load generator (wrk, one thread, fixed
connections), the same Envoy binary with `--concurrency 1` everywhere. Every configuration runs
in every round, in a rotated order, so drift on a shared machine touches all alike; each
metric is the median over rounds.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from bench import processes
from bench.processes import Proc, Processes, pick_common_port, pick_port, require_loopback, run_bounded
from bench.stats import median, median_interval, ratio, rounded

Log = Callable[[str], None]

COLLECTOR_ADDRESS = "127.0.90.1"
APP_ADDRESS = "127.0.90.2"
APP_PORT = 18080
CALLEE_HOST = "callee"
WRK_MARK = "BENCH-WRK "

# wrk calls done() once, after the run, with its own latency histogram (microseconds).
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "mean_us": %.1f, "max_us": %d}\\n',
    "MARK", summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
""".replace("MARK", WRK_MARK)


@dataclass(frozen=True)
class Variant:
    """One configuration of the path from wrk to the app."""

    name: str
    kind: str  # "direct" | "floor" | "meshgen"
    label: str
    tracing_percent: float | None = None
    access_log: bool = False
    retries: bool = False
    mtls: bool = False  # mutual TLS between the caller's and the callee's Envoy
    # The floor this configuration is measured between (see `schedule`): the plaintext floor, or
    # the mTLS floor for meshgen's mTLS pairs.
    reference: str = "floor"


DIRECT = Variant("direct", "direct", "direct to the app (no proxy)")
FLOOR = Variant("floor", "floor", "minimal Envoy pair (listener + static cluster, router only)")
# A second, identical floor pair: its ratio to the floor is pure measurement noise (an A/A test).
FLOOR_AGAIN = Variant("floor_again", "floor", "minimal Envoy pair, second copy (A/A control)")
MESHGEN = Variant("meshgen", "meshgen", "meshgen pair, optional features off")
FEATURES = (
    Variant("tracing_1pct", "meshgen", "meshgen + tracing 1% (Zipkin)", tracing_percent=1),
    Variant("tracing_100pct", "meshgen", "meshgen + tracing 100% (Zipkin)", tracing_percent=100),
    Variant("access_log", "meshgen", "meshgen + JSON access log to /dev/null", access_log=True),
    Variant("retries", "meshgen", "meshgen + retries (3 attempts)", retries=True),
)
ALL_ON = Variant(
    "meshgen_all",
    "meshgen",
    "meshgen + tracing 1% + access log + retries",
    tracing_percent=1,
    access_log=True,
    retries=True,
)
# The second floor: the same minimal pair with mutual TLS between the Envoys (static TLS contexts
# naming the same certificate files meshgen's pair uses, TLS 1.3), measured between plaintext
# floors (the cost of TLS itself) and the reference of meshgen's mTLS pairs.
MTLS_FLOOR = Variant("mtls_floor", "floor", "minimal Envoy pair with mutual TLS (static TLS contexts)", mtls=True)
MESHGEN_MTLS = Variant(
    "meshgen_mtls", "meshgen", "meshgen pair, mTLS strict, optional features off", mtls=True, reference="mtls_floor"
)
# What a user runs: the defaults a production catalog carries.
PRODUCTION = Variant(
    "meshgen_production",
    "meshgen",
    "meshgen, production defaults: mTLS strict + tracing 1% + access log + retries",
    tracing_percent=1,
    access_log=True,
    retries=True,
    mtls=True,
    reference="mtls_floor",
)
MTLS_VARIANTS = (MTLS_FLOOR, MESHGEN_MTLS, PRODUCTION)
VARIANTS = (DIRECT, FLOOR, FLOOR_AGAIN, MESHGEN, *FEATURES, ALL_ON, *MTLS_VARIANTS)
REFERENCES = {v.name: v.reference for v in VARIANTS}
# Every SPIFFE ID of the bench's mTLS pairs is in this trust domain, whatever the mesh's name, so
# one set of certificates (one TLS root) serves every mTLS pair, meshgen's and the floor's.
TRUST_DOMAIN = "bench.meshgen"
CALLER_INSTANCE = "caller.v1.caller-1"
CALLEE_INSTANCE = "callee.v1.callee-1"


@dataclass(frozen=True)
class DataplaneConfig:
    duration_s: int
    warmup_s: int
    rounds: int
    connections: int = 16
    wrk_threads: int = 1
    envoy_concurrency: int = 1
    # New connections per second (see bench/handshakes.py): rounds of measurements this long.
    handshake_s: float = 2.0
    handshake_rounds: int = 5
    handshake_workers: int = 2

    @classmethod
    def for_run(cls, quick: bool) -> DataplaneConfig:
        if quick:
            return cls(duration_s=1, warmup_s=0, rounds=2, handshake_s=1.0, handshake_rounds=1)
        return cls(duration_s=1, warmup_s=0, rounds=20)


# -- tools ----------------------------------------------------------------------------------------


def ensure_tools(log: Log) -> dict[str, str]:
    """wrk and nginx from Debian, installed when missing and we may; returns their paths."""
    missing = [p for p, tool in (("wrk", "wrk"), ("nginx-light", "nginx")) if not which_tool(tool)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise RuntimeError(f"missing {', '.join(missing)}: install with apt-get install {' '.join(missing)}")
        log(f"  installing {' '.join(missing)} (apt-get; the nginx service is not started)")
        # RUNLEVEL=1: invoke-rc.d starts no service, so nginx does not take port 80.
        env = {"DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
        done = run_bounded(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], 600, env)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install {' '.join(missing)} failed:\n{done.stderr[-2000:]}")
    wrk, nginx = which_tool("wrk"), which_tool("nginx")
    assert wrk and nginx
    return {"wrk": wrk, "nginx": nginx}


def which_tool(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")


def find_envoy() -> str:
    from meshgen.render.envoy.validate import find_envoy as meshgen_find_envoy

    return meshgen_find_envoy()


def tool_versions(envoy: str | None, wrk: str | None, nginx: str | None) -> dict[str, str | None]:
    def first_line(argv: list[str]) -> str | None:
        try:
            done = run_bounded(argv, 20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (done.stdout + done.stderr).strip()
        return next((line.strip() for line in text.splitlines() if line.strip()), None)

    envoy_line = first_line([envoy, "--version"]) if envoy else None
    return {
        "envoy": envoy_line.split("version:")[-1].strip() if envoy_line else None,
        "wrk": first_line([wrk, "-v"]) if wrk else None,
        "nginx": first_line([nginx, "-v"]) if nginx else None,
    }


# -- the app: nginx answering a fixed body ---------------------------------------------------------


def nginx_config(directory: Path, servers: list[tuple[str, int, str]]) -> str:
    """One worker, no access log, long keep-alive; each server answers `return 200 BODY`."""
    blocks = []
    for address, port, body in servers:
        require_loopback(address)
        blocks.append(f'  server {{ listen {address}:{port}; location / {{ return 200 "{body}\\n"; }} }}')
    temp = "\n".join(
        f"  {kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
master_process on;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
{temp}
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  default_type text/plain;
{chr(10).join(blocks)}
}}
"""


def start_nginx(procs: Processes, nginx: str, directory: Path, servers: list[tuple[str, int, str]]) -> Proc:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "nginx.conf"
    config.write_text(nginx_config(directory, servers), encoding="utf-8")
    argv = [nginx, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
    proc = procs.start("nginx", argv, directory / "nginx.log")
    for address, port, body in servers:
        processes.wait_until(
            functools.partial(processes.http_answers, address, port, None, body),
            [proc],
            f"nginx on {address}:{port}",
        )
    return proc


# -- Envoy configurations ----------------------------------------------------------------------------


def envoy_argv(envoy: str, config: Path, concurrency: int) -> list[str]:
    return [
        envoy,
        "-c",
        str(config),
        "--disable-hot-restart",
        "--concurrency",
        str(concurrency),
        "--log-level",
        "warn",
        "--drain-time-s",
        "1",
    ]


@dataclass(frozen=True)
class TlsFiles:
    """One identity's certificate chain and key, and the CA bundle it trusts (PEM files)."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def of(cls, tls_root: Path, instance: str) -> TlsFiles:
        from meshgen.render.envoy.layout import Layout

        paths = Layout(PurePosixPath("/unused"), PurePosixPath(tls_root.as_posix())).sidecar(instance)
        return cls(Path(str(paths.cert)), Path(str(paths.key)), Path(str(paths.trust_bundle)))


_TLS_TYPES = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."


def static_tls_context(files: TlsFiles, *, downstream: bool) -> dict[str, Any]:
    """The least a mutual-TLS hop needs: its certificate and key, the CA it trusts, TLS 1.3 (as
    meshgen renders it). No SDS, no SAN match, no ALPN, no SNI: a static context, read once."""
    common = {
        "tls_params": {"tls_minimum_protocol_version": "TLSv1_3", "tls_maximum_protocol_version": "TLSv1_3"},
        "tls_certificates": [
            {"certificate_chain": {"filename": str(files.cert)}, "private_key": {"filename": str(files.key)}}
        ],
        "validation_context": {"trusted_ca": {"filename": str(files.ca)}},
    }
    if downstream:
        typed = {"@type": _TLS_TYPES + "DownstreamTlsContext", "require_client_certificate": True}
    else:
        typed = {"@type": _TLS_TYPES + "UpstreamTlsContext"}
    return {"name": "envoy.transport_sockets.tls", "typed_config": {**typed, "common_tls_context": common}}


def floor_envoy_config(
    listen: tuple[str, int],
    upstream: tuple[str, int],
    *,
    downstream_tls: TlsFiles | None = None,
    upstream_tls: TlsFiles | None = None,
) -> dict[str, Any]:
    """The floor for any Envoy mesh hop: one listener, HCM with the router only, one static
    cluster. No admin, tracing, access log, retries, request ids or stats tags. With
    `downstream_tls` the listener requires mutual TLS; with `upstream_tls` the cluster speaks it."""

    def address(host: str, port: int) -> dict[str, Any]:
        return {"socket_address": {"address": require_loopback(host), "port_value": port}}

    config = {
        "static_resources": {
            "listeners": [
                {
                    "name": "floor",
                    "address": address(*listen),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                        "http_connection_manager.v3.HttpConnectionManager",
                                        "stat_prefix": "floor",
                                        "route_config": {
                                            "name": "floor",
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {"match": {"prefix": "/"}, "route": {"cluster": "next"}}
                                                    ],
                                                }
                                            ],
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions.filters.http."
                                                    "router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "next",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "load_assignment": {
                        "cluster_name": "next",
                        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(*upstream)}}]}],
                    },
                }
            ],
        }
    }
    resources: dict[str, Any] = config["static_resources"]
    if downstream_tls is not None:
        resources["listeners"][0]["filter_chains"][0]["transport_socket"] = static_tls_context(
            downstream_tls, downstream=True
        )
    if upstream_tls is not None:
        resources["clusters"][0]["transport_socket"] = static_tls_context(upstream_tls, downstream=False)
    return config


def pair_catalog(
    variant: Variant,
    caller: str,
    callee: str,
    ports: dict[str, int],
    collector: tuple[str, int] | None,
) -> dict[str, Any]:
    """A 2-service catalog, caller -> callee, one version each, features as `variant` says."""
    mesh: dict[str, Any] = {
        "name": f"bench-{variant.name.replace('_', '-')}",
        "defaults": {"retries": {"attempts": 3 if variant.retries else 1}},
        # An access log is always rendered; a variant without one has it removed afterwards.
        "access_log": {"format": "json", "path": "/dev/null"},
        # Compared with plaintext floors; the mTLS variants with the mTLS floor (the default, strict,
        # in one trust domain for all, so one set of certificates serves every pair).
        "security": {"mtls": "strict", "trust_domain": TRUST_DOMAIN} if variant.mtls else {"mtls": "off"},
        "sidecar": {
            "inbound_port": ports["inbound"],
            "outbound_port": ports["outbound"],
            "admin_port": ports["admin"],
        },
    }
    if variant.tracing_percent is not None:
        assert collector is not None
        mesh["tracing"] = {
            "provider": "zipkin",
            "collector": f"{collector[0]}:{collector[1]}",
            "sample_percent": variant.tracing_percent,
        }
    return {
        "mesh": mesh,
        # Each host's app and listeners on its own mesh address, where the bench's plan puts them.
        "hosts": {
            "caller-1": {"address": caller, "local_address": caller},
            "callee-1": {"address": callee, "local_address": callee},
        },
        "services": {
            "caller": {
                "port": ports["caller_app"],
                "edge": True,
                "versions": {"v1": {"instances": ["caller-1"]}},
                "dependencies": [CALLEE_HOST],
            },
            CALLEE_HOST: {"port": ports["app"], "versions": {"v1": {"instances": ["callee-1"]}}},
        },
    }


def strip_access_logs(node: Any) -> Any:
    """The same config with every `access_log` removed (the 'access log off' variant)."""
    if isinstance(node, dict):
        return {k: strip_access_logs(v) for k, v in node.items() if k != "access_log"}
    if isinstance(node, list):
        return [strip_access_logs(item) for item in node]
    return node


def provision_identities(catalog: dict[str, Any], tls_root: Path) -> None:
    """Certificates for every instance of `catalog` under `tls_root` (and its CA beside it), made
    by meshgen's own code, as `meshgen up` makes them: `<tls_root>/<instance>/current/{cert,key}.pem`
    and `<tls_root>/trust/current/ca.pem`."""
    from meshgen.deploy.local.certs import TLS_DIR, IdentityPlan, ensure_identities
    from meshgen.model import load_mesh

    if tls_root.name != TLS_DIR:
        raise ValueError(f"the TLS root of a state directory is named {TLS_DIR!r}, got {tls_root}")
    source = tls_root.parent / "identities.catalog.yaml"
    tls_root.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    ensure_identities(tls_root.parent, IdentityPlan.of(load_mesh(source)))


def render_pair(
    catalog: dict[str, Any], directory: Path, *, access_log: bool, tls_root: Path | None = None
) -> dict[str, str]:
    """Render the catalog with meshgen into `directory` (the config root), its sidecars' identities
    under `tls_root`; returns the files."""
    from meshgen.model import load_mesh
    from meshgen.render.document import to_yaml
    from meshgen.render.envoy import Layout, render_envoy
    from meshgen.render.output import write_tree

    directory.mkdir(parents=True, exist_ok=True)
    source = directory.parent / f"{directory.name}.catalog.yaml"
    source.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    layout = Layout(PurePosixPath(directory))
    if tls_root is not None:
        layout = Layout(PurePosixPath(directory), PurePosixPath(tls_root.as_posix()))
    files = render_envoy(load_mesh(source), layout)
    if not access_log:
        for relative in [r for r in files if r.endswith("/lds.yaml")]:
            document = strip_access_logs(yaml.safe_load(files[relative]))
            files[relative] = to_yaml(document, ["listeners as meshgen rendered them, access logs removed (bench)"])
    write_tree(directory, files)
    return files


# -- one measurement --------------------------------------------------------------------------------


@dataclass
class Target:
    """Where wrk sends for one variant, and the processes on the path (for CPU accounting)."""

    variant: Variant
    address: str
    port: int
    host_header: str | None
    envoys: list[Proc] = field(default_factory=list)
    # The callee Envoy's listener (where new connections are opened to measure handshakes), that
    # Envoy, and the client identity it admits (None: plaintext).
    callee: tuple[str, int] | None = None
    callee_envoy: Proc | None = None
    client_tls: TlsFiles | None = None


def run_wrk(
    wrk: str, script: Path, target: Target, config: DataplaneConfig, seconds: int, *, script_args: tuple[str, ...] = ()
) -> dict[str, Any]:
    argv = [
        wrk,
        "-t",
        str(config.wrk_threads),
        "-c",
        str(config.connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "2s",
        "-s",
        str(script),
    ]
    if target.host_header:
        argv += ["-H", f"Host: {target.host_header}"]
    argv.append(f"http://{require_loopback(target.address)}:{target.port}/")
    if script_args:
        argv += ["--", *script_args]
    done = run_bounded(argv, seconds + 30)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(WRK_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {target.variant.name} ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line[len(WRK_MARK) :])
    return result


PREWARM_TIMEOUT_SECONDS = 10.0


def prewarm(target: Target, connections: int) -> int:
    """Open the caller's upstream connections again, outside the measurement: `connections`
    keep-alive clients send two requests each at once (so the caller needs that many upstream
    connections at the same time), read the answers and close with nothing in flight. Returns
    the requests that failed.

    wrk stopped by the clock leaves requests in flight; the caller's Envoy resets them upstream
    and closes those HTTP/1.1 connections. Reopening them costs a TCP connect, and for an mTLS
    pair a TLS handshake on each side, all at once at the start of the next measurement: a burst
    that lands in its p99 (tens of milliseconds for the mTLS pairs on this machine). Every Envoy
    pair is prewarmed alike before each measurement, so each measures requests on open
    connections; the handshake cost is measured on its own (bench/handshakes.py)."""
    barrier = threading.Barrier(connections)
    failed = [0] * connections

    def client(index: int) -> None:
        conn = http.client.HTTPConnection(
            require_loopback(target.address), target.port, timeout=PREWARM_TIMEOUT_SECONDS
        )
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(PREWARM_TIMEOUT_SECONDS)
            for _ in range(2):
                conn.request("GET", "/", headers={"Host": target.host_header} if target.host_header else {})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed[index] += 1
        except (OSError, http.client.HTTPException):
            failed[index] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * PREWARM_TIMEOUT_SECONDS + 5)
    return sum(failed)


def measure(wrk: str, script: Path, target: Target, config: DataplaneConfig, collector: Proc | None) -> dict[str, Any]:
    if config.warmup_s:
        run_wrk(wrk, script, target, config, config.warmup_s)
    if target.variant.kind != "direct":
        prewarm(target, config.connections)
    cpu_before = [p.cpu_seconds() for p in target.envoys]
    collector_before = collector.cpu_seconds() if collector else None
    raw = run_wrk(wrk, script, target, config, config.duration_s)
    cpu_after = [p.cpu_seconds() for p in target.envoys]
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    sample: dict[str, Any] = {
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "rps": raw["requests"] / seconds if seconds > 0 else 0.0,
        "requests": raw["requests"],
        "errors": errors,
    }
    before = [c for c in cpu_before if c is not None]
    after = [c for c in cpu_after if c is not None]
    if target.envoys and len(before) == len(after) == len(target.envoys) and raw["requests"]:
        sample["envoy_cpu_us_per_request"] = (sum(after) - sum(before)) / raw["requests"] * 1e6
    if collector is not None and target.variant.tracing_percent and collector_before is not None:
        collector_after = collector.cpu_seconds()
        if collector_after is not None:
            sample["collector_cpu_seconds"] = collector_after - collector_before
    return sample


# -- the section ------------------------------------------------------------------------------------


def pair_addresses(index: int) -> tuple[str, str]:
    """The caller and callee addresses of the index-th Envoy pair (floors and meshgen's alike)."""
    return f"127.0.90.{10 + 2 * index}", f"127.0.90.{11 + 2 * index}"


@contextlib.contextmanager
def running(
    workdir: Path,
    variants: tuple[Variant, ...],
    tools: dict[str, str],
    envoy: str,
    *,
    concurrency: int,
    log: Log,
    wrap: tuple[str, ...] = (),
    ready_timeout: float = 60.0,
) -> Iterator[tuple[list[Target], Proc | None]]:
    """Start the app, the collector and one Envoy pair per variant (each Envoy's argv prefixed
    with `wrap`, e.g. valgrind); stop all of them at the end."""
    with Processes() as procs:
        pairs = [v for v in variants if v.kind != "direct"]
        addresses = {v.name: pair_addresses(i) for i, v in enumerate(pairs)}
        meshgen_callees = [addresses[v.name][1] for v in pairs if v.kind == "meshgen"]
        # meshgen's callee sidecar calls the app on its own address; the floor calls APP_ADDRESS.
        app_port = pick_common_port([APP_ADDRESS, *meshgen_callees], APP_PORT)
        servers = [(APP_ADDRESS, app_port, "ok"), *((a, app_port, "ok") for a in meshgen_callees)]
        start_nginx(procs, tools["nginx"], workdir / "nginx", servers)

        collector: Proc | None = None
        collector_port = pick_port(COLLECTOR_ADDRESS, 9411)
        if any(v.tracing_percent for v in variants):
            collector = procs.start(
                "collector",
                [sys.executable, "-m", "meshgen.apps.collector"],
                workdir / "collector.log",
                {"MESHGEN_LISTEN": f"{COLLECTOR_ADDRESS}:{collector_port}"},
            )
            processes.wait_until(
                lambda: processes.tcp_open(COLLECTOR_ADDRESS, collector_port), [collector], "trace collector"
            )

        def start_envoy(name: str, config_path: Path, log_path: Path) -> Proc:
            return procs.start(name, [*wrap, *envoy_argv(envoy, config_path, concurrency)], log_path)

        tls_root = workdir / "identities" / "tls"
        mtls = [v for v in variants if v.mtls]
        if mtls:
            # One CA and one certificate per instance, by meshgen's own code, for every mTLS pair.
            dummy = {"inbound": 1, "outbound": 2, "admin": 3, "caller_app": 4, "app": 5}
            provision_identities(pair_catalog(MESHGEN_MTLS, *pair_addresses(0), dummy, None), tls_root)
        caller_tls, callee_tls = TlsFiles.of(tls_root, CALLER_INSTANCE), TlsFiles.of(tls_root, CALLEE_INSTANCE)

        targets = []
        for variant in variants:
            if variant.kind == "direct":
                targets.append(Target(variant, APP_ADDRESS, app_port, None))
                continue
            caller, callee = addresses[variant.name]
            directory = workdir / variant.name
            if variant.kind == "floor":
                # wrk -> caller Envoy -> callee Envoy -> app.
                port = pick_common_port([caller, callee], 15001)
                target = Target(
                    variant, caller, port, None, callee=(callee, port), client_tls=caller_tls if variant.mtls else None
                )
                for name, listen, upstream, tls in (
                    ("callee", (callee, port), (APP_ADDRESS, app_port), {"downstream_tls": callee_tls}),
                    ("caller", (caller, port), (callee, port), {"upstream_tls": caller_tls}),
                ):
                    path = directory / f"{name}.yaml"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    config = floor_envoy_config(listen, upstream, **(tls if variant.mtls else {}))
                    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
                    proc = start_envoy(f"{variant.name} {name} envoy", path, directory / f"{name}.log")
                    target.envoys.append(proc)
                    if name == "callee":
                        target.callee_envoy = proc
                targets.append(target)
                continue
            ports = {
                "inbound": pick_common_port([caller, callee], 15006),
                "outbound": pick_common_port([caller, callee], 15001),
                "admin": pick_common_port([caller, callee], 15000),
                "caller_app": pick_common_port([caller], 18081),
                "app": app_port,
            }
            files = render_pair(
                pair_catalog(variant, caller, callee, ports, (COLLECTOR_ADDRESS, collector_port)),
                directory / "config",
                access_log=variant.access_log,
                tls_root=tls_root if variant.mtls else None,
            )
            target = Target(
                variant,
                caller,
                ports["outbound"],
                CALLEE_HOST,
                callee=(callee, ports["inbound"]),
                client_tls=caller_tls if variant.mtls else None,
            )
            for instance in sorted({r.split("/", 1)[0] for r in files}):
                proc = start_envoy(
                    f"{variant.name} {instance} envoy",
                    directory / "config" / instance / "envoy.yaml",
                    directory / f"{instance}.log",
                )
                target.envoys.append(proc)
                if instance == CALLEE_INSTANCE:
                    target.callee_envoy = proc
            targets.append(target)

        for target in targets:
            processes.wait_until(
                functools.partial(processes.http_answers, target.address, target.port, target.host_header, "ok"),
                [*target.envoys],
                f"{target.variant.name}: a request through the whole path",
                timeout=ready_timeout,
            )
        log(f"  {len(targets)} configurations up ({sum(len(t.envoys) for t in targets)} Envoys)")
        yield targets, collector


def schedule(names: list[str], round_index: int, references: dict[str, str] | None = None) -> list[str]:
    """One round of measurements: every configuration other than a floor, in an order rotated
    from round to round, each one between two measurements of its reference floor (floor, a,
    floor, b, ..., floor). A shared machine drifts over minutes; comparing each configuration
    with its floor measured just before and just after it cancels that drift out of the ratios.

    With several references (the plaintext floor, the mTLS floor) a round is one such block per
    reference, the blocks' order rotated too; a reference can be a member of another's block
    (the mTLS floor is measured between plaintext floors)."""
    refs = REFERENCES if references is None else references

    def reference_of(name: str) -> str:
        return refs.get(name, FLOOR.name)

    blocks = []
    for reference in dict.fromkeys(reference_of(name) for name in names):
        if reference not in names:
            raise ValueError(f"{reference} is the reference of a configuration but is not measured")
        members = [name for name in names if name != reference and reference_of(name) == reference]
        if not members:
            continue
        shift = round_index % len(members)
        block: list[str] = []
        for name in members[shift:] + members[:shift]:
            block += [reference, name]
        blocks.append([*block, reference])
    if not blocks:
        return list(dict.fromkeys(reference_of(name) for name in names))[:1]
    shift = round_index % len(blocks)
    return [name for block in blocks[shift:] + blocks[:shift] for name in block]


BRACKET_KEYS = ("p50_ms", "p99_ms", "rps")


def attach_brackets(
    sequence: list[str],
    samples: list[dict[str, Any]],
    references: dict[str, str] | None = None,
    keys: tuple[str, ...] = BRACKET_KEYS,
) -> None:
    """Give each sample measured between two measurements of its reference floor the mean of
    those two, under the reference's name (`sample["floor"]`, `sample["mtls_floor"]`)."""
    refs = REFERENCES if references is None else references
    for i, name in enumerate(sequence):
        reference = refs.get(name, FLOOR.name)
        if name == reference or not 0 < i < len(sequence) - 1:
            continue
        if sequence[i - 1] != reference or sequence[i + 1] != reference:
            continue
        before, after = samples[i - 1], samples[i + 1]
        samples[i][reference] = {key: (before[key] + after[key]) / 2 for key in keys if key in before and key in after}


def run(config: DataplaneConfig, workdir: Path, log: Log = print) -> dict[str, Any]:
    tools = ensure_tools(log)
    envoy = find_envoy()
    script = workdir / "report.lua"
    workdir.mkdir(parents=True, exist_ok=True)
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    samples: dict[str, list[dict[str, Any]]] = {v.name: [] for v in VARIANTS}
    with running(workdir, VARIANTS, tools, envoy, concurrency=config.envoy_concurrency, log=log) as (
        targets,
        collector,
    ):
        by_name = {t.variant.name: t for t in targets}
        for round_index in range(config.rounds):
            sequence = schedule(list(by_name), round_index)
            round_samples = []
            for name in sequence:
                sample = measure(tools["wrk"], script, by_name[name], config, collector)
                sample["round"] = round_index
                round_samples.append(sample)
                log(
                    f"  {name:15} p50 {sample['p50_ms']:.3f} ms  p99 {sample['p99_ms']:.3f} ms  "
                    f"{sample['rps']:.0f} rps  (round {round_index + 1})"
                )
            attach_brackets(sequence, round_samples)
            for name, sample in zip(sequence, round_samples, strict=True):
                samples[name].append(sample)
        handshakes = measure_handshakes(by_name, config, log)
    result = summarize(samples)
    result["mtls"]["handshakes"] = handshakes
    result["conditions"] = {
        "app": "nginx (Debian), 1 worker, `return 200`, no access log, keep-alive",
        "load_generator": f"wrk, {config.wrk_threads} thread, {config.connections} connections, keep-alive",
        "duration_s": config.duration_s,
        "warmup_s": config.warmup_s,
        "rounds": config.rounds,
        "prewarm": "before each measurement of an Envoy pair, 16 concurrent keep-alive clients send 2 requests "
        "each, so that the caller's upstream connections closed by the previous measurement's end are open again",
        "schedule": "each configuration measured between two measurements of its floor (the mTLS pairs: the "
        "mTLS floor; the mTLS floor and the others: the plaintext floor); ratios to a floor are the median over "
        "rounds of the ratio to the mean of those two",
        "envoy_concurrency": config.envoy_concurrency,
        "envoy": envoy,
        "tracing_collector": "python -m meshgen.apps.collector (aiohttp), on the same machine",
    }
    result["versions"] = tool_versions(envoy, tools["wrk"], tools["nginx"])
    return result


# New connections against the callee Envoy's listener: meshgen's mTLS callee and the plaintext
# floor's, each between two measurements of the mTLS floor's callee.
HANDSHAKE_REFERENCES = dict.fromkeys((MTLS_FLOOR.name, MESHGEN_MTLS.name, FLOOR.name), MTLS_FLOOR.name)


def measure_handshakes(by_name: dict[str, Target], config: DataplaneConfig, log: Log) -> dict[str, Any]:
    from bench import handshakes

    names = [name for name in HANDSHAKE_REFERENCES if name in by_name]
    endpoints = {}
    for name in names:
        target = by_name[name]
        assert target.callee is not None
        tls = target.client_tls
        context = handshakes.client_context(str(tls.cert), str(tls.key), str(tls.ca)) if tls else None
        endpoints[name] = handshakes.Endpoint(name, *target.callee, context)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_index in range(config.handshake_rounds if MTLS_FLOOR.name in names else 0):
        sequence = schedule(names, round_index, HANDSHAKE_REFERENCES)
        measured = []
        for name in sequence:
            sample = handshakes.measure(
                endpoints[name], by_name[name].callee_envoy, config.handshake_s, config.handshake_workers
            )
            measured.append(sample)
            log(
                f"  {name:15} {sample['connections_per_s']:.0f} new connections/s, "
                f"callee Envoy {sample.get('envoy_cpu_us_per_connection', 0):.0f} µs CPU each, "
                f"{sample['errors']} errors (round {round_index + 1})"
            )
        attach_brackets(sequence, measured, HANDSHAKE_REFERENCES, handshakes.KEYS)
        for name, sample in zip(sequence, measured, strict=True):
            samples[name].append(sample)
    labels = {
        MTLS_FLOOR.name: "mTLS floor's callee Envoy (static TLS context)",
        MESHGEN_MTLS.name: "meshgen's callee sidecar, inbound listener (mTLS strict)",
        FLOOR.name: "plaintext floor's callee Envoy (no TLS)",
    }
    conditions = {
        "client": f"Python ssl (OpenSSL), {config.handshake_workers} threads, a fresh connection per request "
        "(TLS 1.3 with the caller's certificate, GET / with Connection: close, answer read to the end)",
        "seconds": config.handshake_s,
        "rounds": config.handshake_rounds,
    }
    return handshakes.summarize(samples, labels, MTLS_FLOOR.name, conditions)


def _medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["p50_ms", "p90_ms", "p99_ms", "mean_ms", "rps", "envoy_cpu_us_per_request", "collector_cpu_seconds"]
    summary: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in rounds if key in r]
        if values:
            summary[key] = rounded(median(values), 4 if key.endswith("_ms") else 1)
    summary["errors"] = sum(r["errors"] for r in rounds)
    summary["requests"] = sum(r["requests"] for r in rounds)
    summary["rounds"] = [_rounded_sample(r) for r in rounds]
    return summary


def _rounded_sample(sample: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _rounded_sample(v) if isinstance(v, dict) else rounded(v, 4) if isinstance(v, float) else v
        for k, v in sample.items()
    }


RATIO_KEYS = (("p50_ms", "p50"), ("p99_ms", "p99"), ("rps", "rps"))


def _ratio_summary(values: dict[str, list[float]]) -> dict[str, Any]:
    """short key -> per-round ratios, into: the median, its 95% bootstrap interval, every round's."""
    result: dict[str, Any] = {}
    for short, ratios in values.items():
        result[short] = rounded(median(ratios), 3) if ratios else None
        interval = median_interval(ratios)
        result[f"{short}_ci95"] = [rounded(v, 3) for v in interval] if interval else None
        result[f"{short}_rounds"] = [rounded(v, 3) for v in ratios]
    return result


def vs_floor(rounds: list[dict[str, Any]], reference: str = FLOOR.name) -> dict[str, Any] | None:
    """Ratios to the reference floor measured around each round's sample: the median over
    rounds, its 95% bootstrap interval, and every round's ratio. None when no sample has a
    bracket."""
    bracketed = [r for r in rounds if reference in r]
    if not bracketed:
        return None
    return _ratio_summary(
        {short: [r[key] / r[reference][key] for r in bracketed if r[reference][key]] for key, short in RATIO_KEYS}
    )


def chained_vs_floor(
    rounds: list[dict[str, Any]], reference_rounds: list[dict[str, Any]], reference: str
) -> dict[str, Any] | None:
    """A configuration measured against another floor (`reference`, itself measured against the
    plaintext floor), against the plaintext floor: per round, its ratio to the reference times
    the reference's ratio to the floor in the same round. None without both in some round."""
    values: dict[str, list[float]] = {short: [] for _, short in RATIO_KEYS}
    for round_index in sorted({r["round"] for r in rounds if "round" in r}):
        own = [r for r in rounds if r.get("round") == round_index and reference in r]
        link = [r for r in reference_rounds if r.get("round") == round_index and FLOOR.name in r]
        for key, short in RATIO_KEYS:
            first = [r[key] / r[reference][key] for r in own if r[reference][key]]
            second = [r[key] / r[FLOOR.name][key] for r in link if r[FLOOR.name][key]]
            if first and second:
                values[short].append(median(first) * median(second))
    if not any(values.values()):
        return None
    return _ratio_summary(values)


def _brief(ratios: dict[str, Any] | None) -> dict[str, Any] | None:
    """The medians and intervals of a ratio summary, without every round's."""
    if ratios is None:
        return None
    return {k: v for k, v in ratios.items() if not k.endswith("_rounds")}


def summarize(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The `overhead` object: medians per configuration, ratios, and each feature's cost.

    Ratios to the floor come from the bracketed samples (see `schedule`) when there are any,
    otherwise from the medians. A configuration measured against the mTLS floor also gets its
    ratios to it (`vs_mtls_floor`), and to the plaintext floor through the mTLS floor's."""
    configs = {name: _medians(rounds) for name, rounds in samples.items() if rounds}
    labels = {v.name: v.label for v in VARIANTS}
    for name, summary in configs.items():
        summary["label"] = labels.get(name, name)
        bracketed = vs_floor(samples[name])
        if bracketed is not None:
            summary["vs_floor"] = bracketed
        reference = REFERENCES.get(name, FLOOR.name)
        if reference not in (FLOOR.name, name):
            own = vs_floor(samples[name], reference)
            if own is not None:
                summary[f"vs_{reference}"] = own
            chained = chained_vs_floor(samples[name], samples.get(reference, []), reference)
            if chained is not None:
                summary["vs_floor"] = chained

    def get(name: str, key: str) -> float | None:
        value = configs.get(name, {}).get(key)
        return float(value) if value is not None else None

    def floor_ratio(name: str, key: str) -> float | None:
        if name == FLOOR.name:
            return 1.0 if name in configs else None
        bracketed = configs.get(name, {}).get("vs_floor")
        if bracketed is not None:
            value = bracketed.get(key.removesuffix("_ms"))
            return float(value) if value is not None else None
        return ratio(get(name, key), get(FLOOR.name, key))

    def r3(value: float | None) -> float | None:
        return rounded(value, 3)

    overhead: dict[str, Any] = {
        "p50_vs_floor": r3(floor_ratio("meshgen", "p50_ms")),
        "p99_vs_floor": r3(floor_ratio("meshgen", "p99_ms")),
        "rps_vs_floor": r3(floor_ratio("meshgen", "rps")),
        "p50_vs_direct": r3(ratio(get("meshgen", "p50_ms"), get("direct", "p50_ms"))),
        "p99_vs_direct": r3(ratio(get("meshgen", "p99_ms"), get("direct", "p99_ms"))),
        "rps_vs_direct": r3(ratio(get("meshgen", "rps"), get("direct", "rps"))),
        "floor_p50_vs_direct": r3(ratio(get("floor", "p50_ms"), get("direct", "p50_ms"))),
        "floor_p99_vs_direct": r3(ratio(get("floor", "p99_ms"), get("direct", "p99_ms"))),
        "floor_rps_vs_direct": r3(ratio(get("floor", "rps"), get("direct", "rps"))),
        # The same floor measured against itself: how far a ratio strays by chance in this run.
        "noise_p50_vs_floor": r3(floor_ratio(FLOOR_AGAIN.name, "p50_ms")),
        "noise_p99_vs_floor": r3(floor_ratio(FLOOR_AGAIN.name, "p99_ms")),
        "noise_rps_vs_floor": r3(floor_ratio(FLOOR_AGAIN.name, "rps")),
        "configs": configs,
    }
    features: dict[str, Any] = {}
    named = [(v.name, v) for v in (*FEATURES, ALL_ON)] + [("mtls", MESHGEN_MTLS), (PRODUCTION.name, PRODUCTION)]
    for key, variant in named:
        if variant.name not in configs:
            continue
        p50, base_p50 = get(variant.name, "p50_ms"), get("meshgen", "p50_ms")
        p99, base_p99 = get(variant.name, "p99_ms"), get("meshgen", "p99_ms")
        features[key] = {
            "label": variant.label,
            "p50_vs_meshgen": r3(ratio(floor_ratio(variant.name, "p50_ms"), floor_ratio("meshgen", "p50_ms"))),
            "p99_vs_meshgen": r3(ratio(floor_ratio(variant.name, "p99_ms"), floor_ratio("meshgen", "p99_ms"))),
            "rps_vs_meshgen": r3(ratio(floor_ratio(variant.name, "rps"), floor_ratio("meshgen", "rps"))),
            "p50_delta_ms": rounded(p50 - base_p50, 4) if p50 is not None and base_p50 is not None else None,
            "p99_delta_ms": rounded(p99 - base_p99, 4) if p99 is not None and base_p99 is not None else None,
        }
    if "mtls" not in features:
        features["mtls"] = "not measured in this run"
    overhead["features"] = features
    overhead["mtls"] = mtls_summary(configs)
    return overhead


def mtls_summary(configs: dict[str, Any]) -> dict[str, Any]:
    """What mutual TLS costs: meshgen's mTLS pair against the mTLS floor and the plaintext floor,
    the mTLS floor against the plaintext floor (TLS itself), the production defaults against both.
    Each entry: p50, p99, rps ratios with their 95% intervals; None when not measured."""

    def of(name: str, key: str) -> dict[str, Any] | None:
        return _brief(configs.get(name, {}).get(key))

    return {
        "meshgen_vs_mtls_floor": of(MESHGEN_MTLS.name, f"vs_{MTLS_FLOOR.name}"),
        "mtls_floor_vs_floor": of(MTLS_FLOOR.name, "vs_floor"),
        "meshgen_vs_floor": of(MESHGEN_MTLS.name, "vs_floor"),
        "production_vs_mtls_floor": of(PRODUCTION.name, f"vs_{MTLS_FLOOR.name}"),
        "production_vs_floor": of(PRODUCTION.name, "vs_floor"),
    }


def empty() -> dict[str, Any]:
    """The `overhead` object of a run that did not measure the data plane."""
    keys = (
        "p50_vs_floor",
        "p99_vs_floor",
        "rps_vs_floor",
        "p50_vs_direct",
        "p99_vs_direct",
        "rps_vs_direct",
        "noise_p50_vs_floor",
        "noise_p99_vs_floor",
        "noise_rps_vs_floor",
    )
    return {**dict.fromkeys(keys), "configs": {}, "features": {"mtls": "not measured in this run"}, "mtls": {}}
