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

import dataclasses
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


# Each wrk thread (one connection each) stops after its budget of answers: it stops with no
# request in flight, so no upstream connection is reset and the next run starts on the same
# pooled connections (wrk stopped by the clock leaves requests in flight; the caller's Envoy
# resets them upstream and closes those HTTP/1.1 connections, and the next run would pay new
# connections, for an mTLS pair TLS handshakes, in its count).
BUDGET_SCRIPT = """
local answered = 0
local budget = 0
init = function(args) budget = tonumber(args[1]) or math.huge end
response = function(status, headers, body)
  answered = answered + 1
  if answered >= budget then wrk.thread:stop() end
end
"""
# A budget fills this share of a measurement's time at the rate seen just before.
BUDGET_SHARE = 0.5
ATTEMPTS = 4


def budget_for(rate: float, seconds: int, connections: int) -> int:
    """Answers per connection that take about BUDGET_SHARE of `seconds` at `rate` requests/s."""
    return max(2, int(rate * seconds * BUDGET_SHARE / connections))


def run_budget(
    wrk: str, script: Path, target: dataplane.Target, config: InstructionsConfig, budget: int
) -> tuple[int, bool, float]:
    """One wrk run of `budget` answers per connection, one thread per connection: the requests
    served, whether every thread ended on its budget (clean) rather than on the clock, and the
    rate the latency implies (connections / mean latency; wrk itself always runs its full time)."""
    load = dataclasses.replace(config.load(config.seconds), wrk_threads=config.connections)
    raw = dataplane.run_wrk(wrk, script, target, load, config.seconds, script_args=(str(budget),))
    requests = int(raw["requests"])
    rate = config.connections * 1e6 / raw["mean_us"] if raw.get("mean_us") else 1.0
    return requests, requests >= budget * config.connections, rate


def measure(
    callgrind: Callgrind, wrk: str, script: Path, target: dataplane.Target, config: InstructionsConfig, *, rate: float
) -> dict[str, Any]:
    """Instructions of both Envoys over one run of a fixed number of requests, per request.

    The run starts and ends with the caller's upstream connections open and idle (see
    BUDGET_SCRIPT), so it counts requests only, no connection set-up; a run that ran out of time
    is not counted: the connections are settled again and a smaller budget is tried."""
    for _ in range(ATTEMPTS):
        budget = budget_for(rate, config.seconds, config.connections)
        for proc in target.envoys:
            callgrind.command("--zero", proc)
        requests, clean, _ = run_budget(wrk, script, target, config, budget)
        instructions = sum(callgrind.instructions_since_zero(proc) for proc in target.envoys)
        if clean:
            return {
                "requests": requests,
                "errors": 0,
                "instructions": instructions,
                "per_request": instructions / requests,
            }
        rate = max(1.0, requests / config.seconds / 2)
        settle(wrk, script, target, config)
    raise RuntimeError(f"{target.variant.name}: no run under valgrind ended on its request budget")


WARM_UP_SECONDS = 120.0


def warm_up(wrk: str, script: Path, target: dataplane.Target, config: InstructionsConfig) -> float:
    """Warm up the instrumented code paths (valgrind translates code on first use) until requests
    flow; an mTLS pair first does its TLS handshakes, each slow under valgrind. Then settle the
    connections (see `settle`) and return the rate of requests on settled connections."""
    deadline = time.monotonic() + WARM_UP_SECONDS
    previous: int | None = None
    while time.monotonic() < deadline:
        requests = int(dataplane.run_wrk(wrk, script, target, config.load(1), 1)["requests"])
        if steady(previous, requests):
            break
        previous = requests
    settle(wrk, script, target, config)
    requests, clean, rate = run_budget(wrk, script, target, config, 5)
    if not clean:
        settle(wrk, script, target, config)
        return max(1.0, requests / config.seconds)
    return rate


def settle(wrk: str, script: Path, target: dataplane.Target, config: InstructionsConfig) -> None:
    """Runs of a few answers per connection until one ends on its budget: every upstream
    connection is then open and idle, none reset."""
    deadline = time.monotonic() + WARM_UP_SECONDS
    while time.monotonic() < deadline:
        if run_budget(wrk, script, target, config, 2)[1]:
            return
    raise RuntimeError(f"{target.variant.name}: its connections did not settle under valgrind")


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
    script.write_text(dataplane.WRK_SCRIPT + BUDGET_SCRIPT, encoding="utf-8")
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
        rates = {}
        for target in targets:
            for proc in target.envoys:
                callgrind.command("--instr=on", proc)
            rates[target.variant.name] = warm_up(tools["wrk"], script, target, config)
        for repeat in range(config.repeats):
            for target in targets:
                sample = measure(callgrind, tools["wrk"], script, target, config, rate=rates[target.variant.name])
                samples[target.variant.name].append(sample)
                log(
                    f"  {target.variant.name:15} {sample['per_request']:,.0f} instructions/request "
                    f"({sample['requests']} requests, repeat {repeat + 1})"
                )
    result = summarize(samples, {v.name: v.label for v in config.variants})
    result["conditions"] = {
        "tool": "valgrind --tool=callgrind (instructions executed by both Envoys of a pair)",
        "load": f"wrk, {config.connections} connections (a thread each), a fixed number of requests per "
        f"measurement (about half of {config.seconds} s at the rate of the warm-up), ended on that number so that "
        "no upstream connection is reset between measurements",
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
