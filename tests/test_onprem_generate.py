"""generate --target onprem: inventory, groups, per-host data and the sidecar configs for the roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.errors import UserError
from meshgen.model import load_mesh
from meshgen.model.addresses import instance_environment
from meshgen.pki.certificates import load_certs
from meshgen.render.ansible import OnpremOptions, render_onprem
from tests.support import REPO, load_inventory_yaml

SHOP = REPO / "examples/shop/catalog.yaml"
MOLECULE = REPO / "molecule/default/catalog.yaml"


def test_inventory_groups_hosts_by_role_service_and_version() -> None:
    files = render_onprem(load_mesh(SHOP), OnpremOptions())
    groups = yaml.safe_load(files["inventory.yml"])["all"]["children"]
    services = ["web-1", "users-1", "users-2", "catalog-1", "checkout-1", "orders-1", "orders-2", "inventory-1"]
    assert sorted(groups["mesh"]["hosts"]) == sorted([*services, "inventory-2", "gateway-1"])
    assert list(groups["gateway_public"]["hosts"]) == ["gateway-1"]
    assert groups["mesh"]["hosts"]["users-2"] == {"ansible_host": "127.0.10.3"}
    assert list(groups["trace_collector"]["hosts"]) == ["tracing-1"]
    assert sorted(groups["service_users"]["hosts"]) == ["users-1", "users-2"]
    assert list(groups["users_v2"]["hosts"]) == ["users-2"]
    assert sorted(groups["inventory_v1"]["hosts"]) == ["inventory-1", "inventory-2"]


def test_host_vars_carry_sidecars_and_demo_apps() -> None:
    files = render_onprem(load_mesh(SHOP), OnpremOptions())
    users = yaml.safe_load(files["host_vars/users-2.yml"])
    assert users["envoy_sidecars"] == [
        {
            "name": "users.v2.users-2",
            "service": "users",
            "version": "v2",
            "admin": "127.0.10.131:15000",
            "spiffe_id": "spiffe://shop/service/users",
        }
    ]
    assert users["demo_app_instances"][0]["listen"] == "127.0.10.131:8080"
    collector = yaml.safe_load(files["host_vars/tracing-1.yml"])
    assert collector["trace_collector_listen"] == "127.0.10.9:9411" and collector["envoy_sidecars"] == []
    assert yaml.safe_load(files["group_vars/all.yml"])["envoy_config_dir"] == "/etc/envoy"
    gateway = yaml.safe_load(files["host_vars/gateway-1.yml"])
    assert gateway["envoy_sidecars"][0]["spiffe_id"] == "spiffe://shop/gateway/public"
    assert gateway["demo_app_instances"] == []  # a gateway runs Envoy alone


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


def _group_vars(files: dict[str, str]) -> dict[str, object]:
    return dict(yaml.safe_load(files["group_vars/all.yml"]))


def test_tls_data_names_identities_the_tls_root_and_meshgen_ca_outside_the_tree() -> None:
    options = OnpremOptions(tls_root="/srv/tls", ca_dir="/home/ops/ca/molecule")
    files = render_onprem(load_mesh(MOLECULE), options)
    assert {k: v for k, v in _group_vars(files).items() if k.startswith("envoy_tls_")} == {
        "envoy_tls_mode": "strict",
        "envoy_tls_root": "/srv/tls",
        "envoy_tls_leaf_lifetime": 86_400,
        "envoy_tls_ca_cert": "/home/ops/ca/molecule/active/ca.pem",
        "envoy_tls_ca_key": "/home/ops/ca/molecule/active/ca-key.pem",
        "envoy_tls_trust_bundle": "/home/ops/ca/molecule/trust.pem",
    }
    caller = yaml.safe_load(files["host_vars/caller-1.yml"])["envoy_sidecars"][0]
    assert caller["spiffe_id"] == "spiffe://molecule/service/caller"
    assert (
        '"filename": "/srv/tls/caller.v1.caller-1/current/key.pem"'
        in files["envoy/caller.v1.caller-1/sds-identity.yaml"]
    )


def _catalog_with_security(tmp_path: Path, security: str) -> Path:
    text = MOLECULE.read_text().replace(
        "mesh:\n  name: molecule\n", f"mesh:\n  name: molecule\n  security: {security}\n"
    )
    assert "security:" in text
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_tls_data_for_the_catalog_own_ca_names_its_files(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("")
    (tmp_path / "ca-key.pem").write_text("")
    catalog = _catalog_with_security(tmp_path, "{ca: {cert: ca.pem, key: ca-key.pem}, leaf_lifetime: 90m}")
    variables = _group_vars(render_onprem(load_mesh(catalog), OnpremOptions(ca_dir="/unused")))
    assert variables["envoy_tls_ca_cert"] == str(tmp_path / "ca.pem")
    assert variables["envoy_tls_ca_key"] == str(tmp_path / "ca-key.pem")
    assert "envoy_tls_trust_bundle" not in variables  # the role trusts the root, the last certificate
    assert variables["envoy_tls_leaf_lifetime"] == 5_400


def test_without_mutual_tls_there_are_no_identities(tmp_path: Path) -> None:
    files = render_onprem(load_mesh(_catalog_with_security(tmp_path, "{mtls: 'off'}")), OnpremOptions())
    variables = _group_vars(files)
    assert variables["envoy_tls_mode"] == "off"
    assert not any(k.startswith("envoy_tls_ca") for k in variables)
    assert "spiffe_id" not in yaml.safe_load(files["host_vars/caller-1.yml"])["envoy_sidecars"][0]


def test_cli_generate_onprem_creates_meshgen_ca_once_outside_the_tree(tmp_path: Path) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "out"
    command = ["generate", str(MOLECULE), "--target", "onprem", "--ca-dir", str(ca_dir), "-o", str(out)]
    first = CliRunner().invoke(main, command)
    assert first.exit_code == 0, first.output
    assert f"created meshgen's CA for mesh molecule in {ca_dir}" in first.output
    assert (ca_dir / "active" / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert len(load_certs((ca_dir / "trust.pem").read_bytes(), "trust.pem")) == 1
    assert _group_vars({"group_vars/all.yml": (out / "group_vars/all.yml").read_text()})["envoy_tls_ca_key"] == str(
        ca_dir / "active" / "ca-key.pem"
    )
    assert not any("PRIVATE KEY" in p.read_text() for p in out.rglob("*") if p.is_file())
    key = (ca_dir / "active" / "ca-key.pem").read_bytes()

    again = CliRunner().invoke(main, command)
    assert again.exit_code == 0, again.output
    assert "created" not in again.output
    assert (ca_dir / "active" / "ca-key.pem").read_bytes() == key


def test_cli_diff_onprem_creates_no_ca(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    result = CliRunner().invoke(
        main, ["diff", str(MOLECULE), "--target", "onprem", "--ca-dir", str(ca_dir), "-o", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    assert not ca_dir.exists()


def test_cli_refuses_a_ca_inside_the_output_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["generate", str(MOLECULE), "--target", "onprem", "--ca-dir", str(out / "ca"), "-o", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "inside the output directory" in result.output
    assert not out.exists()


def test_cli_rotates_the_onprem_ca_keeping_the_old_one_trusted(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    generate = ["generate", str(MOLECULE), "--target", "onprem", "--ca-dir", str(ca_dir), "-o", str(tmp_path / "out")]
    assert CliRunner().invoke(main, generate).exit_code == 0
    before = (ca_dir / "active").resolve()
    rotate = ["certs", "rotate", "--ca", "--catalog", str(MOLECULE), "--ca-dir", str(ca_dir)]

    result = CliRunner().invoke(main, rotate)

    assert result.exit_code == 0, result.output
    assert "Run ansible/site.yml on every mesh host" in result.output
    assert (ca_dir / "active").resolve() != before
    assert (before / "retire-after").exists()
    trusted = load_certs((ca_dir / "trust.pem").read_bytes(), "trust.pem")
    assert len(trusted) == 2
    active = load_certs((ca_dir / "active" / "ca.pem").read_bytes(), "ca.pem")[0]
    assert trusted[0] == active


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--catalog", str(MOLECULE)], "add --ca"),
        (["--ca", "--ca-dir", "/tmp/nowhere"], "--ca-dir needs --catalog"),
    ],
)
def test_cli_onprem_ca_rotation_needs_the_catalog_and_ca(tmp_path: Path, options: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["certs", "rotate", *options])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_cli_onprem_ca_rotation_needs_an_existing_ca(tmp_path: Path) -> None:
    rotate = ["certs", "rotate", "--ca", "--catalog", str(MOLECULE), "--ca-dir", str(tmp_path / "none")]
    result = CliRunner().invoke(main, rotate)
    assert result.exit_code == 1, result.output
    assert "meshgen generate --target onprem" in result.output
    assert not (tmp_path / "none").exists()


def test_cli_generate_onprem_writes_a_usable_tree(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["generate", str(MOLECULE), "--target", "onprem", "--connection", "docker", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "Ansible inventory, 4 sidecars, 1 gateway Envoy" in result.output
    assert sorted(p.name for p in (tmp_path / "envoy").iterdir()) == [
        "auditor.v1.auditor-1",
        "callee.v1.callee-1",
        "callee.v2.callee-2",
        "caller.v1.caller-1",
        "public.gateway.collector-1",
    ]
    collector = yaml.safe_load((tmp_path / "host_vars" / "collector-1.yml").read_text())
    assert collector["prometheus_listen"] == "127.0.80.9:9090"
    # The same targets for a Prometheus of the user's own, as a file_sd file.
    targets = json.loads((tmp_path / "prometheus" / "targets.json").read_text())
    assert targets == collector["prometheus_targets"]
    assert {t["labels"]["instance"] for t in targets} == {
        "auditor.v1.auditor-1",
        "callee.v1.callee-1",
        "callee.v2.callee-2",
        "caller.v1.caller-1",
        "public.gateway.collector-1",
    }


# --- apps: real ones (a `command`) and the demo app, with what a local mesh tells them

APPS = """\
mesh: {name: apps}
hosts:
  web-1: {address: 127.0.32.1, hosts_file: true}
  api-1: {address: 127.0.32.2}
