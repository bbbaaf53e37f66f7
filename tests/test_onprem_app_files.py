"""What the hosts get from the generated inventory, without hosts: the real ansible-playbook
renders the app role's environment file and unit, and the demo_app role's environment file,
from the host_vars `meshgen generate --target onprem` writes (loaded as Ansible loads them,
`!unsafe` included), with the roles' own templates, vars and filter plugin. The files are then
read the way systemd reads them (tests/test_app_quoting.py's readers): each app gets exactly the
argv of its catalog `command` and exactly the environment a local mesh gives it. Molecule checks
the same on real systemd."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from meshgen.model import load_mesh
from meshgen.model.addresses import instance_environment
from meshgen.render.ansible import OnpremOptions, render_onprem
from tests.support import REPO
from tests.test_app_quoting import _specifiers, systemd_env_file, systemd_exec

# Everything a shell, Jinja, YAML, systemd's unit parser or its env-file parser might take for
# syntax, in argv words and values.
NASTY = "q\"uo'te \\back $HOME ${HOME} $$ %i %% {{ lookup('env', 'HOME') }} {% raw %} {# c #} ${#x} ünï ✓ `tick`"

SECRET = NASTY + " multi\nline"
CATALOG = f"""
mesh: {{name: files}}
hosts:
  web-1: {{address: 127.0.31.1, hosts_file: true}}
  api-1: {{address: 127.0.31.2}}
services:
  web:
    port: 80
    edge: true
    versions:
      v1:
        instances:
          - host: web-1
            command: [/opt/web app/bin/serve, --flag, {json.dumps(NASTY)}, "", "line\\nbreak\\ttab", ";"]
            workdir: /home/web/100% site
            env: {{SECRET: {json.dumps(SECRET)}, API_URL: overridden}}
    dependencies:
      - {{service: api, address: 127.0.31.200}}
  api:
    port: 8080
    versions:
      v1:
        instances:
          - {{host: api-1, env: {{NOTE: {json.dumps(NASTY)}}}}}
"""


def _playbook(tmp_path: Path) -> Path:
    """Renders the roles' templates as the roles do: in a loop over instance names, the instance
    looked up by name (the roles never loop over whole instances: -v would print their secrets)."""
    text = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [host_vars/web-1.yml, "{{ roles }}/app/vars/main.yml"]
  tasks:
    - name: App environment files
      ansible.builtin.template:
        src: "{{ roles }}/app/templates/instance.env.j2"
        dest: "{{ out }}/{{ item }}.app.env"
        mode: "0600"
      loop: "{{ app_instances | map(attribute='name') | list }}"
      vars:
        _app_instance: "{{ app_instances | selectattr('name', 'eq', item) | first }}"
    - name: App units
      ansible.builtin.template:
        src: "{{ roles }}/app/templates/meshgen-app.service.j2"
        dest: "{{ out }}/{{ item }}.service"
        mode: "0600"
      loop: "{{ app_instances | map(attribute='name') | list }}"
      vars:
        _app_instance: "{{ app_instances | selectattr('name', 'eq', item) | first }}"

- hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [host_vars/api-1.yml]
  tasks:
    - name: Demo app environment files
      ansible.builtin.template:
        src: "{{ roles }}/demo_app/templates/instance.env.j2"
        dest: "{{ out }}/{{ item }}.demo.env"
        mode: "0600"
      loop: "{{ demo_app_instances | map(attribute='name') | list }}"
      vars:
        _demo_app_instance: "{{ demo_app_instances | selectattr('name', 'eq', item) | first }}"
"""
    path = tmp_path / "render.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("onprem-app-files")
    catalog = tmp / "catalog.yaml"
    catalog.write_text(CATALOG)
    mesh = load_mesh(catalog)
    for name, text in render_onprem(mesh, OnpremOptions(ca_dir="/unused")).items():
        if name.startswith("host_vars/"):
            (tmp / name).parent.mkdir(exist_ok=True)
            (tmp / name).write_text(text)
    out = tmp / "out"
    out.mkdir()
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "ansible/collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    playbook = Path(sys.executable).with_name("ansible-playbook")
    variables = json.dumps({"roles": str(REPO / "roles"), "out": str(out), "app_config_dir": "/etc/meshgen/apps"})
    variables_more = json.dumps({"app_user": "meshgen-app", "app_group": "meshgen-app", "app_read_write_paths": []})
    result = subprocess.run(
        [str(playbook), "-e", variables, "-e", variables_more, str(_playbook(tmp))],
        cwd=tmp,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out, mesh


def _instance(mesh: object, service: str):  # type: ignore[no-untyped-def]
    return mesh.service(service).instances[0]  # type: ignore[attr-defined]


def test_the_app_runs_exactly_the_catalog_command(rendered: tuple[Path, object]) -> None:
    out, mesh = rendered
    instance = _instance(mesh, "web")
    unit = (out / f"{instance.id}.service").read_text()
    exec_start = re.findall(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    assert len(exec_start) == 1, unit
    assert systemd_exec(exec_start[0]) == list(instance.command)


def test_the_unit_runs_in_the_workdir_as_the_app_user_with_its_environment_file(rendered: tuple[Path, object]) -> None:
    out, mesh = rendered
    instance = _instance(mesh, "web")
    unit = (out / f"{instance.id}.service").read_text()
    settings = dict(re.findall(r"^(\w+)=(.*)$", unit, re.MULTILINE))
    assert _specifiers(settings["WorkingDirectory"]) == "/home/web/100% site"
    assert settings["EnvironmentFile"] == f"/etc/meshgen/apps/{instance.id}.env"
    assert settings["User"] == "meshgen-app" and settings["Type"] == "exec" and settings["Restart"] == "on-failure"
    # The workdir writable, in a home directory, which ProtectHome=yes would hide: read-only instead.
    assert _specifiers(settings["ReadWritePaths"].strip('"')) == "-/home/web/100% site"
    assert settings["ProtectHome"] == "read-only" and settings["ProtectSystem"] == "strict"
    # Port 80: the one capability to bind it, and no other.
    assert settings["CapabilityBoundingSet"] == "CAP_NET_BIND_SERVICE" == settings["AmbientCapabilities"]


def test_the_app_gets_exactly_the_environment_a_local_mesh_gives(rendered: tuple[Path, object]) -> None:
    out, mesh = rendered
    instance = _instance(mesh, "web")
    env = systemd_env_file((out / f"{instance.id}.app.env").read_text())
    expected = instance_environment(mesh, instance)  # type: ignore[arg-type]
    assert env == expected
    assert env["SECRET"] == SECRET and env["API_URL"] == "overridden"
    assert env["API_SERVICE_HOST"] == "127.0.31.200" and env["API_SERVICE_PORT"] == "8080"


def test_the_demo_app_gets_exactly_the_environment_a_local_mesh_gives(rendered: tuple[Path, object]) -> None:
    out, mesh = rendered
    instance = _instance(mesh, "api")
    env = systemd_env_file((out / f"{instance.id}.demo.env").read_text())
    assert env == instance_environment(mesh, instance)  # type: ignore[arg-type]
    assert env["NOTE"] == NASTY
