"""A local mesh as users run it: `meshgen up` of 50 instances, then a weight change live.

The catalog: 25 services on a ring (each calls the next two), two versions of one instance
each, so 50 instances, each an app (the built-in demo app) and a real Envoy sidecar, with mutual
TLS strict (the default) and tracing at 1% to the local collector; every host on its own
127.0.91.x address (mesh address 127.0.91.10 and up, local address with the high bit of the last
octet set, as `meshgen up` derives it). Timed from the outside, as a user waits for them, each
in a fresh process: `meshgen up` on a stopped mesh (start time: certificates, configs, every
process started and ready), then, under steady load through a caller's sidecar, `meshgen up` on
the catalog with one route's weights moved from 100% v1 to 100% v2: the time `up` takes, the
time until every answer comes from v2, and the requests that failed. `meshgen down` at the end,
also on errors.
"""

from __future__ import annotations

import ipaddress
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import processes
from bench.convergence import Load, analyze_shift
from bench.generation import meshgen_argv, timed_command
from bench.processes import require_loopback
from bench.stats import rounded
from meshgen.deploy.local.limits import inotify_in_use

Log = Callable[[str], None]

FIRST_ADDRESS = ipaddress.ip_address("127.0.91.10")
COLLECTOR_ADDRESS = "127.0.91.8"
APP_PORT = 8080
OUTBOUND_PORT = 15001
FANOUT = 2
COMMAND_TIMEOUT_SECONDS = 600.0
# Envoy watches each file-based xDS source (cds, lds, two route files, two SDS files) and the two
# certificate directories with an inotify instance of its own: up to 8 per sidecar, observed.
# Linux allows 128 instances per user by default (fs.inotify.max_user_instances), for every
# process of that user together, so a default host runs about 15 sidecars, not 50.
INOTIFY_PER_SIDECAR = 8
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")


@dataclass(frozen=True)
class LocalMeshConfig:
    services: int  # two instances each
    settle_s: float  # steady load before the change, and kept after `up` returns
    workers: int = 4

    @classmethod
    def for_run(cls, quick: bool) -> LocalMeshConfig:
        return cls(services=3, settle_s=1.0) if quick else cls(services=25, settle_s=2.0)

    @property
    def instances(self) -> int:
        return 2 * self.services


def service_name(index: int) -> str:
    return f"m{index:02d}"


def host_address(index: int) -> str:
    address = FIRST_ADDRESS + index
    if address.packed[3] >= 128:
        raise ValueError("at most 118 hosts: the local addresses take the upper half of 127.0.91.x")
    return require_loopback(str(address))


def local_address(index: int) -> str:
    return str(ipaddress.ip_address(host_address(index)) + 128)


def mesh_catalog(services: int, weights: dict[str, int]) -> dict[str, Any]:
    """The ring; the first service's route sends `weights`."""
    hosts: dict[str, Any] = {"tracing-1": {"address": COLLECTOR_ADDRESS}}
    catalog_services: dict[str, Any] = {}
    fanout = min(FANOUT, services - 1)
    for index in range(services):
        name = service_name(index)
        versions = {}
        for number, version in enumerate(("v1", "v2")):
            host = f"{name}-{version}"
            position = 2 * index + number
            hosts[host] = {"address": host_address(position), "local_address": local_address(position)}
            versions[version] = {"instances": [host]}
        catalog_services[name] = {
            "port": APP_PORT,
            "versions": versions,
            "dependencies": [service_name((index + step) % services) for step in range(1, fanout + 1)],
        }
    catalog_services[service_name(0)]["routes"] = [{"name": "shift", "to": weights}]
    return {
        "mesh": {
            "name": "bench-local",
            "tracing": {"provider": "zipkin", "collector": "tracing-1:9411", "sample_percent": 1},
            "access_log": {"format": "json"},
            "sidecar": {"outbound_port": OUTBOUND_PORT},
        },
        "hosts": hosts,
        "services": catalog_services,
    }


def caller_of_first(services: int) -> str:
    """The local address of an instance that calls the first service (the last service's v1)."""
    return local_address(2 * (services - 1))


def version_of(body: str) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    version = answer.get("version") if isinstance(answer, dict) else None
    return version if isinstance(version, str) else None


def inotify_shortage(instances: int, limit: int | None, in_use: int) -> str | None:
    """Why `instances` sidecars cannot start now, or None when they can."""
    if limit is None:
        return None
    needed = instances * INOTIFY_PER_SIDECAR
    if limit - in_use >= needed:
        return None
    return (
        f"{instances} sidecars need about {needed} inotify instances (Envoy watches each config and certificate "
        f"path with one), and this user may hold {limit} (fs.inotify.max_user_instances), {in_use} of them in use "
        f"now: raise the limit (sysctl -w fs.inotify.max_user_instances={max(1024, 2 * (needed + in_use))}) "
        "to measure it"
    )


