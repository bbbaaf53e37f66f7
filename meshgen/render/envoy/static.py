"""One self-contained Envoy config: a sidecar's bootstrap with its dynamic resources inlined.

Used where no files can be swapped under a running Envoy (an ECS task gets its whole config at
start) and to make Envoy's validate mode check every resource.
"""

from __future__ import annotations

from typing import Any

from meshgen.render.document import parse_config
from meshgen.render.envoy import names

_HCM_NAME = "envoy.filters.network.http_connection_manager"


def _resources(text: str) -> list[dict[str, Any]]:
    document = parse_config(text)
    return [{k: v for k, v in r.items() if k != "@type"} for r in document["resources"]]


def static_bootstrap(files: dict[str, str]) -> dict[str, Any]:
    """From one sidecar's rendered files (file name -> text) to a static bootstrap."""
    config: dict[str, Any] = parse_config(files[names.BOOTSTRAP_FILE])
    routes = {}
    for file in names.RDS_FILES.values():
        if file in files:
            for route_config in _resources(files[file]):
                routes[route_config["name"]] = route_config
    listeners = _resources(files[names.LDS_FILE])
    for listener in listeners:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["name"] == _HCM_NAME:
                    hcm = network_filter["typed_config"]
                    hcm["route_config"] = routes[hcm.pop("rds")["route_config_name"]]
    config.pop("dynamic_resources")
    static = config.setdefault("static_resources", {})
    static["listeners"] = listeners
    static["clusters"] = static.get("clusters", []) + _resources(files[names.CDS_FILE])
    return config
