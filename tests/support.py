"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from meshgen.render.envoy import Layout
from meshgen.render.output import write_tree

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(REPO.glob("examples/*/catalog.yaml"))
TESTDATA = REPO / "tests" / "testdata"

# In CI a test that needs a missing tool fails, so a machine without Terraform cannot pass by
# skipping; on a developer's machine it is skipped with the reason. .ci/run sets
# MESHGEN_REQUIRE_TOOLS=1; CI systems that set CI=true get the same.
REQUIRE_TOOLS = os.environ.get("MESHGEN_REQUIRE_TOOLS", os.environ.get("CI", "")).lower() not in {
    "",
    "0",
    "false",
    "no",
}


def need_tool(name: str) -> str:
    """The path of `name` on PATH; skip the test without it (fail it in CI, see REQUIRE_TOOLS)."""
    found = shutil.which(name)
    if found:
        return found
    if REQUIRE_TOOLS:
        pytest.fail(f"{name} is not on PATH, and CI runs every test (MESHGEN_REQUIRE_TOOLS)", pytrace=False)
    pytest.skip(f"{name} is not on PATH (in CI this fails)")


def write_rendered(root: Path, files: dict[str, str]) -> Path:
    write_tree(root, files)
    return root


def root_of(path: Path) -> PurePosixPath:
    return PurePosixPath(path.resolve().as_posix())


def layout_of(path: Path) -> Layout:
    """Sidecar directories in `path`, identities and trust bundle in `path`/tls."""
    return Layout(root_of(path), root_of(path) / "tls")


class _InventoryLoader(yaml.SafeLoader):
    """YAML as Ansible reads an inventory: `!unsafe` marks text it must not template."""


_InventoryLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def load_inventory_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_InventoryLoader)  # a SafeLoader with one more string tag
