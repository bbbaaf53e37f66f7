"""Helpers for the scenario's testinfra tests: what the generated inventory says each host runs,
and assertion messages that carry the unit's journal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from meshgen.deploy.admin import certificates_in_use
from meshgen.model import Mesh, load_mesh
from meshgen.pki.authority import Authority, has_own_authority, own_authority

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


def gateway_envoys() -> set[str]:
    """Names of the gateway Envoys (sidecars with no app) of the mesh."""
    return {i.id for g in mesh().gateways for i in g.instances}


def _apps_of(host: Any, key: str) -> list[dict[str, Any]]:
    """host_vars[key] of a host, demo apps or real ones; a host of the `mesh` group with a sidecar
    of a service must run at least one app of either kind, so checks that loop over both cannot
    pass by checking nothing."""
    variables = host_vars(host)
    runs_apps = variables.get("demo_app_instances") or variables.get("app_instances")
    only_gateways = {s["name"] for s in variables.get("envoy_sidecars") or []} <= gateway_envoys()
    assert runs_apps or only_gateways or "mesh" not in variables["group_names"], (
        f"{host.backend.get_hostname()} is in group mesh, but its host_vars list no demo_app_instances or app_instances"
    )
    found: list[dict[str, Any]] = variables.get(key) or []
    return found


def demo_apps(host: Any) -> list[dict[str, Any]]:
    return _apps_of(host, "demo_app_instances")


def apps(host: Any) -> list[dict[str, Any]]:
    """The real apps of the host (instances with a `command`), run by the app role."""
    return _apps_of(host, "app_instances")


def app_unit(instance: dict[str, Any]) -> str:
    return f"meshgen-app-{instance['name']}.service"


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


def mesh() -> Mesh:
    return load_mesh(CATALOG)


def group_vars() -> dict[str, Any]:
    return dict(yaml.safe_load((GENERATED / "group_vars" / "all.yml").read_text()))


def ca_dir() -> Path:
    """meshgen's CA of the scenario, on this controller (the generated inventory names it)."""
    return Path(group_vars()["envoy_tls_trust_bundle"]).parent


def authority() -> Authority:
    """The mesh CA with its key, to mint test identities; never created here."""
    directory, security = ca_dir(), mesh().security
    assert has_own_authority(directory), f"no CA in {directory}: the dependency step creates it"
    return own_authority(directory, security.trust_domain, security.ca_lifetime)


def sidecar_admins() -> dict[str, str]:
    """Sidecar (instance id) -> its admin address, for every sidecar of the mesh."""
    return {i.id: f"{i.host.local_address}:{i.admin_port}" for i in mesh().instances}


def serials_in_use() -> dict[str, tuple[set[int], set[int]]]:
    """Sidecar -> (serials of the certificates it presents, serials of the CAs it trusts)."""
    found = {}
    for name, admin in sidecar_admins().items():
        in_use = certificates_in_use(admin)
        assert in_use is not None, f"{name}: admin {admin} does not answer"
        found[name] = in_use
    return found


def run_site(
    *options: str, limit: str = "mesh", extra_vars: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook site.yml with the inventories and settings Molecule's converge uses, on
    `limit`; output captured (stdout and stderr), never checked here."""
    playbook = Path(sys.executable).with_name("ansible-playbook")
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "ansible/collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    command = [
        str(playbook),
        "--inventory", str(inventory_dir()),
        "--inventory", str(GENERATED / "inventory.yml"),
        "--limit", limit,
        "--extra-vars", f"@{SETTINGS}",
        *(["--extra-vars", json.dumps(extra_vars)] if extra_vars else []),
        *options,
        str(SITE),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)


def main_pid(host: Any, unit: str) -> str:
    return str(host.check_output(f"systemctl show --property MainPID --value {unit}"))


def other_host(host: Any, name: str) -> Any:
    """Another host of the inventory the verifier was given, reached the same way as `host`."""
    return host.get_host(f"ansible://{name}", ansible_inventory=host.backend.ansible_inventory)
