"""Starting, probing and stopping the processes of a local mesh."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
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
    name: str,
    kind: str,
    argv: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    cwd: str | None = None,
    **info: str | None,
) -> Process:
    """Start `argv` as a daemon: its own session and process group (stopping it stops its children),
    stdin from /dev/null, stdout and stderr appended to `log`, and init (or the nearest subreaper)
    as its parent. The last matters: Envoy asks for SIGTERM when its parent exits (PR_SET_PDEATHSIG),
    and the parent must not be this short-lived command. argv is a list: no shell is involved."""
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, **(env or {})}
    if cwd is not None and not Path(cwd).is_dir():
        raise StartError(f"{name} could not be started: its working directory {cwd} is not a directory")
    executable = shutil.which(argv[0], path=environment.get("PATH")) or argv[0]
    if cwd is not None and os.sep in argv[0] and not os.path.isabs(argv[0]):
        executable = argv[0]  # ./server runs from the working directory, as a shell would
    # Appended: what a process said before a restart is often why it was restarted.
    output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.write(output, f"--- meshgen: {name} starting at {stamp}: {' '.join(argv)}\n".encode())
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        _launch(executable, argv, environment, cwd, output=output, read_end=read_end, write_end=write_end)
    os.close(write_end)
    os.close(output)
    with os.fdopen(read_end, "rb") as pipe:
        reported = pipe.read().decode()
    os.waitpid(first, 0)
    if not reported.isdigit():
        raise StartError(f"{name} could not be started: {reported or 'no process'}")
    pid = int(reported)
    # Read at once: the process has just executed its command, so it can have exited only if that
    # failed at once, and its PID is not handed out again that quickly.
    started = identity(pid)
    return Process(name=name, kind=kind, pid=pid, argv=argv, log=str(log), started=started, **info)  # type: ignore[arg-type]


def _launch(
    executable: str,
    argv: list[str],
    environment: dict[str, str],
    cwd: str | None,
    *,
    output: int,
    read_end: int,
    write_end: int,
) -> None:
    """In a forked child: fork the process proper and exit. The process proper reports its own pid
    once it leads its own process group, and the pipe closes when it executes its command (the
    write end is close-on-exec), so `spawn` returns a process that can be told apart and stopped.
    Only system calls run here, nothing that could wait on a lock another thread held."""
    try:
        os.close(read_end)
        parent = os.getpid()
        second = os.fork()
        if second == 0:
            while os.getppid() == parent:  # reparented once the first child has exited
                time.sleep(0.001)
            os.setsid()  # its own session and process group, whose id is its pid
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(output, 1)
            os.dup2(output, 2)
            os.closerange(3, write_end)
            os.closerange(write_end + 1, 65_536)
            os.write(write_end, str(os.getpid()).encode())
            try:
                if cwd is not None:
                    os.chdir(cwd)
                os.execve(executable, argv, environment)
            finally:
                os.write(2, f"cannot run {argv[0]}\n".encode())
                os._exit(127)
    finally:
        os._exit(0)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (the first is the state), or None
    when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _threads_left(pid: int) -> bool:
    """Threads of the process besides its first one are still running."""
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/task").iterdir()) > 1
    except OSError:
        return False


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def identity(pid: int) -> str | None:
    """Which process `pid` is, for good: this boot's id and the process's start time (clock ticks
    since boot, field 22 of /proc/PID/stat). A PID is reused after its process exits, and after a
    reboot the same PIDs come round again; the pair is never reused. None when `pid` is gone."""
    fields = _stat(pid)
    return f"{_boot_id()}:{fields[19]}" if fields is not None else None


def _exited(pid: int) -> bool:
    """`pid` has no process, or only a zombie (reaped here when it is our child). A zombie leader
    may still have threads that hold the process's files and sockets (Envoy's workers, the
    dashboard's): the process has exited only once they have too."""
    fields = _stat(pid)
    if fields is not None and (fields[0] != "Z" or _threads_left(pid)):
        return False
    with contextlib.suppress(ChildProcessError):  # a child of ours stays a zombie until reaped
        os.waitpid(pid, os.WNOHANG)
    return True


def alive(process: Process) -> bool:
    """The process the state recorded still runs: its PID exists, is not a zombie, and still
    belongs to the same process (not to one that got the PID after a reboot or PID reuse)."""
    if _exited(process.pid):
        return False
    fields = _stat(process.pid)
    if fields is None:
        return False
    if process.started is not None:
        return process.started == f"{_boot_id()}:{fields[19]}"
    # Recorded by a meshgen that kept no identity: the command line must still be the one started.
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return cmdline.split(b"\0")[:-1] == [arg.encode() for arg in process.argv]


def log_tail(process: Process, lines: int = 15) -> str:
    try:
        text = Path(process.log).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def stop(process: Process) -> bool:
    """SIGTERM the process group, then SIGKILL whatever is left after a grace period; False when
    nothing was sent because the recorded process is gone. Each signal goes only to a group whose
    leader is still the recorded process (`alive`), so a PID that now belongs to another process
    (after a reboot, or reused) is never signalled. Children left behind by a leader that has
    already exited cannot be told apart from strangers, so they are not signalled either."""
    signalled = False
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 2.0)):
        if not alive(process):
            return signalled
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return signalled
        signalled = True
        # Once signalled, it is waited on by its PID alone, which no other process can take before
        # it has exited: its identity (its command line, for an old record) may vanish first.
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _exited(process.pid):
                return signalled
            time.sleep(0.05)
    return signalled


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
        if not alive(process):
            raise StartError(f"{process.name} exited during start; the end of {process.log}:\n{log_tail(process)}")
        time.sleep(0.05)
    raise StartError(
        f"{process.name} was not ready after {timeout:.0f}s; the end of {process.log}:\n{log_tail(process)}"
    )
