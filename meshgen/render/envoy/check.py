"""Render a mesh into a scratch directory and have the real Envoy validate every sidecar."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from meshgen.model.mesh import Mesh
from meshgen.render.envoy.sidecar import render_envoy
from meshgen.render.envoy.validate import find_envoy, sidecar_dirs, validate_sidecar
from meshgen.render.output import write_tree


def check_with_envoy(mesh: Mesh) -> int:
    """Validate every sidecar config of `mesh`; returns how many were checked."""
    envoy = find_envoy()
    with tempfile.TemporaryDirectory(prefix="meshgen-check-") as scratch:
        root = Path(scratch)
        write_tree(root, render_envoy(mesh, PurePosixPath(root.as_posix())))
        dirs = sidecar_dirs(root)
        for sidecar in dirs:
            validate_sidecar(sidecar, envoy)
    return len(dirs)
