"""The order in which a mode change reaches the sidecars' files: callees accept TLS before any
caller sends it, callers stop sending it before any callee refuses it. A live run under load
(tests/test_security.py) shows no request failing; this pins the order that guarantees it, which
a live run can only catch by luck (the window between two file swaps is a few milliseconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshgen.deploy.local import swap as swap_module
from meshgen.deploy.local.swap import mode_steps, swap
from meshgen.render import output
from meshgen.render.output import write_tree


def files(mode: str) -> dict[str, str]:
    rendered = {}
    for sidecar in ("a", "b"):
        rendered[f"{sidecar}/cds.yaml"] = f'"version_info": "cds-{mode}"'
        rendered[f"{sidecar}/lds.yaml"] = f'"version_info": "lds-{mode}"'
        if mode != "off":
            rendered[f"{sidecar}/sds-identity.yaml"] = '"version_info": "sds"'
    return rendered


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happened, in order: each file written, each wait for Envoys to load."""
    events: list[str] = []
    real_write = output.atomic_write

    def write(target: Path, content: str) -> None:
        events.append(f"write {target.parent.name}/{target.name}")
        real_write(target, content)

    def confirm(envoys: list[object], sidecars: dict[str, dict[str, str]]) -> None:
        events.append("confirm")

    monkeypatch.setattr(swap_module, "atomic_write", write)
    monkeypatch.setattr(output, "atomic_write", write)  # write_tree's writes
    monkeypatch.setattr(swap_module, "confirm_loaded", confirm)
    return events


def test_switching_tls_on_swaps_every_listener_before_any_cluster(tmp_path: Path, journal: list[str]) -> None:
    write_tree(tmp_path, files("off"))
    journal.clear()
    swap(tmp_path, files("permissive"), "off", "permissive", {})
    first_confirm = journal.index("confirm")
    early, late = journal[:first_confirm], journal[first_confirm:]
    assert sorted(early) == [
        "write a/lds.yaml",
        "write a/sds-identity.yaml",
        "write b/lds.yaml",
        "write b/sds-identity.yaml",
    ]
    assert sorted(e for e in late if e.startswith("write") and "manifest" not in e) == [
        "write a/cds.yaml",
        "write b/cds.yaml",
    ]


def test_switching_tls_off_swaps_every_cluster_before_any_listener(tmp_path: Path, journal: list[str]) -> None:
    write_tree(tmp_path, files("permissive"))
    journal.clear()
    swap(tmp_path, files("off"), "permissive", "off", {})
    first_confirm = journal.index("confirm")
    assert sorted(journal[:first_confirm]) == ["write a/cds.yaml", "write b/cds.yaml"]
    assert sorted(e for e in journal[first_confirm:] if e.startswith("write") and "manifest" not in e) == [
        "write a/lds.yaml",
        "write b/lds.yaml",
    ]


def test_off_and_strict_are_never_neighbours() -> None:
    assert mode_steps("off", "strict") == ["permissive", "strict"]
    assert mode_steps("strict", "off") == ["permissive", "off"]
    assert mode_steps("permissive", "strict") == ["strict"]
    assert mode_steps("strict", "strict") == ["strict"]
