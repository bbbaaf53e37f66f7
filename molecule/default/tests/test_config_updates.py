"""Config updates on a running sidecar (caller-1's): check mode shows a route change and changes
nothing; the route change goes live without a restart; a config Envoy rejects is refused, and the
sidecar keeps serving the config it has."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from conftest import GENERATED, journal, run_site

from meshgen.verify.http import send

testinfra_hosts = ["caller-1"]

HOST = "caller-1"
SIDECAR = "caller.v1.caller-1"
UNIT = f"envoy@{SIDECAR}.service"
# caller-1's local address (127.0.80.1 with the last octet's high bit flipped), see the README.
ADMIN = ("127.0.80.129", 15000)
OUTBOUND = ("127.0.80.129", 15001)
ROUTES = "rds-outbound.yaml"
LIVE_ROUTES = f"/etc/envoy/{SIDECAR}/{ROUTES}"
STAGED_ROUTES = f"/var/lib/envoy/staging/{SIDECAR}/{ROUTES}"
# Push sidecar configs only: the envoy role's config tasks.
PUSH = ("--tags", "envoy_config")


def _site(envoy_source: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook site.yml on caller-1 with another source of sidecar configs; `options`
    such as --tags envoy_config."""
    result = run_site(*options, limit=HOST, extra_vars={"envoy_config_source_dir": str(envoy_source)})
    assert re.search(rf"^{HOST}\s+: ok=[1-9]", result.stdout, re.MULTILINE), result.stdout + result.stderr
    return result


def _source_with(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the generated sidecar configs with `edit` applied to each route of caller-1's
    outbound route configuration (written back as JSON, which is YAML, like meshgen writes)."""
    source = tmp_path / "envoy"
    shutil.copytree(GENERATED / "envoy", source)
    path = source / SIDECAR / ROUTES
    document = yaml.safe_load(path.read_text())
    for route_config in document["resources"]:
        for virtual_host in route_config["virtual_hosts"]:
            for route in virtual_host["routes"]:
                edit(route["route"])
    path.write_text(json.dumps(document, indent=2) + "\n")
    return source


def _set_timeout(value: str) -> Callable[[dict[str, Any]], None]:
    def edit(action: dict[str, Any]) -> None:
        assert "timeout" in action
        action["timeout"] = value

    return edit


def _misspell_timeout(action: dict[str, Any]) -> None:
    action["timeuot"] = action.pop("timeout")


def _main_pid(host) -> str:
    return host.check_output(f"systemctl show --property MainPID --value {UNIT}")


def _routes_loaded(pattern: str, wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        reply = send(*ADMIN, "/config_dump?resource=dynamic_route_configs")
        if re.search(pattern, json.dumps(reply.body)):
            return True
        time.sleep(0.25)
    return False


def test_check_mode_shows_a_route_change_and_changes_nothing(host, tmp_path):
    live, staged, pid = host.file(LIVE_ROUTES).content_string, host.file(STAGED_ROUTES).content_string, _main_pid(host)
    changed = _source_with(tmp_path, _set_timeout("3s"))

    result = _site(changed, "--check", "--diff")  # every role, in check mode

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r'^\+\s+"timeout": "3s"', result.stdout, re.MULTILINE), output
    assert re.search(rf"^{HOST}\s+: ok=\d+\s+changed=[1-9]", result.stdout, re.MULTILINE), output
    assert host.file(LIVE_ROUTES).content_string == live
    assert host.file(STAGED_ROUTES).content_string == staged
    assert _main_pid(host) == pid


def test_route_change_goes_live_without_a_restart(host, tmp_path):
    pid = _main_pid(host)
    changed = _source_with(tmp_path, _set_timeout("3s"))
    try:
        result = _site(changed, *PUSH)
        assert result.returncode == 0, result.stdout + result.stderr
        assert host.file(LIVE_ROUTES).content_string == (changed / SIDECAR / ROUTES).read_text()
        assert _routes_loaded(r'"timeout": "3s"'), f"Envoy did not load the new routes\n{journal(host, UNIT)}"
        assert _main_pid(host) == pid, f"{UNIT} restarted for a route change\n{journal(host, UNIT)}"
    finally:
        restored = _site(GENERATED / "envoy", *PUSH)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert host.file(LIVE_ROUTES).content_string == (GENERATED / "envoy" / SIDECAR / ROUTES).read_text()
    assert _routes_loaded(r'"timeout": "2s"')
    assert _main_pid(host) == pid


def test_broken_config_is_refused_and_the_old_one_keeps_serving(host, tmp_path):
    before = host.file(LIVE_ROUTES).content_string
    pid = _main_pid(host)
    broken = _source_with(tmp_path, _misspell_timeout)

    result = _site(broken, *PUSH)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"Envoy rejected the new config of sidecar {SIDECAR}" in output, output
    assert "timeuot" in output, output  # Envoy's own message names the bad field
    assert host.file(LIVE_ROUTES).content_string == before
    assert before == (GENERATED / "envoy" / SIDECAR / ROUTES).read_text()
    assert _main_pid(host) == pid, journal(host, UNIT)
    reply = send(*OUTBOUND, "/", headers={"Host": "callee"})
    assert reply.status == 200, f"{reply}\n{journal(host, UNIT)}"
