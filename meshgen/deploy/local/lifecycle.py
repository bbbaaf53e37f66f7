"""Starting, hot-restarting and stopping the processes a local mesh's state records."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from meshgen.deploy.local.plan import PARENT_SHUTDOWN_SECONDS, Spec
from meshgen.deploy.local.processes import STOP_GRACE_SECONDS, alive, http_ok, spawn, stop, tcp_open, wait_until
from meshgen.deploy.local.state import MeshState, Process, save_state


def _hot_restart_args(spec: Spec, state_dir: Path, previous: Process | None) -> tuple[list[str], int]:
    """Envoy's hot restart: a new Envoy takes over the listening sockets of the running one, which
    drains and exits, so a changed bootstrap loses no connection. Each sidecar gets its own
    shared-memory id (Envoy picks a free one at the first start and writes it to a file)."""
    if previous is None or previous.base_id is None:
        path = state_dir / "run" / f"{spec.instance}.base-id"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        return ["--use-dynamic-base-id", "--base-id-path", str(path), "--restart-epoch", "0"], 0
    epoch = previous.epoch + 1
    return ["--base-id", str(previous.base_id), "--restart-epoch", str(epoch)], epoch


def _start(spec: Spec, state_dir: Path, previous: Process | None = None) -> Process:
    log = state_dir / "logs" / f"{spec.name.replace(' ', '.')}.log"
    address = f"{spec.ready_address[0]}:{spec.ready_address[1]}" if spec.ready_address else None
    admin = f"{spec.admin[0]}:{spec.admin[1]}" if spec.admin else None
    argv, epoch = list(spec.argv), 0
    if spec.kind == "envoy":
        extra, epoch = _hot_restart_args(spec, state_dir, previous)
        argv += extra
    process = spawn(
        spec.name,
        spec.kind,
        argv,
        log,
        spec.env,
        cwd=spec.workdir,
        instance=spec.instance,
        address=address,
        admin=admin,
    )
    process.fingerprint = spec.fingerprint
    process.epoch = epoch
    if previous is not None:
        process.base_id = previous.base_id
    return process


def _read_base_id(process: Process, state_dir: Path) -> None:
    if process.kind == "envoy" and process.base_id is None:
        path = state_dir / "run" / f"{process.instance}.base-id"
        text = path.read_text().strip() if path.exists() else ""
        process.base_id = int(text) if text.isdigit() else None


def _serving_epoch(spec: Spec) -> int | None:
    """The restart epoch of the Envoy that answers on `spec`'s admin address, once it is LIVE."""
    assert spec.admin is not None
    try:
        with urllib.request.urlopen(f"http://{spec.admin[0]}:{spec.admin[1]}/server_info", timeout=1) as response:
            info = json.loads(response.read())
    except (OSError, ValueError):
        return None
    if info.get("state") != "LIVE":
        return None
    epoch = info.get("command_line_options", {}).get("restart_epoch")
    return int(epoch) if epoch is not None else 0


def _wait_ready(spec: Spec, process: Process) -> None:
    if spec.ready_address is None:
        wait_until(process, lambda: True)  # started and not dead at once is all there is to see
        return
    address, port = spec.ready_address
    if spec.admin is None:
        wait_until(process, lambda: tcp_open(address, port))
        return
    admin = f"http://{spec.admin[0]}:{spec.admin[1]}"
    wait_until(process, lambda: http_ok(f"{admin}/ready", "LIVE") and tcp_open(address, port))


def start_all(
    specs: list[Spec], state: MeshState, state_dir: Path, progress: Callable[[str], None] | None = None
) -> list[str]:
    """Start `specs` in order, recording each in the state at once; wait for all to be ready.
    `progress` hears of each process once it is ready."""
    started: list[str] = []
    order = ("collector", "prometheus", "renewer", "app", "envoy", "dashboard")
    for kind, wave in sorted({(s.kind, s.wave) for s in specs}, key=lambda k: (order.index(k[0]), k[1])):
        batch = [s for s in specs if s.kind == kind and s.wave == wave]
        processes = []
        for spec in batch:
            process = _start(spec, state_dir)
            state.processes.append(process)
            save_state(state_dir, state)
            processes.append(process)
        for spec, process in zip(batch, processes, strict=True):
            _wait_ready(spec, process)
            _read_base_id(process, state_dir)
            started.append(spec.name)
            if progress is not None:
                progress(f"  ready ({len(started)}/{len(specs)}): {spec.name}")
    save_state(state_dir, state)
    return started


def stop_for_good(process: Process, state_dir: Path) -> bool:
    """Stop a process that no successor takes over from; False when it was no longer running."""
    stopped = stop(process)
    if process.base_id is not None:
        # Envoy leaves its hot-restart shared memory behind; nothing else uses this id.
        Path(f"/dev/shm/envoy_shared_memory_{process.base_id}0").unlink(missing_ok=True)
        (state_dir / "run" / f"{process.instance}.base-id").unlink(missing_ok=True)
    return stopped


def hot_restart(spec: Spec, old: Process, state: MeshState, state_dir: Path) -> None:
    """Replace a running Envoy by one started from `spec` without closing its listeners."""
    new = _start(spec, state_dir, previous=old)
    state.processes.append(new)
    save_state(state_dir, state)
    try:
        # Until the new Envoy takes over, the old one answers on the same admin address.
        wait_until(new, lambda: _serving_epoch(spec) == new.epoch)
    except BaseException:
        stop(new)
        state.processes.remove(new)
        save_state(state_dir, state)
        raise
    # The old Envoy drains its connections and exits by itself once the new one is serving.
    deadline = time.monotonic() + PARENT_SHUTDOWN_SECONDS + STOP_GRACE_SECONDS
    while alive(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop(old)
    state.processes.remove(old)
    save_state(state_dir, state)
