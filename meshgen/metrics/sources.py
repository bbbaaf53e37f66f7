"""Where `meshgen top` reads its samples: every sidecar's stats listener, or the mesh's Prometheus.

Both give the same series, with the labels each sidecar puts on its metrics; `red` turns two
samples into rates. From the sidecars, the two samples are taken `window` apart, now; from
Prometheus, they are its stored samples at the two ends of a window ending now.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from meshgen.errors import UserError
from meshgen.metrics.exposition import Snapshot, key, parse
from meshgen.metrics.red import METRICS, Samples
from meshgen.model import Mesh
from meshgen.model.mesh import Instance
from meshgen.render.envoy.metrics import STATS_PATH

# Envoy filters /stats/prometheus by its own stat names: the request counters by response class
# and the request time histograms, of connection managers and of clusters.
_ENVOY_FILTER = r"(downstream|upstream)_rq_([0-9]xx|time)$"


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _get(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode("utf-8"))


class SidecarSource:
    """Each sidecar's and gateway's stats listener, at its host's address: what Prometheus scrapes."""

    name = "sidecars"

    def __init__(self, mesh: Mesh, timeout: float = 2.0) -> None:
        self.mesh = mesh
        self.timeout = timeout

    def url(self, instance: Instance) -> str:
        query = urllib.parse.urlencode({"filter": _ENVOY_FILTER})
        return f"http://{_host(instance.host.address)}:{instance.stats_port}{STATS_PATH}?{query}"

    def _scrape(self, instance: Instance) -> Snapshot | None:
        try:
            return parse(_get(self.url(instance), self.timeout), METRICS)
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def snapshot(self) -> tuple[Snapshot, set[str]]:
        """Every sidecar's series now, and the instances that answered."""
        instances = self.mesh.proxies
        with ThreadPoolExecutor(max_workers=min(16, max(1, len(instances)))) as pool:
            scraped = list(pool.map(self._scrape, instances))
        merged: Snapshot = {}
        reached = set()
        for instance, samples in zip(instances, scraped, strict=True):
            if samples is not None:
                merged.update(samples)
                reached.add(instance.id)
        return merged, reached

    def samples(self, seconds: float) -> Samples:
        before, first = self.snapshot()
        started = time.monotonic()
        time.sleep(seconds)
        after, second = self.snapshot()
        return Samples(before, after, time.monotonic() - started, first & second)


class PrometheusSource:
    """The mesh's Prometheus (`mesh.metrics`), through its HTTP API."""

    name = "prometheus"

    def __init__(self, mesh: Mesh, timeout: float = 5.0) -> None:
        assert mesh.metrics is not None
        self.mesh = mesh
        self.timeout = timeout
        self.url = f"http://{_host(mesh.metrics.prometheus_address)}:{mesh.metrics.prometheus_port}"

    def ready(self) -> bool:
        try:
            _get(f"{self.url}/-/ready", 1.0)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector; at `at` (Unix time), else now."""
        parameters = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode(parameters)}"
        try:
            document = json.loads(_get(url, self.timeout))
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode(errors="replace")
            raise UserError(f"Prometheus at {self.url} refused {promql!r}: {answer}") from None
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise UserError(f"Prometheus at {self.url} did not answer: {exc}") from None
        if document.get("status") != "success":
            raise UserError(f"Prometheus at {self.url}: {document.get('error', document)}")
        return list(document["data"]["result"])

    def snapshot(self, at: float) -> tuple[Snapshot, set[str]]:
        """The series as Prometheus last scraped them at `at`, and the instances it scraped then."""
        mesh = self.mesh.name
        selector = f'{{__name__=~"{"|".join(METRICS)}",mesh="{mesh}"}}'
        samples: Snapshot = {}
        for item in self.query(selector, at):
            labels = {k: v for k, v in item["metric"].items() if k not in ("__name__", "job")}
            samples[key(item["metric"]["__name__"], labels)] = float(item["value"][1])
        up = self.query(f'up{{mesh="{mesh}"}} == 1', at)
        return samples, {item["metric"].get("instance", "") for item in up}

    def samples(self, seconds: float, end: float | None = None) -> Samples:
        end = time.time() if end is None else end
        before, first = self.snapshot(end - seconds)
        after, second = self.snapshot(end)
        return Samples(before, after, seconds, first & second)
