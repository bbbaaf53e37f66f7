"""CPU cost per request in instructions, counted by callgrind: the noise-free companion of the
wall-clock data-plane numbers.

On a shared 2-core virtual machine, latency and throughput drift by tens of percent from minute
to minute, which is more than the difference between two Envoy configurations. Instruction
counts do not drift: valgrind counts the instructions the Envoys execute, the same for the same
binary, config and requests whatever else the machine does. Each Envoy pair (the floor and
meshgen's, with features off and on) runs under `valgrind --tool=callgrind`, instrumentation
switched on once every pair is up; for each measurement the counters of both Envoys are zeroed,
wrk sends for a fixed time, the counters are dumped, and the sum over both Envoys is divided by
the requests served. Background work (timers, stats) counts too and is small next to the
requests. Everything else is as in `dataplane.py` (same app, same loopback addresses, same
catalogs).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dataplane
from bench.processes import Proc, run_bounded
from bench.stats import median, ratio, rounded

Log = Callable[[str], None]

CONTROL_TIMEOUT_SECONDS = 60.0
FULL_VARIANTS = (
    dataplane.FLOOR,
    dataplane.MESHGEN,
    *dataplane.FEATURES,
    dataplane.MTLS_FLOOR,
    dataplane.MESHGEN_MTLS,
    dataplane.PRODUCTION,
)
QUICK_VARIANTS = (dataplane.FLOOR, dataplane.MESHGEN, dataplane.MTLS_FLOOR, dataplane.MESHGEN_MTLS)


@dataclass(frozen=True)
class InstructionsConfig:
    seconds: int
    repeats: int
    variants: tuple[dataplane.Variant, ...]
    connections: int = 4

    @classmethod
    def for_run(cls, quick: bool) -> InstructionsConfig:
        if quick:
            return cls(seconds=2, repeats=1, variants=QUICK_VARIANTS)
        return cls(seconds=4, repeats=2, variants=FULL_VARIANTS)

    def load(self, seconds: int) -> dataplane.DataplaneConfig:
        """wrk's settings for `seconds` of load on one pair."""
        return dataplane.DataplaneConfig(duration_s=seconds, warmup_s=0, rounds=1, connections=self.connections)