services:
  web:
    port: 8080
    edge: true
    versions:
      v1:
        instances:
          - host: web-1
            command: [/usr/sbin/nginx, -g, "daemon off; pid ${PIDFILE:-x};", "{{ not a template }}"]
            workdir: /srv/web
            env: {API_URL: mine, TOKEN: s3cret}
    dependencies:
      - {service: api, address: 127.0.32.200}
  api:
    port: 9090
    versions:
      v1: {instances: [api-1]}
"""


def _apps(tmp_path: Path, text: str = APPS) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_instances_with_a_command_become_app_instances_with_the_full_environment(tmp_path: Path) -> None:
    mesh = load_mesh(_apps(tmp_path))
    files = render_onprem(mesh, OnpremOptions())
    web = load_inventory_yaml(files["host_vars/web-1.yml"])
    assert web["demo_app_instances"] == []
    (app,) = web["app_instances"]
    instance = mesh.service("web").instances[0]
    assert app == {
        "name": "web.v1.web-1",
        "service": "web",
        "version": "v1",
        "command": ["/usr/sbin/nginx", "-g", "daemon off; pid ${PIDFILE:-x};", "{{ not a template }}"],
        "workdir": "/srv/web",
        "listen": "127.0.32.129:8080",
        "environment": instance_environment(mesh, instance),
    }
    environment = app["environment"]
    assert next(iter(environment)) == "MESHGEN_MESH" and environment["MESHGEN_LISTEN"] == "127.0.32.129:8080"
    assert environment["API_SERVICE_HOST"] == "127.0.32.200" and environment["API_SERVICE_PORT"] == "9090"
    assert environment["API_URL"] == "mine" and environment["TOKEN"] == "s3cret"  # the instance's env wins
    api = load_inventory_yaml(files["host_vars/api-1.yml"])
    assert api["app_instances"] == []
    assert api["demo_app_instances"][0]["environment"] == instance_environment(mesh, mesh.service("api").instances[0])


def test_text_with_a_brace_is_tagged_for_ansible_to_take_as_it_is(tmp_path: Path) -> None:
    text = render_onprem(load_mesh(_apps(tmp_path)), OnpremOptions())["host_vars/web-1.yml"]
    assert "- !unsafe '{{ not a template }}'" in text
    assert "- !unsafe daemon off; pid ${PIDFILE:-x};\n" in text
    assert "- /usr/sbin/nginx\n" in text and "TOKEN: s3cret\n" in text  # nothing else is tagged


def test_hosts_with_hosts_file_get_the_names_of_their_dependency_listeners(tmp_path: Path) -> None:
    files = render_onprem(load_mesh(_apps(tmp_path)), OnpremOptions())
    assert load_inventory_yaml(files["host_vars/web-1.yml"])["envoy_hosts_file_entries"] == [
        {"address": "127.0.32.200", "names": ["api", "api.mesh"]}
    ]
    assert yaml.safe_load(files["group_vars/all.yml"])["envoy_hosts_file_mesh"] == "apps"
    # Without hosts_file, no entries: the envoy role then removes the block.
    assert "envoy_hosts_file_entries" not in load_inventory_yaml(files["host_vars/api-1.yml"])
    off = render_onprem(load_mesh(_apps(tmp_path, APPS.replace(", hosts_file: true", ""))), OnpremOptions())
    assert "envoy_hosts_file_entries" not in load_inventory_yaml(off["host_vars/web-1.yml"])


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        (
            "workdir: /srv/web",
            "workdir: srv/web",
            "services.web.versions.v1.instances[0].workdir",
            "on-prem, workdir is a directory on host web-1: an absolute path without quotes, backslashes or control "
            "characters, got 'srv/web'",
        ),
        (
            "command: [/usr/sbin/nginx,",
            "command: [./nginx,",
            "services.web.versions.v1.instances[0].command[0]",
            "on-prem, systemd runs the command on host web-1: an absolute path or a program name on systemd's PATH "
            "(not relative, not starting with @ - : + ! |), got './nginx'",
        ),
        (
            "env: {API_URL: mine,",
            "env: {API-URL: mine,",
            "services.web.versions.v1.instances[0].env.API-URL",
            "on-prem, systemd passes the environment: a variable's name is letters, digits and _, not starting with a "
            "digit, got 'API-URL'",
        ),
    ],
    ids=["relative-workdir", "relative-program", "env-name"],
)
def test_what_systemd_cannot_take_is_refused_at_its_line(
    tmp_path: Path, old: str, new: str, path: str, message: str
) -> None:
    assert APPS.count(old) == 1
    catalog = _apps(tmp_path, APPS.replace(old, new))
    line = APPS.splitlines().index(next(line for line in APPS.splitlines() if old in line)) + 1
    result = CliRunner().invoke(main, ["generate", str(catalog), "--target", "onprem", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"{catalog}:{line}: {path}: {message}" in result.output, result.output
    assert not (tmp_path / "out").exists()
