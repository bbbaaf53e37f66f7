"""Putting rendered files on disk, and comparing them with what is there.

Everything is rendered in memory before anything is written, so invalid input never leaves a
half-written tree. Each file is replaced atomically (write a temporary file, then rename), the
way a running Envoy expects its watched files to change. A manifest records what meshgen wrote,
so files it no longer renders are removed and files it never wrote are left alone.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".meshgen-manifest.json"


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def read_manifest(out: Path) -> list[str]:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    files = data.get("files", []) if isinstance(data, dict) else []
    return [f for f in files if isinstance(f, str)]


def compare(out: Path, files: dict[str, str]) -> Changes:
    changes = Changes()
    for relative, content in files.items():
        target = out / relative
        if not target.exists():
            changes.added.append(relative)
        elif target.read_text(encoding="utf-8") != content:
            changes.changed.append(relative)
        else:
            changes.unchanged.append(relative)
    changes.removed = sorted(set(read_manifest(out)) - set(files))
    return changes


def atomic_write(target: Path, content: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_tree(out: Path, files: dict[str, str]) -> Changes:
    """Make `out` hold exactly `files` (of the files meshgen manages); returns what changed.

    Files are written in the order given, so callers put files that others depend on first.
    """
    changes = compare(out, files)
    for relative, content in files.items():
        if relative in changes.added or relative in changes.changed:
            atomic_write(out / relative, content)
    for relative in changes.removed:
        stale = out / relative
        stale.unlink(missing_ok=True)
        _remove_empty_parents(stale.parent, out)
    atomic_write(out / MANIFEST, json.dumps({"files": sorted(files)}, indent=2) + "\n")
    return changes


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
