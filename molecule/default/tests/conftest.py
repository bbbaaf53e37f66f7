"""Helpers for the scenario's testinfra tests: what the generated inventory says each host runs,
and assertion messages that carry the unit's journal."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
CATALOG = SCENARIO / "catalog.yaml"
GENERATED = SCENARIO / ".generated"
SETTINGS = SCENARIO / "settings.yml"
SITE = REPO / "ansible" / "site.yml"


def inventory_dir() -> Path:
    """Molecule's inventory (its hosts plus the generated inventory, group_vars and host_vars)."""
    inventory_file = os.environ.get("MOLECULE_INVENTORY_FILE")
    if inventory_file:
        return Path(inventory_file).parent
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"


def host_vars(host: Any) -> dict[str, Any]:
    return host.ansible.get_variables()


def _entries(host: Any, key: str) -> list[dict[str, Any]]:
    """host_vars[key] of a host; on a host of the `mesh` group it must not be empty, so a check
    that loops over it cannot pass by checking nothing."""
    variables = host_vars(host)
    found: list[dict[str, Any]] = variables.get(key) or []
    assert found or "mesh" not in variables["group_names"], (
        f"{host.backend.get_hostname()} is in group mesh, but its host_vars list no {key}"
    )
    return found


def sidecars(host: Any) -> list[dict[str, Any]]:
    return _entries(host, "envoy_sidecars")


def demo_apps(host: Any) -> list[dict[str, Any]]:
    return _entries(host, "demo_app_instances")


def journal(host: Any, unit: str, lines: int = 50) -> str:
    return host.run(f"journalctl -u {unit} --no-pager -n {lines}").stdout


def assert_unit_running(host: Any, unit: str) -> None:
    service = host.service(unit)
    running, enabled = service.is_running, service.is_enabled
    assert running and enabled, (
        f"{unit} on {host.backend.get_hostname()}: running={running} enabled={enabled}\n"
        f"--- journalctl -u {unit}\n{journal(host, unit)}"
    )


_SS_LINE = re.compile(r"^\S+\s+\d+\s+\d+\s+(?P<local>\S+)\s+\S+\s*(?P<extra>.*)$")


def listeners(host: Any) -> dict[str, str]:
    """Listening TCP sockets, `address:port` -> socket inode. The hosts share one network
    namespace, so every host sees every host's sockets."""
    found = {}
    for line in host.check_output("ss -Hltne").splitlines():
        match = _SS_LINE.match(line.strip())
        inode = re.search(r"\bino:(\d+)", match["extra"]) if match else None
        if match and inode:
            found[match["local"]] = inode[1]
    return found


def socket_inodes(host: Any, unit: str) -> set[str]:
    """Inodes of the sockets the unit's main process holds. Root in the container may not read
    another user's /proc/PID/fd (no CAP_SYS_PTRACE), so read it as the unit's user."""
    properties = dict(
        line.split("=", 1)
        for line in host.check_output(f"systemctl show --property MainPID --property User {unit}").splitlines()
    )
    pid, user = properties.get("MainPID", "0"), properties.get("User") or "root"
    if pid == "0":
        return set()
    links = host.run(f"runuser -u {user} -- find /proc/{pid}/fd -lname 'socket:*' -printf '%l\\n'").stdout
    return set(re.findall(r"socket:\[(\d+)\]", links))


def assert_listening(host: Any, address: str, unit: str) -> None:
    """`address` is a listening socket of the unit's main process on this host."""
    sockets = listeners(host)
    held = socket_inodes(host, unit)
    assert address in sockets and sockets[address] in held, (
        f"{host.backend.get_hostname()}: expected {unit} listening on {address}; listening: {sorted(sockets)}; "
        f"{unit} holds {len(held)} sockets\n--- journalctl -u {unit}\n{journal(host, unit)}"
    )
