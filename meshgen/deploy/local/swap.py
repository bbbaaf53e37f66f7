"""Swapping a running mesh's sidecar files in an order no request notices.

Within a sidecar, files go in dependency order (secrets, clusters, routes, listeners). Across
sidecars, a change of mutual TLS mode needs more: callees must accept TLS before any caller sends
it, and callers must stop sending it before any callee refuses it. So the mesh moves one mode at
a time (off -> permissive -> strict, never off -> strict at once), and when TLS is switched on
every listener goes first, when it is switched off every cluster goes first, each phase confirmed
loaded by every Envoy before the next one starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from meshgen.deploy.local.sidecars import confirm_loaded
from meshgen.deploy.local.state import Process
from meshgen.model.mesh import Mesh
from meshgen.render.envoy import names
from meshgen.render.envoy.validate import split_sidecars
from meshgen.render.output import Changes, atomic_write, compare, write_tree


def mode_steps(old: str, new: str) -> list[str]:
    """The mutual TLS modes to apply in turn to go from `old` to `new`."""
    if {old, new} == {"off", "strict"}:
        return ["permissive", new]
    return [new]


def with_mode(mesh: Mesh, mode: str) -> Mesh:
    return dataclasses.replace(mesh, security=dataclasses.replace(mesh.security, mtls=mode))


def _first_phase(old: str, new: str) -> tuple[str, ...]:
    if old == "off" and new != "off":
        return (*names.SDS_FILES.values(), names.LDS_FILE)  # accept TLS first
    if old != "off" and new == "off":
        return (names.CDS_FILE,)  # stop sending TLS first
    return ()


def swap(config_dir: Path, files: dict[str, str], old: str, new: str, envoys: dict[str, Process]) -> Changes:
    """Make `config_dir` hold `files`, the mesh moving from mode `old` to `new`; `envoys` are
    the running sidecars by instance, each confirmed to have loaded what it was given."""
    first = _first_phase(old, new)
    if first:
        pending = compare(config_dir, files)
        early = [p for p in pending.added + pending.changed if p.rsplit("/", 1)[-1] in first]
        for relative in early:
            atomic_write(config_dir / relative, files[relative])
        sidecars = split_sidecars({p: files[p] for p in early})
        confirm_loaded([envoys[i] for i in sidecars if i in envoys], sidecars)
    changes = write_tree(config_dir, files)
    touched = {p.split("/", 1)[0] for p in changes.added + changes.changed}
    sidecars = split_sidecars(files)
    confirm_loaded([envoys[i] for i in sorted(touched) if i in envoys], sidecars)
    return changes
