"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from meshgen.render.envoy import Layout
from meshgen.render.output import write_tree

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(REPO.glob("examples/*/catalog.yaml"))
TESTDATA = REPO / "tests" / "testdata"


def write_rendered(root: Path, files: dict[str, str]) -> Path:
    write_tree(root, files)
    return root


def root_of(path: Path) -> PurePosixPath:
    return PurePosixPath(path.resolve().as_posix())


def layout_of(path: Path) -> Layout:
    """Sidecar directories in `path`, identities and trust bundle in `path`/tls."""
    return Layout(root_of(path), root_of(path) / "tls")
