"""Kernel limits a local mesh runs into before anything else: inotify instances.

Envoy watches each file it reads its config from with an inotify instance of its own (every
discovery file, and the directory of each certificate it reloads), about eight per sidecar.
Linux allows 128 instances per user by default, shared by every process of that user: a mesh
of 20 sidecars needs more. Without this check the 17th Envoy dies at start with an error
that names no file; with it, `up` says what the mesh needs and how to allow it.
"""

from __future__ import annotations

import os
from pathlib import Path

from meshgen.errors import UserError
from meshgen.render.envoy import names

MAX_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")


def watchers_needed(files: dict[str, str]) -> int:
    """Inotify instances the Envoys of rendered `files` (`<sidecar>/<file>` -> content) hold:
    one per discovery file, one more per certificate directory an SDS file watches."""
    needed = 0
    for relative in files:
        name = relative.rsplit("/", 1)[-1]
        if name == names.BOOTSTRAP_FILE:
            continue
        needed += 2 if name.startswith("sds-") else 1
    return needed


def inotify_in_use(uid: int) -> int:
    """Inotify instances held by processes of `uid` now (those whose descriptors we may read)."""
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != uid:
                continue
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) == "anon_inode:inotify":
                    count += 1
        except OSError:
            continue  # gone, or not ours to read
    return count


def held_by(pids: list[int]) -> int:
    """Inotify instances these processes hold."""
    count = 0
    for pid in pids:
        try:
            count += sum(1 for fd in Path(f"/proc/{pid}/fd").iterdir() if os.readlink(fd) == "anon_inode:inotify")
        except OSError:
            continue
    return count


def check_inotify(needed: int, *, releasing: int = 0) -> None:
    """Refuse to start Envoys that would run out of inotify instances; `releasing`: instances
    that processes about to stop hold now."""
    try:
        limit = int(MAX_INSTANCES.read_text())
    except (OSError, ValueError):
        return  # not Linux, or not readable: Envoy itself will say
    in_use = max(0, inotify_in_use(os.getuid()) - releasing)
    if in_use + needed <= limit:
        return
    wanted = max(1024, 2 ** (in_use + needed).bit_length())
    raise UserError(
        f"the sidecars need {needed} inotify instances (Envoy watches each config file with one), and this "
        f"user already holds {in_use} of the {limit} Linux allows: raise the limit, e.g. "
        f"`sudo sysctl fs.inotify.max_user_instances={wanted}` (and in /etc/sysctl.d/ to keep it)"
    )