def ensure_valgrind(log: Log) -> tuple[str, str]:
    """valgrind and callgrind_control from Debian, installed when missing and we may."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise RuntimeError("missing valgrind: install with apt-get install valgrind")
        log("  installing valgrind (apt-get)")
        done = run_bounded(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "valgrind"],
            600,
            {"DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install valgrind failed:\n{done.stderr[-2000:]}")
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    assert valgrind and control
    return valgrind, control


def dump_totals(text: str) -> int:
    """The instruction count of one callgrind dump (its `totals:` line, else `summary:`)."""
    for prefix in ("totals:", "summary:"):
        for line in text.splitlines():
            if line.startswith(prefix):
                return int(line.split()[1])
    raise ValueError("no totals: or summary: line in the callgrind dump")


def latest_dump(directory: Path, pid: int) -> Path:
    dumps = [p for p in directory.glob(f"callgrind.{pid}.*") if p.name.rsplit(".", 1)[1].isdigit()]
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for pid {pid} in {directory}")
    return max(dumps, key=lambda p: int(p.name.rsplit(".", 1)[1]))


class Callgrind:
    """callgrind_control for the Envoys of one run: instrumentation on, zero, dump and read."""

    def __init__(self, control: str, dumps: Path) -> None:
        self.control = control
        self.dumps = dumps

    def command(self, option: str, proc: Proc) -> None:
        done = run_bounded([self.control, option, str(proc.pid)], CONTROL_TIMEOUT_SECONDS)
        if done.returncode != 0:
            raise RuntimeError(f"callgrind_control {option} {proc.name}: {done.stdout}{done.stderr}")

    def instructions_since_zero(self, proc: Proc) -> int:
        self.command("--dump", proc)
        return dump_totals(latest_dump(self.dumps, proc.pid).read_text(encoding="utf-8", errors="replace"))


def measure(
    callgrind: Callgrind, wrk: str, script: Path, target: dataplane.Target, config: InstructionsConfig
) -> dict[str, Any]:
    """Instructions of both Envoys over one wrk run, per request served.

    wrk stops with requests in flight; the caller's Envoy resets them upstream and closes those
    HTTP/1.1 connections, so every run begins by opening the caller's upstream connections again:
    for an mTLS pair that is a TLS handshake per connection on each side, counted here and
    amortised over the run's requests (as in the wall-clock section). Under valgrind on a busy
    machine those handshakes can take the whole run: a run that served no request is measured
    again, twice as long, at most twice."""
    for factor in (1, 2, 4):
        seconds = config.seconds * factor
        for proc in target.envoys:
            callgrind.command("--zero", proc)
        raw = dataplane.run_wrk(wrk, script, target, config.load(seconds), seconds)
        instructions = sum(callgrind.instructions_since_zero(proc) for proc in target.envoys)
        requests = int(raw["requests"])
        if requests:
            errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
            return {
                "requests": requests,
                "errors": errors,
                "instructions": instructions,
                "per_request": instructions / requests,
                "seconds": seconds,
            }
    raise RuntimeError(f"{target.variant.name}: no request completed under valgrind in {seconds} s")


WARM_UP_SECONDS = 120.0


def warm_up(wrk: str, script: Path, target: dataplane.Target, config: InstructionsConfig) -> None:
    """Warm up the instrumented code paths (valgrind translates code on first use) until requests
    flow on every connection. An mTLS pair first does its TLS handshakes, each of them slow under
    valgrind (seconds, not milliseconds): the measurement starts once the pooled upstream
    connections are up, so it counts requests, as the wall-clock section does, not handshakes."""
    deadline = time.monotonic() + WARM_UP_SECONDS
    previous: int | None = None
    while time.monotonic() < deadline:
        requests = int(dataplane.run_wrk(wrk, script, target, config.load(1), 1)["requests"])
        if steady(previous, requests):
            return
        previous = requests


def steady(previous: int | None, requests: int) -> bool:
    """Requests flowed in two seconds of warm-up in a row: the connections are up (an mTLS pair's
    handshakes under valgrind can take the whole first seconds)."""
    return previous is not None and previous > 0 and requests > 0


def run(config: InstructionsConfig, workdir: Path, log: Log = print) -> dict[str, Any]:
    tools = dataplane.ensure_tools(log)
    valgrind, control = ensure_valgrind(log)
    envoy = dataplane.find_envoy()
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "report.lua"
    script.write_text(dataplane.WRK_SCRIPT, encoding="utf-8")
    dumps = workdir / "callgrind"
    dumps.mkdir()
    # Start uninstrumented (valgrind's start-up of Envoy is slow enough as it is); counting is
    # switched on per Envoy once every pair answers.
    wrap = (valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={dumps}/callgrind.%p")
    callgrind = Callgrind(control, dumps)
    samples: dict[str, list[dict[str, Any]]] = {v.name: [] for v in config.variants}
    with dataplane.running(
        workdir, config.variants, tools, envoy, concurrency=1, log=log, wrap=wrap, ready_timeout=600
    ) as (targets, _collector):
        for target in targets:
            for proc in target.envoys:
                callgrind.command("--instr=on", proc)
            warm_up(tools["wrk"], script, target, config)
        for repeat in range(config.repeats):
            for target in targets:
                sample = measure(callgrind, tools["wrk"], script, target, config)
                samples[target.variant.name].append(sample)
                log(
                    f"  {target.variant.name:15} {sample['per_request']:,.0f} instructions/request "
                    f"({sample['requests']} requests, repeat {repeat + 1})"
                )
    result = summarize(samples, {v.name: v.label for v in config.variants})
    result["conditions"] = {
        "tool": "valgrind --tool=callgrind (instructions executed by both Envoys of a pair)",
        "load": f"wrk, 1 thread, {config.connections} connections, {config.seconds} s per measurement",
        "repeats": config.repeats,
        "envoy_concurrency": 1,
    }
    return result


def summarize(samples: dict[str, list[dict[str, Any]]], labels: dict[str, str]) -> dict[str, Any]:
    """Median instructions per request per configuration, and ratios to the floor, to meshgen's
    pair with optional features off, and (mTLS pairs) to the mTLS floor."""
    per_request = {name: median([s["per_request"] for s in runs]) for name, runs in samples.items() if runs}
    configs = {
        name: {
            "label": labels.get(name, name),
            "per_request": round(value),
            "repeats": [round(s["per_request"]) for s in samples[name]],
            "requests": sum(s["requests"] for s in samples[name]),
            "errors": sum(s["errors"] for s in samples[name]),
            "vs_floor": rounded(ratio(value, per_request.get(dataplane.FLOOR.name)), 3),
            "vs_meshgen": rounded(ratio(value, per_request.get(dataplane.MESHGEN.name)), 3),
        }
        for name, value in per_request.items()
    }
    for name, summary in configs.items():
        if dataplane.REFERENCES.get(name) == dataplane.MTLS_FLOOR.name:
            reference = per_request.get(dataplane.MTLS_FLOOR.name)
            summary["vs_mtls_floor"] = rounded(ratio(per_request[name], reference), 3)
    return {
        "meshgen_vs_floor": configs.get(dataplane.MESHGEN.name, {}).get("vs_floor"),
        "meshgen_mtls_vs_mtls_floor": configs.get(dataplane.MESHGEN_MTLS.name, {}).get("vs_mtls_floor"),
        "configs": configs,
    }


def empty() -> dict[str, Any]:
    """The `instructions` object of a run that did not count instructions."""
    return {"meshgen_vs_floor": None, "meshgen_mtls_vs_mtls_floor": None, "configs": {}}
