"""Starting, probing and stopping the processes of a local mesh."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from meshgen.deploy.local.state import Process
from meshgen.errors import UserError

STOP_GRACE_SECONDS = 5.0


class StartError(UserError):
    """A process of the mesh did not come up; the message carries the end of its log."""


def port_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def spawn(
    name: str, kind: str, argv: list[str], log: Path, env: dict[str, str] | None = None, **info: str | None
) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        # argv is a list built by meshgen: no shell is involved.
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stopping it stops its children
        )
    return Process(name=name, kind=kind, pid=child.pid, argv=argv, log=str(log), **info)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child we started and that exited stays a zombie until reaped; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _not_zombie(pid)
    return done == 0


def _not_zombie(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def log_tail(process: Process, lines: int = 15) -> str:
    try:
        text = Path(process.log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def stop(process: Process) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(process.pid):
                return
            time.sleep(0.05)


def tcp_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str, expect: str | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            body = response.read().decode()
    except (OSError, urllib.error.URLError):
        return False
    return expect is None or body.strip() == expect


def wait_until(process: Process, ready: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not alive(process.pid):
            raise StartError(f"{process.name} exited during start; the end of {process.log}:\n{log_tail(process)}")
        time.sleep(0.05)
    raise StartError(
        f"{process.name} was not ready after {timeout:.0f}s; the end of {process.log}:\n{log_tail(process)}"
    )
