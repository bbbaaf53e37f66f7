"""generate --target onprem: inventory, groups, per-host data and the sidecar configs for the roles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.errors import UserError
from meshgen.model import load_mesh
from meshgen.render.ansible import OnpremOptions, render_onprem
from tests.support import REPO

SHOP = REPO / "examples/shop/catalog.yaml"
MOLECULE = REPO / "molecule/default/catalog.yaml"


def test_inventory_groups_hosts_by_role_service_and_version() -> None:
    files = render_onprem(load_mesh(SHOP), OnpremOptions())
    groups = yaml.safe_load(files["inventory.yml"])["all"]["children"]
    assert sorted(groups["mesh"]["hosts"]) == sorted(
        ["web-1", "users-1", "users-2", "catalog-1", "checkout-1", "orders-1", "orders-2", "inventory-1", "inventory-2"]
    )
    assert groups["mesh"]["hosts"]["users-2"] == {"ansible_host": "127.0.10.3"}
    assert list(groups["trace_collector"]["hosts"]) == ["tracing-1"]
    assert sorted(groups["service_users"]["hosts"]) == ["users-1", "users-2"]
    assert list(groups["users_v2"]["hosts"]) == ["users-2"]
    assert sorted(groups["inventory_v1"]["hosts"]) == ["inventory-1", "inventory-2"]


def test_host_vars_carry_sidecars_and_demo_apps() -> None:
    files = render_onprem(load_mesh(SHOP), OnpremOptions())
    users = yaml.safe_load(files["host_vars/users-2.yml"])
    assert users["envoy_sidecars"] == [
        {"name": "users.v2.users-2", "service": "users", "version": "v2", "admin": "127.0.10.131:15000"}
    ]
    assert users["demo_app_instances"][0]["listen"] == "127.0.10.131:8080"
    collector = yaml.safe_load(files["host_vars/tracing-1.yml"])
    assert collector["trace_collector_listen"] == "127.0.10.9:9411" and collector["envoy_sidecars"] == []
    assert yaml.safe_load(files["group_vars/all.yml"])["envoy_config_dir"] == "/etc/envoy"


def test_sidecar_configs_point_at_the_on_host_directory() -> None:
    files = render_onprem(load_mesh(SHOP), OnpremOptions(config_root="/srv/envoy"))
    bootstrap = files["envoy/users.v1.users-1/envoy.yaml"]
    assert '"path": "/srv/envoy/users.v1.users-1/cds.yaml"' in bootstrap
    assert yaml.safe_load(files["group_vars/all.yml"])["envoy_config_dir"] == "/srv/envoy"


def test_docker_connection_names_containers_after_hosts() -> None:
    files = render_onprem(load_mesh(MOLECULE), OnpremOptions(connection="docker"))
    hosts = yaml.safe_load(files["inventory.yml"])["all"]["children"]["mesh"]["hosts"]
    assert hosts["callee-1"] == {"ansible_connection": "community.docker.docker", "ansible_host": "callee-1"}


def test_catalog_without_hosts_cannot_go_on_prem(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("mesh: {name: x}\nservices:\n  a: {port: 80, versions: {v1: {instances: [a-1]}}}\n")
    with pytest.raises(UserError, match=r"on-prem hosts need real addresses"):
        render_onprem(load_mesh(path), OnpremOptions())


def test_cli_generate_onprem_writes_a_usable_tree(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["generate", str(MOLECULE), "--target", "onprem", "--connection", "docker", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "Ansible inventory, 3 sidecars" in result.output
    assert sorted(p.name for p in (tmp_path / "envoy").iterdir()) == [
        "callee.v1.callee-1",
        "callee.v2.callee-2",
        "caller.v1.caller-1",
    ]
    assert (tmp_path / "host_vars" / "collector-1.yml").exists()
