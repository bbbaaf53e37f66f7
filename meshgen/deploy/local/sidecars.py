"""Whether each running Envoy runs the files meshgen gave it, compared by the versions they carry."""

from __future__ import annotations

import time
from pathlib import Path

from meshgen.deploy.admin import config_dump, file_versions, listener_errors, stale_files
from meshgen.deploy.local.processes import log_tail
from meshgen.deploy.local.state import Process
from meshgen.errors import UserError

# How long a running Envoy may take to report a swapped file as loaded; it usually takes milliseconds.
LOAD_TIMEOUT_SECONDS = 10.0


def confirm_loaded(envoys: list[Process], sidecars: dict[str, dict[str, str]]) -> None:
    """Wait until each Envoy reports the versions of the files just swapped in: a rename is not
    proof of a reload. Envoy checked these files before, so a refusal here is a surprise to report."""
    deadline = time.monotonic() + LOAD_TIMEOUT_SECONDS
    waiting = list(envoys)
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if _stale(p, sidecars[p.instance or ""])]
        if waiting:
            time.sleep(0.02)
    if waiting:
        details = "\n".join(f"  {p.name}: {', '.join(_stale(p, sidecars[p.instance or ''])) or '?'}" for p in waiting)
        raise UserError(
            "files were swapped in but these sidecars did not load them (they keep serving their previous "
            f"config):\n{details}\nsee `meshgen status` for Envoy's reason"
        )


def _stale(process: Process, files: dict[str, str]) -> list[str]:
    dump = config_dump(process.admin or "")
    return ["admin unreachable"] if dump is None else stale_files(file_versions(files), dump)


def config_problems(process: Process, config_dir: Path) -> list[str]:
    """What on this sidecar's disk its Envoy does not run, with Envoy's last words on it."""
    directory = config_dir / (process.instance or "")
    files = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.yaml")}
    dump = config_dump(process.admin or "")
    if dump is None:
        return ["admin interface does not answer"]
    problems = [
        f"{directory / name}: not loaded (Envoy refused it)" for name in stale_files(file_versions(files), dump)
    ]
    problems += listener_errors(dump)
    if problems:
        reasons = [line for line in log_tail(process, 200).splitlines() if "rejected" in line or "error" in line]
        problems += [f"Envoy said: {line.rsplit('] ', 1)[-1].strip()}" for line in reasons[-3:]]
    return problems
