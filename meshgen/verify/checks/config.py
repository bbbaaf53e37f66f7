"""Config: every sidecar runs the files it was given (no update refused, no listener failed).

Where the sidecar's files are on this machine (a local mesh), each file's version is compared with
the version Envoy reports loaded; elsewhere, Envoy's own counters of refused updates must be zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from meshgen.deploy.admin import config_dump, file_versions, listener_errors, stale_files
from meshgen.model.mesh import Mesh
from meshgen.verify.checks.base import CheckResult, Outcome
from meshgen.verify.http import send
from meshgen.verify.targets import Caller

KIND = "config"


def _config_dir(dump: dict[str, object]) -> Path | None:
    for config in dump.get("configs", []):  # type: ignore[attr-defined]
        bootstrap = config.get("bootstrap") if isinstance(config, dict) else None
        if isinstance(bootstrap, dict):
            path = (
                bootstrap.get("dynamic_resources", {}).get("lds_config", {}).get("path_config_source", {}).get("path")
            )
            return Path(path).parent if path else None
    return None


def _refused_updates(admin: str) -> dict[str, int]:
    address, _, port = admin.rpartition(":")
    reply = send(address, int(port), "/stats?format=json&filter=update_rejected$", timeout=5)
    if not isinstance(reply.body, dict):
        return {}
    return {s["name"]: int(s.get("value", 0)) for s in reply.body.get("stats", []) if s.get("value")}


def check_config(mesh: Mesh) -> Iterator[Outcome]:
    for instance in mesh.proxies:
        admin = Caller(instance).admin
        dump = config_dump(admin)
        if dump is None:
            yield CheckResult(KIND, instance.id, False, f"admin interface at {admin} does not answer")
            continue
        problems = listener_errors(dump)
        directory = _config_dir(dump)
        if directory is not None and directory.is_dir():
            files = {p.name: p.read_text(encoding="utf-8") for p in directory.glob("*.yaml")}
            problems += [f"{directory / name} not loaded (refused)" for name in stale_files(file_versions(files), dump)]
            how = f"every file in {directory} loaded"
        else:
            refused = _refused_updates(admin)
            problems += [
                f"{re.sub(r'[.]update_rejected$', '', name)}: {count} updates refused"
                for name, count in refused.items()
            ]
            how = "no config update refused since it started"
        yield CheckResult(KIND, instance.id, not problems, "; ".join(problems) or how)
