"""What a mesh's Prometheus scrapes, for every target that runs one: the local mesh writes it to a
targets file in its state directory, the on-prem prometheus role to one on the monitoring host.

Targets go through `file_sd_configs`: Prometheus re-reads the file when it changes, so a mesh that
gains or loses instances is scraped accordingly without a restart or a reload.
"""

from __future__ import annotations

from typing import Any

from meshgen.model import Mesh
from meshgen.render.envoy.metrics import STATS_PATH, labels

JOB = "meshgen-sidecars"


def host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def targets(mesh: Mesh) -> list[dict[str, Any]]:
    """Every sidecar's and gateway's stats listener, labelled as its metrics are (so `up` is too)."""
    return [
        {"targets": [host_port(instance.host.address, instance.stats_port)], "labels": labels(mesh, instance)}
        for instance in mesh.proxies
    ]


def scrape_job() -> dict[str, Any]:
    """The sidecars' scrape job, without where its targets come from."""
    return {
        "job_name": JOB,
        "metrics_path": STATS_PATH,
        # Each sidecar labels its metrics with its own instance id (and mesh, service, version);
        # those win over Prometheus's host:port, and the targets carry the same.
        "honor_labels": True,
    }


def scrape_config(targets_file: str, interval: str) -> dict[str, Any]:
    """A whole Prometheus configuration: one job, the sidecars of `targets_file`, every `interval`."""
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{**scrape_job(), "file_sd_configs": [{"files": [targets_file]}]}],
    }
