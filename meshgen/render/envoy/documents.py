"""What every Envoy of the mesh is made of: documents (a file's content before it is written,
with the header that explains it), discovery files Envoy watches, and the order they are swapped."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from meshgen.render.envoy import names


def file_order(name: str) -> tuple[int, str]:
    """Order in which a running Envoy should see replaced files: secrets before the clusters and
    listeners that use them, clusters before the routes that use them, routes before the
    listeners that name them, the bootstrap last."""
    if name.startswith("sds-"):
        rank = 0
    elif name == names.CDS_FILE:
        rank = 1
    elif name.startswith("rds-"):
        rank = 2
    elif name == names.LDS_FILE:
        rank = 3
    else:
        rank = 4
    return rank, name


def discovery_file(type_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A file Envoy watches: a discovery response whose version is a digest of its resources.
    Envoy reports the version it has loaded, so a file it refused shows as a version mismatch."""
    typed = [{"@type": type_url, **resource} for resource in resources]
    digest = hashlib.sha256(orjson.dumps(typed, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {"version_info": digest, "resources": typed}


@dataclass(frozen=True)
class SidecarDocument:
    """One file of a sidecar before serialisation: its document and the header that explains it."""

    document: dict[str, Any]
    header: list[str]
