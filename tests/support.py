"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
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


class SteadyTraffic:
    """Requests in a loop from a few threads until stopped; every answer counted by status. It
    waits for answers, not for time: some before the block runs, some after, and `more()` inside
    it, so every phase of a test is covered however slow the machine is."""

    WARMUP = 20  # answers before the block runs, and again after it
    PATIENCE = 60.0  # seconds for those answers to come: a mesh that stops answering fails

    def __init__(self, *requests: Callable[[], int]) -> None:
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(r,)) for r in requests]

    def _run(self, request: Callable[[], int]) -> None:
        while not self._stop.is_set():
            status = request()
            with self._lock:
                self.statuses[status] += 1
            time.sleep(0.005)

    def answered(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def more(self, count: int = WARMUP) -> None:
        """Wait until `count` more answers have come, whatever their status."""
        target = self.answered() + count
        deadline = time.monotonic() + self.PATIENCE
        while self.answered() < target:
            assert time.monotonic() < deadline, f"{count} answers did not come in {self.PATIENCE}s: {self.statuses}"
            time.sleep(0.01)

    def __enter__(self) -> SteadyTraffic:
        for thread in self._threads:
            thread.start()
        self.more()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.more()
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join()
