"""Putting rendered files on disk, and comparing them with what is there.

The catalog is loaded and checked before anything is written, so invalid input never leaves a
half-written tree: `write_tree` takes every file rendered in memory; `write_streamed` takes them
sidecar by sidecar from a renderer that cannot fail once the catalog is loaded (Envoy's), so
memory does not grow with the mesh, and can split the work between processes.

Each file that replaces another is replaced atomically (write a temporary file, then rename),
the way a running Envoy expects its watched files to change; a file in a directory this run
created is written in place, since nothing can be watching it yet. Only files whose content
differs are written: an unchanged file keeps its inode and its mtime. A manifest
records what meshgen wrote, so files it no longer renders are removed and files it never wrote
are left alone.

A record of each run (`record_run`: the fingerprint of its inputs and each file's status: size,
mtime, ctime, inode) lets a run with the same inputs over an untouched tree stop before loading
anything (`unchanged_since`). It lives in meshgen's cache directory, not in OUT, so the output
stays byte-identical from run to run and machine to machine (a tree kept in git does not churn).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

MANIFEST = ".meshgen-manifest.json"
# A file whose mtime is this close to the moment its status was recorded could still be changed
# within the same tick of the filesystem's clock without its status showing it (git's "racily
# clean" entries): its content digest is recorded too, and checked instead of its status.
_RACY_NS = 100_000_000
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_MODE = 0o644


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


def _load_manifest(out: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((out / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_manifest(out: Path) -> list[str]:
    files = _load_manifest(out).get("files", [])
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []


def compare(out: Path, files: dict[str, str]) -> Changes:
    changes = Changes()
    root = os.fspath(out)
    present = os.path.isdir(root)
    for relative, content in files.items():
        if not present:
            changes.added.append(relative)
            continue
        try:
            with open(os.path.join(root, relative), "rb") as handle:
                on_disk = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            changes.added.append(relative)
            continue
        if on_disk != content.encode("utf-8"):
            changes.changed.append(relative)
        else:
            changes.unchanged.append(relative)
    changes.removed = sorted(set(read_manifest(out)) - set(files))
    return changes


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(target: Path, content: str) -> None:
    """Replace `target` with `content` in one rename, so a reader sees the old file or the new one."""
    directory, name = os.path.split(os.fspath(target))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, _NEW_FILE, 0o600)
    except FileExistsError:  # left by a process of the same id that died: never reuse a name
        os.unlink(temporary)
        fd = os.open(temporary, _NEW_FILE, 0o600)
    try:
        try:
            _write_all(fd, content.encode("utf-8"))
            os.fchmod(fd, _MODE)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class _TreeWriter:
    """Writes files under one root, creating each directory once; files in a directory it
    created are written in place (no reader can have been watching them), others atomically."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.existing: set[str] = set()
        self.created: set[str] = set()
        self.chmod = _umask() & _MODE != 0

    def write(self, relative: str, content: str) -> None:
        self.write_bytes(relative, content.encode("utf-8"))

    def write_bytes(self, relative: str, data: bytes) -> None:
        directory = relative.rpartition("/")[0]
        if directory not in self.existing and directory not in self.created:
            absolute = os.path.join(self.root, directory) if directory else self.root
            if os.path.isdir(absolute):
                self.existing.add(directory)
            else:
                os.makedirs(absolute)
                self.created.add(directory)
        path = os.path.join(self.root, relative)
        if directory not in self.created:
            atomic_write(Path(path), data.decode("utf-8"))
            return
        fd = os.open(path, _NEW_FILE, _MODE)
        try:
            _write_all(fd, data)
            if self.chmod:
                os.fchmod(fd, _MODE)
        finally:
            os.close(fd)


def write_tree(out: Path, files: dict[str, str]) -> Changes:
    """Make `out` hold exactly `files` (of the files meshgen manages); returns what changed.

    Files are written in the order given, so callers put files that others depend on first.
    """
    changes = compare(out, files)
    pending = set(changes.added)
    pending.update(changes.changed)
    writer = _TreeWriter(os.fspath(out))
    for relative, content in files.items():
        if relative in pending:
            writer.write(relative, content)
    for relative in changes.removed:
        stale = out / relative
        stale.unlink(missing_ok=True)
        _remove_empty_parents(stale.parent, out)
    atomic_write(out / MANIFEST, json.dumps({"files": sorted(files)}, indent=2) + "\n")
    return changes


Chunks = Callable[[int, int], Iterable[dict[str, str]]]


@dataclass
class Streamed:
    """What `write_streamed` did: the changes, every file's name, and each file's status for
    `record_run` (None when it was not asked for, or one could not be taken safely)."""

    changes: Changes
    files: list[str]
    statuses: dict[str, list[Any]] | None


