"""Data-plane overhead on loopback: direct, a minimal Envoy pair, and meshgen's sidecar pair.

One app (nginx answering `return 200`), one load generator (wrk, one thread, fixed
connections), the same Envoy binary with `--concurrency 1` everywhere. Every configuration runs
in every round, in a rotated order, so drift on a shared machine touches all alike; each
metric is the median over rounds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
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
VARIANTS = (DIRECT, FLOOR, FLOOR_AGAIN, MESHGEN, *FEATURES, ALL_ON)


@dataclass(frozen=True)
class DataplaneConfig:
    duration_s: int
    warmup_s: int
    rounds: int
    connections: int = 16
    wrk_threads: int = 1
    envoy_concurrency: int = 1

    @classmethod
    def for_run(cls, quick: bool) -> DataplaneConfig:
        return cls(duration_s=1, warmup_s=0, rounds=2) if quick else cls(duration_s=1, warmup_s=0, rounds=20)


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


def floor_envoy_config(listen: tuple[str, int], upstream: tuple[str, int]) -> dict[str, Any]:
    """The floor for any Envoy mesh hop: one listener, HCM with the router only, one static
    cluster. No admin, tracing, access log, retries, request ids or stats tags."""

    def address(host: str, port: int) -> dict[str, Any]:
        return {"socket_address": {"address": require_loopback(host), "port_value": port}}

    return {
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
        # Compared with plaintext floors; mutual TLS is measured by variants of its own.
        "security": {"mtls": "off"},
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


def render_pair(catalog: dict[str, Any], directory: Path, *, access_log: bool) -> dict[str, str]:
    """Render the catalog with meshgen into `directory` (the config root); returns the files."""
    from meshgen.model import load_mesh
    from meshgen.render.document import to_yaml
    from meshgen.render.envoy import Layout, render_envoy
    from meshgen.render.output import write_tree

    directory.mkdir(parents=True, exist_ok=True)
    source = directory.parent / f"{directory.name}.catalog.yaml"
    source.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    files = render_envoy(load_mesh(source), Layout(PurePosixPath(directory)))
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


def run_wrk(wrk: str, script: Path, target: Target, config: DataplaneConfig, seconds: int) -> dict[str, Any]:
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
    done = run_bounded(argv, seconds + 30)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(WRK_MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {target.variant.name} ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line[len(WRK_MARK) :])
    return result


def measure(wrk: str, script: Path, target: Target, config: DataplaneConfig, collector: Proc | None) -> dict[str, Any]:
    if config.warmup_s:
        run_wrk(wrk, script, target, config, config.warmup_s)
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
                target = Target(variant, caller, port, None)
                for name, listen, upstream in (
                    ("callee", (callee, port), (APP_ADDRESS, app_port)),
                    ("caller", (caller, port), (callee, port)),
                ):
                    path = directory / f"{name}.yaml"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(floor_envoy_config(listen, upstream), indent=1), encoding="utf-8")
                    target.envoys.append(start_envoy(f"{variant.name} {name} envoy", path, directory / f"{name}.log"))
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
            )
            target = Target(variant, caller, ports["outbound"], CALLEE_HOST)
            for instance in sorted({r.split("/", 1)[0] for r in files}):
                target.envoys.append(
                    start_envoy(
                        f"{variant.name} {instance} envoy",
                        directory / "config" / instance / "envoy.yaml",
                        directory / f"{instance}.log",
                    )
                )
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


def schedule(names: list[str], round_index: int) -> list[str]:
    """One round of measurements: every configuration other than the floor, in an order rotated
    from round to round, each one between two floor measurements (floor, a, floor, b, ..., floor).
    A shared machine drifts over minutes; comparing each configuration with the floor measured
    just before and just after it cancels that drift out of the ratios."""
    others = [name for name in names if name != FLOOR.name]
    shift = round_index % len(others) if others else 0
    sequence: list[str] = []
    for name in others[shift:] + others[:shift]:
        sequence += [FLOOR.name, name]
    return [*sequence, FLOOR.name]


BRACKET_KEYS = ("p50_ms", "p99_ms", "rps")


def attach_brackets(sequence: list[str], samples: list[dict[str, Any]]) -> None:
    """Give each non-floor sample of a round the mean of the floor samples around it."""
    for i, name in enumerate(sequence):
        if name == FLOOR.name:
            continue
        before, after = samples[i - 1], samples[i + 1]
        samples[i]["floor"] = {key: (before[key] + after[key]) / 2 for key in BRACKET_KEYS}


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
                round_samples.append(sample)
                log(
                    f"  {name:15} p50 {sample['p50_ms']:.3f} ms  p99 {sample['p99_ms']:.3f} ms  "
                    f"{sample['rps']:.0f} rps  (round {round_index + 1})"
                )
            attach_brackets(sequence, round_samples)
            for name, sample in zip(sequence, round_samples, strict=True):
                samples[name].append(sample)
    result = summarize(samples)
    result["conditions"] = {
        "app": "nginx (Debian), 1 worker, `return 200`, no access log, keep-alive",
        "load_generator": f"wrk, {config.wrk_threads} thread, {config.connections} connections, keep-alive",
        "duration_s": config.duration_s,
        "warmup_s": config.warmup_s,
        "rounds": config.rounds,
        "schedule": "each configuration measured between two floor measurements; ratios to the floor are "
        "the median over rounds of the ratio to the mean of those two",
        "envoy_concurrency": config.envoy_concurrency,
        "envoy": envoy,
        "tracing_collector": "python -m meshgen.apps.collector (aiohttp), on the same machine",
    }
    result["versions"] = tool_versions(envoy, tools["wrk"], tools["nginx"])
    return result


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


def vs_floor(rounds: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Ratios to the floor measured around each round's sample: the median over rounds, its 95%
    bootstrap interval, and every round's ratio. None when no sample has a bracket."""
    bracketed = [r for r in rounds if "floor" in r]
    if not bracketed:
        return None
    result: dict[str, Any] = {}
    for key, short in (("p50_ms", "p50"), ("p99_ms", "p99"), ("rps", "rps")):
        values = [r[key] / r["floor"][key] for r in bracketed if r["floor"][key]]
        result[short] = rounded(median(values), 3) if values else None
        interval = median_interval(values)
        result[f"{short}_ci95"] = [rounded(v, 3) for v in interval] if interval else None
        result[f"{short}_rounds"] = [rounded(v, 3) for v in values]
    return result


