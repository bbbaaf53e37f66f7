"""What a running Envoy has loaded, read from its admin interface.

Every file meshgen writes for Envoy to watch carries a `version_info` that is a digest of its
resources, and Envoy reports the version of every resource set it accepted. A file on disk whose
version Envoy does not report is one Envoy refused (or has not read yet): the way to tell that a
swapped config really went live, without trusting that a rename means a reload.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from meshgen.render.envoy import names

_VERSION = re.compile(r'^\s*"version_info": "([^"]*)"', re.MULTILINE)


def file_version(text: str) -> str | None:
    """The version_info of a rendered discovery file; None for files Envoy does not watch."""
    found = _VERSION.search(text)
    return found.group(1) if found else None


def file_versions(files: dict[str, str]) -> dict[str, str]:
    """File name -> version for one sidecar's rendered files (the bootstrap has none)."""
    versions = {}
    for name, text in files.items():
        version = file_version(text)
        if version is not None:
            versions[name] = version
    return versions


def config_dump(admin: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The admin's /config_dump (admin is address:port), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{admin}/config_dump", timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def loaded_versions(dump: dict[str, Any]) -> dict[str, str]:
    """File name -> the version Envoy runs, from a /config_dump."""
    versions: dict[str, str] = {}
    for config in dump.get("configs", []):
        kind = str(config.get("@type", "")).rsplit(".", 1)[-1]
        if kind == "ClustersConfigDump" and config.get("version_info"):
            versions[names.CDS_FILE] = config["version_info"]
        elif kind == "ListenersConfigDump" and config.get("version_info"):
            versions[names.LDS_FILE] = config["version_info"]
        elif kind == "RoutesConfigDump":
            for route in config.get("dynamic_route_configs", []):
                name = route.get("route_config", {}).get("name", "")
                if name:
                    versions[names.rds_file(name)] = route.get("version_info", "")
        elif kind == "SecretsConfigDump":
            for secret in config.get("dynamic_active_secrets", []):
                name = secret.get("name", "")
                if name:
                    versions[names.sds_file(name)] = secret.get("version_info", "")
    return versions


def listener_errors(dump: dict[str, Any]) -> list[str]:
    """Listeners Envoy accepted but could not start (e.g. its address is taken), with the reason."""
    errors = []
    for config in dump.get("configs", []):
        for listener in config.get("dynamic_listeners", []):
            state = listener.get("error_state")
            if state:
                errors.append(f"listener {listener.get('name')}: {state.get('details', 'failed')}")
    return errors


def stale_files(expected: dict[str, str], dump: dict[str, Any]) -> list[str]:
    """Files whose expected version (file -> version) the Envoy of `dump` does not run."""
    loaded = loaded_versions(dump)
    return sorted(name for name, version in expected.items() if loaded.get(name) != version)


def certificates_in_use(admin: str, timeout: float = 2.0) -> tuple[set[int], set[int]] | None:
    """Serial numbers of the leaf and CA certificates the Envoy at `admin` uses in its TLS
    contexts, from /certs; None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{admin}/certs", timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None

    def serials(certificates: list[dict[str, Any]]) -> set[int]:
        return {int(c["serial_number"], 16) for c in certificates if c.get("serial_number")}

    leaves: set[int] = set()
    authorities: set[int] = set()
    for context in data.get("certificates", []):
        leaves |= serials(context.get("cert_chain", [])[:1])
        authorities |= serials(context.get("ca_cert", []))
    return leaves, authorities