def write_streamed(
    out: Path,
    chunks: Chunks,
    *,
    processes: int = 1,
    statuses: bool = False,
    kept: dict[str, list[Any]] | None = None,
) -> Streamed:
    """Like write_tree, for output too large to hold at once: `chunks(k, n)` renders share k of n
    (dictionaries of files, each written as soon as it is rendered, in its order), and with
    `processes` > 1 the shares are rendered and written by that many processes at once (forked:
    the callable and what it reads are shared, nothing is pickled). For renderers that cannot fail
    once the catalog is loaded (a failure midway leaves the files written so far, and no manifest
    change). `statuses`: take each file's status right after it is in place, for `record_run`.
    `kept`: files left as they are, not rendered (`kept_files`: those of sidecars a change does
    not affect), with their statuses; they count as unchanged."""
    previous = set(read_manifest(out))
    if processes <= 1:
        parts = [_update(out, chunks(0, 1), statuses)]
    else:
        sys.stdout.flush()
        sys.stderr.flush()
        children = [_fork(out, chunks, share, processes, statuses) for share in range(1, processes)]
        parts = [_update(out, chunks(0, processes), statuses)]
        parts.extend(_join(*child) for child in children)
    if kept:
        parts.append({"changes": {"unchanged": list(kept)}, "files": list(kept), "statuses": kept})
    changes, files = Changes(), []
    taken: dict[str, list[Any]] | None = {}
    for part in parts:
        for kind in ("added", "changed", "unchanged"):
            getattr(changes, kind).extend(part["changes"].get(kind, []))
        files.extend(part["files"])
        taken = None if taken is None or part["statuses"] is None else {**taken, **part["statuses"]}
    changes.removed = sorted(previous - set(files))
    for relative in changes.removed:
        stale = out / relative
        stale.unlink(missing_ok=True)
        _remove_empty_parents(stale.parent, out)
    os.makedirs(out, exist_ok=True)
    atomic_write(out / MANIFEST, json.dumps({"files": sorted(files)}, indent=2) + "\n")
    if taken is not None:
        taken[MANIFEST] = _status(os.path.join(os.fspath(out), MANIFEST))
    return Streamed(changes, files, taken if statuses else None)


def _fork(out: Path, chunks: Chunks, share: int, processes: int, statuses: bool) -> tuple[int, int]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its share, its result on the pipe, and out without any clean-up
        code = 0
        try:
            os.close(read)
            result = orjson.dumps(_update(out, chunks(share, processes), statuses))
        except BaseException as exc:  # reported by the parent
            result, code = orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}), 1
        with contextlib.suppress(BaseException), os.fdopen(write, "wb") as pipe:
            pipe.write(result)
        os._exit(code)
    os.close(write)
    return pid, read


def _join(pid: int, read: int) -> dict[str, Any]:
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    result = orjson.loads(data) if data else {"error": f"exit status {status}"}
    if "error" in result or status != 0:
        raise RuntimeError(f"writing files in process {pid} failed: {result.get('error', status)}")
    return dict(result)


def _update(out: Path, chunks: Iterable[dict[str, str]], take_statuses: bool) -> dict[str, Any]:
    """Compare each file with what is on disk, write it when it differs, in order."""
    root = os.fspath(out)
    present = os.path.isdir(root)
    writer = _TreeWriter(root)
    changes: dict[str, list[str]] = {"added": [], "changed": [], "unchanged": []}
    files: list[str] = []
    statuses: dict[str, list[Any]] = {}
    recent: deque[tuple[int, str, bytes]] = deque()  # the last second's files, for racy digests
    for chunk in chunks:
        for relative, content in chunk.items():
            data = content.encode("utf-8")
            path = os.path.join(root, relative)
            kind = "added"
            if present:
                try:
                    with open(path, "rb") as handle:
                        kind = "unchanged" if handle.read() == data else "changed"
                except (FileNotFoundError, NotADirectoryError):
                    pass
            if kind != "unchanged":
                writer.write_bytes(relative, data)
            changes[kind].append(relative)
            files.append(relative)
            if take_statuses:
                statuses[relative] = _status(path)
                now = time.time_ns()
                recent.append((now, relative, data))
                while recent[0][0] < now - 10 * _RACY_NS:
                    recent.popleft()
    if not take_statuses:
        return {"changes": changes, "files": files, "statuses": None}
    racy = time.time_ns() - _RACY_NS
    for _, relative, data in recent:
        status = statuses[relative]
        if len(status) == 4 and (status[1] >= racy or status[2] >= racy):
            status.append(_digest(data))
    if any(len(s) == 4 and (s[1] >= racy or s[2] >= racy) for s in statuses.values()):
        return {"changes": changes, "files": files, "statuses": None}  # a racy file without its digest
    return {"changes": changes, "files": files, "statuses": statuses}