def not_run(reason: str) -> dict[str, Any]:
    return {"status": "not run", "reason": reason}


def run(config: LocalMeshConfig, workdir: Path, log: Log = print) -> dict[str, Any]:
    try:
        limit: int | None = int(INOTIFY_LIMIT.read_text().strip())
    except (OSError, ValueError):
        limit = None
    shortage = inotify_shortage(config.instances, limit, inotify_in_use(os.getuid()) if limit else 0)
    if shortage is not None:
        log(f"  not run: {shortage}")
        return not_run(shortage)
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "state"
    catalog, changed = workdir / "catalog.yaml", workdir / "changed.yaml"
    catalog.write_text(yaml.safe_dump(mesh_catalog(config.services, {"v1": 100}), sort_keys=False), encoding="utf-8")
    changed.write_text(yaml.safe_dump(mesh_catalog(config.services, {"v2": 100}), sort_keys=False), encoding="utf-8")
    meshgen = meshgen_argv()
    caller = caller_of_first(config.services)
    first = service_name(0)
    result: dict[str, Any] = {"status": "ran", "instances": config.instances}
    try:
        started = timed_command(
            [*meshgen, "up", str(catalog), "--state-dir", str(state)], COMMAND_TIMEOUT_SECONDS, workdir / "up.log"
        )
        if not started.ok:
            tail = (workdir / "up.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"meshgen up failed ({started.returncode}):\n{tail}")
        log(f"  meshgen up, {config.instances} instances: {started.seconds:.1f} s, peak {started.peak_rss_mib:.0f} MiB")
        result["up_seconds"] = rounded(started.seconds, 3)
        result["up_peak_rss_mib"] = rounded(started.peak_rss_mib, 1)
        processes.wait_until(
            lambda: processes.http_answers(caller, OUTBOUND_PORT, first),
            [],
            f"{first} through the sidecar at {caller}",
            timeout=30,
        )
        begin = time.monotonic()
        budget = 2 * config.settle_s + COMMAND_TIMEOUT_SECONDS
        with Load(caller, OUTBOUND_PORT, config.workers, begin + budget, host=first, answer=version_of) as load:
            time.sleep(config.settle_s)
            shifted_at = time.monotonic()
            applied = timed_command(
                [*meshgen, "up", str(changed), "--state-dir", str(state)],
                COMMAND_TIMEOUT_SECONDS,
                workdir / "up-change.log",
            )
            time.sleep(config.settle_s)
            ended = time.monotonic()
        if not applied.ok:
            tail = (workdir / "up-change.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"meshgen up (weight change) failed ({applied.returncode}):\n{tail}")
        shift = analyze_shift(load.all_samples(), shifted_at, ended, "v2")
        shown = f"{shift.seconds:.2f} s" if shift.seconds is not None else "not converged"
        log(
            f"  weight change: meshgen up {applied.seconds:.2f} s, live (every answer from v2) after {shown}, "
            f"{shift.failed} failed of {shift.requests} requests"
        )
        result["weight_change"] = summarize_change(
            applied.seconds, shift.seconds, shift.failed, shift.requests, len(load.all_samples()) / (ended - begin)
        )
    finally:
        stopped = timed_command([*meshgen, "down", "--state-dir", str(state)], 120, workdir / "down.log")
        result["down_seconds"] = rounded(stopped.seconds, 3) if stopped.ok else None
    result["conditions"] = {
        "catalog": f"{config.services} services on a ring (each calls the next {FANOUT}), v1 and v2 of one "
        "instance each, demo apps, mTLS strict, tracing 1%, JSON access log",
        "addresses": f"127.0.91.{FIRST_ADDRESS.packed[3]} and up (local addresses: high bit of the last octet set)",
        "load": f"{config.workers} Python threads, keep-alive, through the sidecar of "
        f"{service_name(config.services - 1)} v1 to {first}",
        "change": f"{first}: 100% v1 -> 100% v2 (meshgen up on the edited catalog)",
    }
    return result


def summarize_change(
    up_seconds: float, live_seconds: float | None, failed: int, requests: int, rps: float
) -> dict[str, Any]:
    return {
        "up_seconds": rounded(up_seconds, 3),
        "live_seconds": rounded(live_seconds, 3),
        "failed_requests": failed,
        "requests": requests,
        "load_rps": round(rps, 1),
        "met": live_seconds is not None and failed == 0,
    }


def empty() -> dict[str, Any]:
    return {}
