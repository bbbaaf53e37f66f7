"""Starting, probing and stopping the processes a benchmark runs, all on loopback.

Every process is started in its own process group and stopped by that group id, so a
benchmark never leaves anything behind and never touches processes it did not start.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

STOP_GRACE_SECONDS = 3.0


class StartError(RuntimeError):
    """A benchmark process did not come up; the message carries the end of its log."""


def require_loopback(address: str) -> str:
    """Benchmarks send traffic only to 127.0.0.0/8: refuse any other address outright."""
    if ipaddress.ip_address(address) not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"benchmark traffic must stay on 127.0.0.0/8, got {address}")
    return address


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process has used so far (Linux /proc), or None."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


def start(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group, stopped as a whole
        )
    return Proc(name=name, argv=argv, log=log, popen=popen)


def stop(proc: Proc, grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process group, then SIGKILL it if anything is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        if proc.popen.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=wait)
    # Children of the group (an nginx worker) may outlive the leader briefly: kill what is left.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class Processes:
    """Processes started within a `with` block; all are stopped when it ends, error or not."""

    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
        proc = start(name, argv, log, env)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        while self.started:
            stop(self.started.pop())

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop_all()


def port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((require_loopback(address), port))
        except OSError:
            return False
    return True


def pick_port(address: str, preferred: int, tries: int = 200) -> int:
    """`preferred` if nothing listens there on `address`, else the next free port above it."""
    for port in range(preferred, min(preferred + tries, 65536)):
        if port_free(address, port):
            return port
    raise StartError(f"no free port on {address} in {preferred}..{preferred + tries - 1}")


def pick_common_port(addresses: list[str], preferred: int) -> int:
    """The lowest port from `preferred` up that is free on every one of `addresses`."""
    port = preferred
    while True:
        chosen = {pick_port(address, port) for address in addresses}
        if len(chosen) == 1:
            return chosen.pop()
        port = max(chosen)


def tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((require_loopback(address), port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(
    address: str, port: int, host: str | None = None, path: str = "/", timeout: float = 2.0
) -> tuple[int, str]:
    """One GET on a fresh connection: (status, body); raises OSError when nothing answers."""
    conn = http.client.HTTPConnection(require_loopback(address), port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def http_answers(address: str, port: int, host: str | None = None, expect: str | None = None) -> bool:
    try:
        status, body = http_get(address, port, host, timeout=1.0)
    except (OSError, http.client.HTTPException):
        return False
    return status == 200 and (expect is None or body.strip() == expect)


def wait_until(ready: Callable[[], bool], procs: list[Proc], what: str, timeout: float = 20.0) -> None:
    """Poll `ready` until true; fail early, with the log, when one of `procs` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        for proc in procs:
            if not proc.alive():
                raise StartError(f"{proc.name} exited while waiting for {what}; end of {proc.log}:\n{proc.log_tail()}")
        time.sleep(0.05)
    tails = "\n".join(f"--- {p.name} ({p.log}):\n{p.log_tail()}" for p in procs)
    raise StartError(f"{what}: not ready after {timeout:.0f}s\n{tails}")


def run_bounded(
    argv: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion in its own process group; kill the group past `timeout`."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    ) as popen:
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
            out, err = popen.communicate()
            raise
        return subprocess.CompletedProcess(argv, popen.returncode, out, err)