def summarize(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The `overhead` object: medians per configuration, ratios, and each feature's cost.

    Ratios to the floor come from the bracketed samples (see `schedule`) when there are any,
    otherwise from the medians."""
    configs = {name: _medians(rounds) for name, rounds in samples.items() if rounds}
    labels = {v.name: v.label for v in VARIANTS}
    for name, summary in configs.items():
        summary["label"] = labels.get(name, name)
        bracketed = vs_floor(samples[name])
        if bracketed is not None:
            summary["vs_floor"] = bracketed

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
    for variant in (*FEATURES, ALL_ON):
        if variant.name not in configs:
            continue
        p50, base_p50 = get(variant.name, "p50_ms"), get("meshgen", "p50_ms")
        p99, base_p99 = get(variant.name, "p99_ms"), get("meshgen", "p99_ms")
        features[variant.name] = {
            "label": variant.label,
            "p50_vs_meshgen": r3(ratio(floor_ratio(variant.name, "p50_ms"), floor_ratio("meshgen", "p50_ms"))),
            "p99_vs_meshgen": r3(ratio(floor_ratio(variant.name, "p99_ms"), floor_ratio("meshgen", "p99_ms"))),
            "rps_vs_meshgen": r3(ratio(floor_ratio(variant.name, "rps"), floor_ratio("meshgen", "rps"))),
            "p50_delta_ms": rounded(p50 - base_p50, 4) if p50 is not None and base_p50 is not None else None,
            "p99_delta_ms": rounded(p99 - base_p99, 4) if p99 is not None and base_p99 is not None else None,
        }
    features["mtls"] = "n/a: meshgen renders no mTLS yet"
    overhead["features"] = features
    return overhead


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
    return {**dict.fromkeys(keys), "configs": {}, "features": {"mtls": "n/a: meshgen renders no mTLS yet"}}
