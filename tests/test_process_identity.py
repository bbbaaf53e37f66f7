"""`meshgen down` signals only the processes it started: a PID recorded in the state file that now
belongs to another process (after a reboot, or reused) is never signalled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.local.processes import alive, identity, port_free, spawn, stop
from meshgen.deploy.local.runner import down
from meshgen.deploy.local.state import STATE_FILE, MeshState, Process, load_state, save_state

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process meshgen did not start, leading its own process group as mesh processes do."""
    process = subprocess.Popen(SLEEPER, start_new_session=True)
    yield process
    process.kill()
    process.wait()


def _record(pid: int, started: str | None, argv: list[str] | None = None) -> Process:
    return Process(name="a.v1.a-1 app", kind="app", pid=pid, argv=argv or SLEEPER, log="/dev/null", started=started)


def _other_boot(started: str) -> str:
    boot, _, ticks = started.partition(":")
    return f"{'0' * len(boot)}:{ticks}"


def test_spawn_records_the_identity_and_stop_ends_the_process(tmp_path: Path) -> None:
    process = spawn("sleeper", "app", SLEEPER, tmp_path / "sleeper.log")
    assert process.started == identity(process.pid) and process.started is not None
    assert alive(process)
    assert stop(process) is True
    assert not alive(process)
    assert stop(process) is False  # already gone: nothing sent


# The first thread ends (pthread_exit) while a second one keeps a listening socket open: the
# leader shows as a zombie, yet the process still holds its files, as a multithreaded process
# being killed does for a moment.
LEADER_GONE = [
    sys.executable,
    "-c",
    "import ctypes, socket, threading, time\n"
    "s = socket.create_server(('127.0.76.1', 0))\n"
    "print(s.getsockname()[1], flush=True)\n"
    "threading.Thread(target=time.sleep, args=(60,)).start()\n"
    "ctypes.CDLL(None).pthread_exit(None)\n",
]


def test_a_process_whose_first_thread_ended_is_alive_until_its_other_threads_end(tmp_path: Path) -> None:
    process = spawn("leader-gone", "app", LEADER_GONE, tmp_path / "leader.log")
    deadline = time.monotonic() + 10
    while (state := Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z":
        assert time.monotonic() < deadline, f"the first thread did not end: state {state}"
        time.sleep(0.02)
    port = int((tmp_path / "leader.log").read_text().split()[-1])  # after the log's start marker
    assert alive(process), "a zombie leader whose threads still run was taken for gone"
    assert stop(process) is True
    assert not alive(process)
    assert port_free("127.0.76.1", port)


@pytest.mark.parametrize(
    "how",
    [
        "reused",  # same boot, another start time: the PID went round
        "rebooted",  # same start time, another boot
        "no identity, other command",  # a state written before identities were recorded
    ],
)
def test_a_pid_that_is_now_another_process_is_never_signalled(
    stranger: subprocess.Popen[bytes], how: str, tmp_path: Path
) -> None:
    started = identity(stranger.pid)
    assert started is not None
    record = {
        "reused": _record(stranger.pid, started.rsplit(":", 1)[0] + ":1"),
        "rebooted": _record(stranger.pid, _other_boot(started)),
        "no identity, other command": _record(stranger.pid, None, ["envoy", "-c", "envoy.yaml"]),
    }[how]
    assert not alive(record)
    assert stop(record) is False
    assert stranger.poll() is None, "an unrelated process was signalled"


def test_a_state_from_before_identities_still_stops_its_own_processes(tmp_path: Path) -> None:
    process = spawn("sleeper", "app", SLEEPER, tmp_path / "sleeper.log")
    legacy = _record(process.pid, None, process.argv)  # same process, as an older meshgen recorded it
    assert alive(legacy)
    assert stop(legacy) is True
    assert not alive(process)


def test_down_after_a_reboot_leaves_the_process_now_at_that_pid_alone(
    stranger: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    started = identity(stranger.pid)
    assert started is not None
    state_dir = tmp_path / "state"
    save_state(state_dir, MeshState(mesh="m", catalog="c.yaml", config_dir=str(tmp_path), processes=[]))
    state = load_state(state_dir)
    assert state is not None
    state.processes.append(_record(stranger.pid, _other_boot(started)))
    save_state(state_dir, state)
    result = CliRunner().invoke(main, ["down", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    assert "no mesh is running" in result.stdout
    assert stranger.poll() is None, "down signalled a process it did not start"
    assert load_state(state_dir) is None
    assert down(state_dir) == []


def test_a_state_file_without_identities_still_loads(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(
        json.dumps(
            {
                "mesh": "m",
                "catalog": "c.yaml",
                "config_dir": "/tmp/c",
                "processes": [{"name": "x app", "kind": "app", "pid": 1, "argv": ["x"], "log": "/dev/null"}],
            }
        )
    )
    state = load_state(tmp_path)
    assert state is not None and state.processes[0].started is None
