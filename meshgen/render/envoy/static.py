"""One self-contained Envoy config: a sidecar's bootstrap with its dynamic resources inlined.

Used where no files can be swapped under a running Envoy (an ECS task gets its whole config at
start) and to make Envoy's validate mode check every resource. SDS secrets become static secrets:
they still name the certificate files, read once at start.
"""

from __future__ import annotations

from typing import Any

from meshgen.render.document import parse_config
from meshgen.render.envoy import names

_HCM_NAME = "envoy.filters.network.http_connection_manager"


def _resources(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "@type"} for r in document["resources"]]


def _with_inline_routes(listener: dict[str, Any], routes: dict[str, Any]) -> dict[str, Any]:
    """The listener with each connection manager's RDS reference replaced by the route config
    it names. Builds new dicts along the way: the documents passed in stay as they were."""
    chains = []
    for chain in listener["filter_chains"]:
        filters = []
        for network_filter in chain["filters"]:
            typed_config = network_filter["typed_config"]
            if network_filter["name"] == _HCM_NAME and "rds" in typed_config:
                hcm = {k: v for k, v in typed_config.items() if k != "rds"}
                hcm["route_config"] = routes[typed_config["rds"]["route_config_name"]]
                filters.append({**network_filter, "typed_config": hcm})
            else:
                filters.append(network_filter)
        chains.append({**chain, "filters": filters})
    return {**listener, "filter_chains": chains}


def _static_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A secret as static configuration: Envoy watches no directory for those."""
    inner = {
        k: {f: v for f, v in body.items() if f != "watched_directory"} for k, body in secret.items() if k != "name"
    }
    return {"name": secret["name"], **inner}


def _with_static_secret_refs(node: Any) -> Any:
    """`node` with every SDS reference to a secret file replaced by a reference to the static
    secret of that name. Builds new containers: the documents passed in stay as they were."""
    if isinstance(node, dict):
        if "sds_config" in node and set(node) == {"name", "sds_config"}:
            return {"name": node["name"]}
        return {k: _with_static_secret_refs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_with_static_secret_refs(item) for item in node]
    return node


def static_bootstrap_from_documents(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """From one sidecar's documents (file name -> parsed document) to a static bootstrap."""
    config = {k: v for k, v in documents[names.BOOTSTRAP_FILE].items() if k != "dynamic_resources"}
    routes = {}
    for file in sorted(documents):
        if file.startswith("rds-"):
            for route_config in _resources(documents[file]):
                routes[route_config["name"]] = route_config
    listeners = [_with_inline_routes(listener, routes) for listener in _resources(documents[names.LDS_FILE])]
    static = dict(config.get("static_resources", {}))
    static["listeners"] = static.get("listeners", []) + listeners
    static["clusters"] = static.get("clusters", []) + _resources(documents[names.CDS_FILE])
    secrets = [
        _static_secret(s) for file in sorted(documents) if file.startswith("sds-") for s in _resources(documents[file])
    ]
    if secrets:
        static["listeners"] = _with_static_secret_refs(static["listeners"])
        static["clusters"] = _with_static_secret_refs(static["clusters"])
        static["secrets"] = secrets
    config["static_resources"] = static
    return config


def static_bootstrap(files: dict[str, str]) -> dict[str, Any]:
    """From one sidecar's rendered files (file name -> text) to a static bootstrap."""
    return static_bootstrap_from_documents({name: parse_config(text) for name, text in files.items()})
