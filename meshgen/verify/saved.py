"""The last `meshgen verify` result against the running local mesh, kept in its state directory
(verify.json) for `meshgen dashboard` to show."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from meshgen.render.output import atomic_write

VERIFY_FILE = "verify.json"


def save_result(state_dir: Path, catalog: Path, kinds: tuple[str, ...], document: dict[str, Any]) -> None:
    """`document` is what `verify --json` prints; the record adds the catalog, the kinds run and when."""
    record = {
        "catalog": str(catalog.resolve()),
        "kinds": list(kinds),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **document,
    }
    atomic_write(state_dir / VERIFY_FILE, json.dumps(record, indent=2) + "\n")


def load_result(state_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((state_dir / VERIFY_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return record if isinstance(record, dict) else None
