"""Provisioning: the first and the second (idempotent) run of `ansible/site.yml` on the Molecule
test hosts, timed. Runs only with `--provisioning`: it needs a Docker engine, the systemd base
image and the on-prem Molecule scenario, and takes minutes.

Steps, each bounded in time: prepare Docker and the base image as `scripts/test` does
(untimed), `molecule destroy` (untimed), `molecule create`, `molecule converge` (the first run
of site.yml), `molecule idempotence` (the second run, which must change nothing), and
`molecule destroy` again, always. It uses the repository's scenario (same container names and
addresses as `molecule test`), so it must not run while another Molecule run is active.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.processes import run_bounded
from bench.stats import rounded

Log = Callable[[str], None]

STEP_TIMEOUT_SECONDS = 3600.0
PREPARE = ("molecule/images/start-docker", "molecule/images/build-debian-systemd")
REQUIRED = ("molecule/default/molecule.yml", "ansible/site.yml")
NOT_REQUESTED = "runs only with --provisioning (needs Docker, the systemd base image and the Molecule scenario)"


def molecule_executable() -> str | None:
    beside = Path(sys.executable).parent / "molecule"
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("molecule")


def missing_prerequisites(repo: Path) -> list[str]:
    missing = [f"{path} does not exist yet" for path in REQUIRED if not (repo / path).exists()]
    if molecule_executable() is None:
        missing.append("the molecule command is not installed")
    return missing


def changed_count(output: str) -> int | None:
    """Sum of `changed=N` over the PLAY RECAP lines of an ansible-playbook run, if any."""
    counts = [int(n) for n in re.findall(r"\bchanged=(\d+)", output)]
    return sum(counts) if counts else None


def not_run(reason: str) -> dict[str, Any]:
    return {"status": "not run", "reason": reason, "first_run_seconds": None, "second_run_seconds": None}


def run(enabled: bool, repo: Path, log: Log = print) -> dict[str, Any]:
    missing = missing_prerequisites(repo)
    if not enabled:
        reason = NOT_REQUESTED
        if missing:
            reason += "; also: " + "; ".join(missing)
        return not_run(reason)
    if missing:
        return not_run("; ".join(missing))
    molecule = molecule_executable()
    assert molecule is not None
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def step(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        log(f"  provisioning: {' '.join(argv)}")
        begin = time.perf_counter()
        done = run_bounded(argv, STEP_TIMEOUT_SECONDS, env, cwd=repo)
        return time.perf_counter() - begin, done

    for script in PREPARE:
        if (repo / script).exists():
            _, done = step(["bash", str(repo / script)])
            if done.returncode != 0:
                return not_run(f"{script} failed: {(done.stdout + done.stderr)[-1500:]}")
    result: dict[str, Any] = {"status": "ran", "steps": {}}
    try:
        step([molecule, "destroy"])
        for name, argv in (
            ("create", [molecule, "create"]),
            ("converge", [molecule, "converge"]),
            ("idempotence", [molecule, "idempotence"]),
        ):
            seconds, done = step(argv)
            output = done.stdout + done.stderr
            result["steps"][name] = {
                "seconds": rounded(seconds, 1),
                "returncode": done.returncode,
                "changed": changed_count(output),
            }
            if done.returncode != 0:
                result["status"] = f"failed at molecule {name}"
                result["steps"][name]["output_tail"] = output[-3000:]
                break
    finally:
        step([molecule, "destroy"])
    steps = result["steps"]
    result["first_run_seconds"] = steps.get("converge", {}).get("seconds")
    result["second_run_seconds"] = steps.get("idempotence", {}).get("seconds")
    result["second_run_changed"] = steps.get("idempotence", {}).get("changed")
    result["create_seconds"] = steps.get("create", {}).get("seconds")
    return result
