"""Render a mesh into a scratch directory and have the real Envoy validate every sidecar."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from meshgen.model.mesh import Mesh
from meshgen.render.envoy.layout import Layout
from meshgen.render.envoy.sidecar import render_envoy
from meshgen.render.envoy.validate import find_envoy, sidecar_dirs, validate_sidecar
from meshgen.render.output import write_tree


def check_with_envoy(mesh: Mesh) -> int:
    """Validate every sidecar config of `mesh`, on disk as rendered; returns how many were checked."""
    envoy = find_envoy()
    with tempfile.TemporaryDirectory(prefix="meshgen-check-") as scratch:
        root = Path(scratch)
        write_tree(root, render_envoy(mesh, Layout(PurePosixPath(root.as_posix()))))
        dirs = sidecar_dirs(root)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(lambda sidecar: validate_sidecar(sidecar, envoy), dirs))
    return len(dirs)
