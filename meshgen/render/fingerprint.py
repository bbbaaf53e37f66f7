"""A digest of everything `meshgen generate` renders from, so an unchanged run can stop early.

The inputs are the catalog's files (their names and bytes), the options of the target, where the
output goes, and the renderer itself: the files of the meshgen package (name, size, mtime: an
edited template or module changes it) and the versions of the libraries that serialise. A target
whose rendering reads anything else (a CA directory) must not use it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import orjson
import yaml

from meshgen import __version__
from meshgen.catalog.source import catalog_files
from meshgen.errors import CatalogError

_PACKAGE = Path(__file__).resolve().parents[1]


def _package_files() -> Iterable[str]:
    for directory, subdirectories, names in os.walk(_PACKAGE):
        subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                path = os.path.join(directory, name)
                info = os.stat(path)
                yield f"{os.path.relpath(path, _PACKAGE)}:{info.st_size}:{info.st_mtime_ns}"


def settings_fingerprint(settings: Iterable[str]) -> str:
    """The digest of everything but the catalog: meshgen itself and `settings`."""
    digest = hashlib.sha256()
    for part in (__version__, orjson.__version__, yaml.__version__, *_package_files(), *settings):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


def fingerprint(catalog: Path, settings: Iterable[str]) -> str | None:
    """The digest of the catalog at `catalog` rendered with `settings`; None when the catalog
    cannot be read (the normal path then reports why)."""
    digest = hashlib.sha256(settings_fingerprint(settings).encode())
    try:
        for file in catalog_files(catalog):
            data = file.read_bytes()
            digest.update(f"{file}:{len(data)}\0".encode())
            digest.update(data)
    except (CatalogError, OSError):
        return None
    return digest.hexdigest()
