"""The local mesh's Prometheus: Debian's `prometheus` binary, scraping every sidecar's stats listener.

Its configuration names a targets file (`file_sd_configs`) that meshgen rewrites atomically on
every `up`: Prometheus notices the new file and scrapes new instances, and stops scraping removed
ones, without a restart. The configuration itself only changes with the state directory, so the
process restarts only when its command line does. Its data lives in the state directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from meshgen.deploy.local.plan import Spec
from meshgen.model import Mesh
from meshgen.render import prometheus as prometheus_config
from meshgen.render.output import atomic_write

PROMETHEUS_DIR = "prometheus"
CONFIG_FILE = "prometheus.yml"
TARGETS_FILE = "targets.json"
# Often enough for a live view (`meshgen top`, a dashboard refreshing every few seconds), on a mesh
# of a few dozen sidecars on one machine.
SCRAPE_INTERVAL = "2s"
RETENTION = "24h"  # a local mesh's history: a day is plenty, and the state directory stays small
INSTALL_HINT = "apt-get install prometheus"


def find_prometheus() -> str | None:
    """$MESHGEN_PROMETHEUS if set, else `prometheus` on PATH, else Debian's /usr/bin/prometheus."""
    explicit = os.environ.get("MESHGEN_PROMETHEUS")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("prometheus") or "/usr/bin/prometheus"
    return found if os.access(found, os.X_OK) else None


def prometheus_url(mesh: Mesh) -> str | None:
    metrics = mesh.metrics
    if metrics is None:
        return None
    return f"http://{prometheus_config.host_port(metrics.prometheus_address, metrics.prometheus_port)}"


def runs_prometheus(mesh: Mesh) -> bool:
    """`up` starts a Prometheus: the catalog asks for one and this machine has the binary."""
    return mesh.metrics is not None and find_prometheus() is not None


def notes(mesh: Mesh) -> list[str]:
    if mesh.metrics is None or find_prometheus() is not None:
        return []
    return [
        f"mesh.metrics asks for Prometheus at {mesh.metrics.prometheus_address}:{mesh.metrics.prometheus_port}, "
        f"but this machine has no prometheus binary: running without it ({INSTALL_HINT}, then `meshgen up` "
        "again); `meshgen top` reads the sidecars directly"
    ]


def scrape_config(state_dir: Path) -> dict[str, Any]:
    return prometheus_config.scrape_config(str(state_dir.resolve() / PROMETHEUS_DIR / TARGETS_FILE), SCRAPE_INTERVAL)


def write_files(mesh: Mesh, state_dir: Path) -> None:
    """The configuration and the targets, before Prometheus starts or to change what it scrapes."""
    if not runs_prometheus(mesh):
        return
    directory = state_dir / PROMETHEUS_DIR
    # JSON is YAML: Prometheus reads the configuration file as it is.
    atomic_write(directory / CONFIG_FILE, json.dumps(scrape_config(state_dir), indent=2) + "\n")
    atomic_write(directory / TARGETS_FILE, json.dumps(prometheus_config.targets(mesh), indent=2) + "\n")


def spec(mesh: Mesh, state_dir: Path) -> Spec | None:
    binary = find_prometheus()
    if mesh.metrics is None or binary is None:
        return None
    directory = state_dir.resolve() / PROMETHEUS_DIR
    address = (mesh.metrics.prometheus_address, mesh.metrics.prometheus_port)
    argv = [
        binary,
        f"--config.file={directory / CONFIG_FILE}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={prometheus_config.host_port(*address)}",
        "--log.level=warn",
    ]
    return Spec("prometheus", "prometheus", argv, {}, address)
