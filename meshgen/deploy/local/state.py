"""Where a running local mesh keeps its state: one directory, one JSON file.

`meshgen down` and `meshgen status` need no arguments because everything they need is here.
The file is rewritten after every process start, so even an `up` that fails midway leaves a
state from which everything it started can be stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


def default_state_dir() -> Path:
    explicit = os.environ.get("MESHGEN_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "meshgen"


@dataclass
class Process:
    name: str  # e.g. "users.v1.users-1 envoy"
    kind: str  # app | envoy | collector
    pid: int
    argv: list[str]
    log: str
    # Which process `pid` was: "<boot id>:<start time>" (see processes.identity). Nothing is ever
    # signalled unless the process at `pid` still has it, so a reused PID is left alone. None in
    # a state written before meshgen recorded it: then the command line must still match.
    started: str | None = None
    instance: str | None = None
    address: str | None = None  # address:port it serves
    admin: str | None = None  # envoy admin address:port
    fingerprint: str = ""  # what it was started from; a change means a restart
    base_id: int | None = None  # envoys: shared-memory id for hot restarts
    epoch: int = 0  # envoys: hot restarts so far


@dataclass
class MeshState:
    mesh: str
    catalog: str
    config_dir: str
    processes: list[Process] = field(default_factory=list)
    mtls: str = "off"  # the mutual TLS mode the running sidecars have (a mesh started before meshgen had it: off)

    def by_name(self) -> dict[str, Process]:
        return {p.name: p for p in self.processes}


def load_state(state_dir: Path) -> MeshState | None:
    path = state_dir / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    processes = [Process(**p) for p in data.pop("processes", [])]
    return MeshState(**data, processes=processes)


def save_state(state_dir: Path, state: MeshState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    temporary = state_dir / f".{STATE_FILE}.tmp"
    temporary.write_text(json.dumps(asdict(state), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, state_dir / STATE_FILE)


def clear_state(state_dir: Path) -> None:
    (state_dir / STATE_FILE).unlink(missing_ok=True)