def cache_dir() -> Path:
    """meshgen's cache: $MESHGEN_CACHE_DIR, or meshgen under $XDG_CACHE_HOME or ~/.cache."""
    explicit = os.environ.get("MESHGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "meshgen"


def _record_path(out: Path) -> Path:
    where = hashlib.sha256(os.fsencode(out.resolve())).hexdigest()[:32]
    return cache_dir() / "generate" / f"{where}.json"


def record_run(
    out: Path,
    statuses: dict[str, list[Any]],
    inputs: str,
    notes: Iterable[str] = (),
    extra: dict[str, Any] | None = None,
) -> None:
    """Remember that `out` now holds the files whose `statuses` are given (`file_statuses`, or
    what `write_streamed` took), rendered from the inputs whose fingerprint is `inputs`, and what
    the run told the user (`notes`). Best effort: without a writable cache directory the next run
    simply renders again. `extra`: what the target needs to render the next run incrementally."""
    record = {"out": str(out.resolve()), "inputs": inputs, "notes": list(notes), "status": statuses, **(extra or {})}
    with contextlib.suppress(OSError):
        atomic_write(_record_path(out), orjson.dumps(record).decode())


def _status(path: str) -> list[int]:
    info = os.stat(path, follow_symlinks=False)
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def file_statuses(out: Path, files: dict[str, str]) -> dict[str, list[Any]]:
    """The status of each of `files` in `out` and of the manifest, as `write_tree` left them."""
    root = os.fspath(out)
    statuses: dict[str, list[Any]] = {relative: _status(os.path.join(root, relative)) for relative in files}
    recent = time.time_ns() - _RACY_NS
    for relative, status in statuses.items():
        if status[1] >= recent or status[2] >= recent:
            status.append(_digest(files[relative].encode("utf-8")))
    # The manifest says which files are meshgen's: it must be untouched too, and is not racy-checked
    # by content (its status alone is enough: it is only read, never trusted, past this check).
    statuses[MANIFEST] = _status(os.path.join(root, MANIFEST))
    return statuses


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def load_record(out: Path) -> dict[str, Any] | None:
    """The record of the last run into `out` (see `record_run`), None without a usable one."""
    try:
        record = orjson.loads(_record_path(out).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("out") != str(out.resolve()):
        return None
    if not isinstance(record.get("status"), dict) or not isinstance(record.get("notes"), list):
        return None
    return record


def unchanged_since(out: Path, inputs: str) -> tuple[int, list[str]] | None:
    """When `out` holds exactly what a run with the fingerprint `inputs` wrote, untouched since:
    the number of files and the notes that run gave. None when anything may differ (another
    fingerprint, a file changed, removed or replaced, no record or a damaged one)."""
    record = load_record(out)
    if record is None or record.get("inputs") != inputs:
        return None
    files, statuses, notes = read_manifest(out), record["status"], record["notes"]
    if not all(isinstance(n, str) for n in notes):
        return None
    if statuses.keys() - {MANIFEST} != set(files) or len(statuses) != len(files) + 1:
        return None
    root = os.fspath(out)
    if not all(_untouched(os.path.join(root, relative), statuses[relative]) for relative in [MANIFEST, *files]):
        return None
    return len(files), notes


def kept_files(out: Path, record: dict[str, Any], keep: set[str]) -> dict[str, list[Any]] | None:
    """The files the last run wrote into `out` under the directories `keep` (sidecars a change
    does not affect), with their recorded statuses, when every one of them and the manifest are
    untouched since that run; None otherwise (then everything is rendered again)."""
    statuses = record["status"]
    root = os.fspath(out)
    if not _untouched(os.path.join(root, MANIFEST), statuses.get(MANIFEST)):
        return None
    kept = {f: statuses.get(f) for f in read_manifest(out) if f.partition("/")[0] in keep}
    if not all(_untouched(os.path.join(root, relative), status) for relative, status in kept.items()):
        return None
    return kept


def _untouched(path: str, recorded: object) -> bool:
    """Whether the file at `path` is the one whose status (and, when racy, digest) was recorded."""
    if not isinstance(recorded, list) or len(recorded) not in (4, 5):
        return False
    try:
        if _status(path) != recorded[:4]:
            return False
        if len(recorded) == 5:
            with open(path, "rb") as handle:
                return bool(_digest(handle.read()) == recorded[4])
    except OSError:
        return False
    return True


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent
