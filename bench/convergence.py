"""Route convergence: how long a weight shift takes to be fully live under steady load.

A caller sidecar routes to callee v1 (nginx answering "v1") or v2 (answering "v2"), each behind
its own sidecar. Client threads send a steady stream through the caller's outbound listener
while the caller's route file is swapped between 100% v1 and 100% v2 with meshgen's own
`write_tree` (write, then rename). Per shift: the time from the swap until every response comes
from the new version, and the requests that failed around it.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from bench import processes
from bench.dataplane import ensure_tools, envoy_argv, find_envoy, start_nginx
from bench.processes import Processes, pick_common_port, require_loopback
from bench.stats import median, rounded

Log = Callable[[str], None]

CALLER = "127.0.91.1"
CALLEE_V1 = "127.0.91.2"
CALLEE_V2 = "127.0.91.3"
APP_PORT = 18080
MAX_REQUESTS_PER_WORKER = 2_000_000  # a bound on every client loop, besides its deadline
TARGET_SECONDS = 1.0


@dataclass(frozen=True)
class ConvergenceConfig:
    shifts: int
    settle_s: float  # load kept after each shift before the next one
    lead_s: float = 1.0  # steady load before the first shift
    workers: int = 4

    @classmethod
    def for_run(cls, quick: bool) -> ConvergenceConfig:
        return cls(shifts=2, settle_s=1.5) if quick else cls(shifts=10, settle_s=3.0)


@dataclass(frozen=True)
class Sample:
    sent: float  # time.monotonic() when the request was sent
    done: float
    version: str | None  # body of the answer ("v1", "v2"); None for a failed request


@dataclass(frozen=True)
class ShiftResult:
    to_version: str
    seconds: float | None  # None: still answered by the old version at the window's end
    failed: int
    requests: int
    old_after_shift: int


def analyze_shift(samples: list[Sample], shifted_at: float, window_end: float, new: str) -> ShiftResult:
    """The shift happened at `shifted_at` (the swap began); the next begins at `window_end`.

    Convergence time: from the swap to the send time of the first request after which no
    request of the window was answered by another version. The window holds the requests sent
    after the swap and answered before the next swap began: one answered later may have been
    routed by the next swap's config (a client thread can be held between taking its send time
    and sending), which says nothing about this shift. Failed: requests still in flight at the
    swap or sent before the window's end that got no 200 answer.
    """
    window = sorted((s for s in samples if shifted_at <= s.sent and s.done < window_end), key=lambda s: s.sent)
    failed = sum(1 for s in samples if s.version is None and s.done >= shifted_at and s.sent < window_end)
    answered = [s for s in window if s.version is not None]
    stale = [i for i, s in enumerate(answered) if s.version != new]
    seconds: float | None
    if not answered:
        seconds = None
    elif not stale:
        seconds = max(0.0, answered[0].sent - shifted_at)
    elif stale[-1] == len(answered) - 1:
        seconds = None
    else:
        seconds = answered[stale[-1] + 1].sent - shifted_at
    return ShiftResult(new, seconds, failed, len(window), len(stale))


def _catalog(weights: dict[str, int], ports: dict[str, int]) -> dict[str, Any]:
    return {
        "mesh": {
            "name": "bench-convergence",
            "access_log": {"format": "json", "path": "/dev/null"},
            # A weight shift rewrites route files only; certificates play no part in it.
            "security": {"mtls": "off"},
            "sidecar": {
                "inbound_port": ports["inbound"],
                "outbound_port": ports["outbound"],
                "admin_port": ports["admin"],
            },
        },
        # Each host's app and listeners on its own mesh address, where the bench's plan puts them.
        "hosts": {
            "caller-1": {"address": CALLER, "local_address": CALLER},
            "callee-1": {"address": CALLEE_V1, "local_address": CALLEE_V1},
            "callee-2": {"address": CALLEE_V2, "local_address": CALLEE_V2},
        },
        "services": {
            "caller": {
                "port": ports["caller_app"],
                "edge": True,
                "versions": {"v1": {"instances": ["caller-1"]}},
                "dependencies": ["callee"],
            },
            "callee": {
                "port": ports["app"],
                "versions": {"v1": {"instances": ["callee-1"]}, "v2": {"instances": ["callee-2"]}},
                "routes": [{"name": "shift", "to": weights}],
            },
        },
    }


def _render(catalog: dict[str, Any], directory: Path, name: str) -> dict[str, str]:
    from meshgen.model import load_mesh
    from meshgen.render.envoy import Layout, render_envoy

    source = directory.parent / f"{name}.catalog.yaml"
    source.write_text(yaml.safe_dump(catalog, sort_keys=False), encoding="utf-8")
    return render_envoy(load_mesh(source), Layout(PurePosixPath(directory)))


class Load:
    """Client threads on keep-alive connections through the caller's outbound listener."""

    def __init__(
        self,
        address: str,
        port: int,
        workers: int,
        deadline: float,
        *,
        host: str = "callee",
        answer: Callable[[str], str | None] = str,
    ) -> None:
        """`answer` turns a 200 answer's body into the version that answered."""
        self.address = require_loopback(address)
        self.port = port
        self.deadline = deadline
        self.host = host
        self.answer = answer
        self.samples: list[list[Sample]] = [[] for _ in range(workers)]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._worker, args=(i,), daemon=True) for i in range(workers)]

    def _worker(self, index: int) -> None:
        out = self.samples[index]
        conn: http.client.HTTPConnection | None = None
        for _ in range(MAX_REQUESTS_PER_WORKER):
            if self.stop.is_set() or time.monotonic() >= self.deadline:
                break
            if conn is None:
                conn = http.client.HTTPConnection(self.address, self.port, timeout=2)
            current = conn
            sent = time.monotonic()
            version: str | None = None
            try:
                current.request("GET", "/", headers={"Host": self.host})
                response = current.getresponse()
                body = response.read().decode("utf-8", errors="replace").strip()
                if response.status == 200:
                    version = self.answer(body)
                if response.will_close:
                    current.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                current.close()
                conn = None
            out.append(Sample(sent, time.monotonic(), version))
        if conn is not None:
            conn.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def all_samples(self) -> list[Sample]:
        return [s for worker in self.samples for s in worker]


def run(config: ConvergenceConfig, workdir: Path, log: Log = print) -> dict[str, Any]:
    from meshgen.render.output import write_tree

    tools = ensure_tools(log)
    envoy = find_envoy()
    workdir.mkdir(parents=True, exist_ok=True)
    addresses = [CALLER, CALLEE_V1, CALLEE_V2]

    ports = {
        "inbound": pick_common_port(addresses, 15006),
        "outbound": pick_common_port(addresses, 15001),
        "admin": pick_common_port(addresses, 15000),
        "caller_app": pick_common_port(addresses, 18081),
        "app": pick_common_port(addresses, APP_PORT),
    }
    directory = workdir / "sidecars"
    trees = {version: _render(_catalog({version: 100}, ports), directory, f"to-{version}") for version in ("v1", "v2")}
    write_tree(directory, trees["v1"])
    shifts: list[tuple[float, str, list[str]]] = []
    with Processes() as procs:
        start_nginx(
            procs, tools["nginx"], workdir / "nginx", [(CALLEE_V1, ports["app"], "v1"), (CALLEE_V2, ports["app"], "v2")]
        )
        envoys = [
            procs.start(
                f"{instance} envoy",
                envoy_argv(envoy, directory / instance / "envoy.yaml", 1),
                workdir / f"{instance}.log",
            )
            for instance in sorted({r.split("/", 1)[0] for r in trees["v1"]})
        ]
        processes.wait_until(
            lambda: processes.http_answers(CALLER, ports["outbound"], "callee", "v1"), envoys, "the convergence mesh"
        )
        total = config.lead_s + config.shifts * config.settle_s
        begin = time.monotonic()
        with Load(CALLER, ports["outbound"], config.workers, begin + total + 5) as load:
            time.sleep(config.lead_s)
            for index in range(config.shifts):
                new = "v2" if index % 2 == 0 else "v1"
                shifted_at = time.monotonic()
                changes = write_tree(directory, trees[new])
                shifts.append((shifted_at, new, changes.changed))
                time.sleep(config.settle_s)
            ended = time.monotonic()
        samples = load.all_samples()
    results = []
    for index, (shifted_at, new, _) in enumerate(shifts):
        window_end = shifts[index + 1][0] if index + 1 < len(shifts) else ended
        result = analyze_shift(samples, shifted_at, window_end, new)
        results.append(result)
        shown = f"{result.seconds * 1000:.1f} ms" if result.seconds is not None else "not converged"
        log(f"  shift to {new}: {shown}, {result.failed} failed of {result.requests} requests")
    duration = ended - begin
    return summarize(results, shifts[0][2] if shifts else [], len(samples) / duration if duration > 0 else 0.0, config)


def summarize(
    results: list[ShiftResult], rewritten: list[str], rps: float, config: ConvergenceConfig
) -> dict[str, Any]:
    converged = [r.seconds for r in results if r.seconds is not None]
    failed = sum(r.failed for r in results)
    all_converged = bool(results) and len(converged) == len(results)
    worst = max(converged) if all_converged else None
    return {
        "seconds": {
            "median": rounded(median(converged), 4) if converged else None,
            "max": rounded(worst, 4),
        },
        "failed_requests": failed,
        "shifts": len(results),
        "all_converged": all_converged,
        "per_shift": [
            {
                "to": r.to_version,
                "seconds": rounded(r.seconds, 4),
                "failed": r.failed,
                "requests": r.requests,
                "old_version_answers_after_swap": r.old_after_shift,
            }
            for r in results
        ],
        "load_rps": round(rps, 1),
        "files_rewritten_per_shift": rewritten,
        "target": {
            "seconds_under": TARGET_SECONDS,
            "zero_failures": True,
            "met": all_converged and worst is not None and worst < TARGET_SECONDS and failed == 0,
        },
        "conditions": {
            "shifts": config.shifts,
            "settle_s": config.settle_s,
            "client": f"{config.workers} Python threads, keep-alive, http.client",
            "swap": "meshgen.render.output.write_tree (write temp file, rename) of the caller's rds-outbound.yaml",
        },
    }


def empty() -> dict[str, Any]:
    return {"seconds": {"median": None, "max": None}, "failed_requests": None}
