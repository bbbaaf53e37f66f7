"""The roles are the Ansible collection meshgen.mesh (galaxy.yml at the repository root): it builds
with `ansible-galaxy collection build` into a tarball holding the collection's content and nothing
of the rest of the repository, installs from that tarball into a project of one's own, and a
playbook there uses its roles and filters by their full names. ansible/site.yml finds the
collection from any working directory (it used to find its roles only from inside ansible/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest
import yaml

from meshgen.model import load_mesh
from meshgen.render.ansible import OnpremOptions, render_onprem
from meshgen.render.output import write_tree
from tests.support import REPO

BIN = Path(sys.executable).parent
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
# What the collection is: everything else at the repository root is meshgen's, not Ansible's.
CONTENT = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "CHANGELOG.md", "meta", "roles", "plugins"}


def _env(**extra: str) -> dict[str, str]:
    """The environment without any collections or roles path the caller may have set, so a run
    finds only what its own arrangement provides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_ROLES_PATH", "ANSIBLE_CONFIG"}
    }
    return {
        **env,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
        **extra,
    }


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} (in {cwd}):\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collection-build")
    _run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)], out, _env())
    tarball = out / TARBALL
    assert tarball.is_file(), sorted(p.name for p in out.iterdir())
    return tarball


@pytest.fixture(scope="module")
def installed(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection installed from the tarball alone: --no-deps, so nothing asks Galaxy
    (community.crypto, its one dependency, comes with the `ansible` package)."""
    collections = tmp_path_factory.mktemp("project") / "collections"
    install = [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(collections), str(built)]
    _run(install, built.parent, _env())
    return collections


def test_the_collection_version_is_the_package_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert GALAXY["version"] == project["version"]
    assert (GALAXY["namespace"], GALAXY["name"]) == ("meshgen", "mesh")


def test_the_tarball_holds_the_collection_content_only(built: Path) -> None:
    with tarfile.open(built) as tar:
        names = tar.getnames()
    assert {name.split("/")[0] for name in names} == CONTENT
    for role in ROLES:
        assert f"roles/{role}/tasks/main.yml" in names
        assert f"roles/{role}/meta/argument_specs.yml" in names
    assert "plugins/filter/systemd_quote.py" in names
    assert "meta/runtime.yml" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_the_manifest_declares_the_dependency_on_community_crypto(built: Path) -> None:
    with tarfile.open(built) as tar:
        member = tar.extractfile("MANIFEST.json")
        assert member is not None
        manifest = json.load(member)
    assert set(manifest["collection_info"]["dependencies"]) == {"community.crypto"}


def test_a_project_of_ones_own_uses_the_installed_collection(installed: Path) -> None:
    project = installed.parent
    assert (installed / "ansible_collections/meshgen/mesh/MANIFEST.json").is_file()
    (project / "ansible.cfg").write_text("[defaults]\ncollections_path = ./collections\n")
    plays = [
        {"name": "Mesh hosts", "hosts": "mesh", "gather_facts": False, "roles": [f"meshgen.mesh.{r}" for r in ROLES]},
        {
            "name": "The collection's filters",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Quote an argv for ExecStart=",
                    "ansible.builtin.copy": {
                        "content": "{{ ['/bin/echo', 'a b', '100%'] | meshgen.mesh.systemd_exec }}\n",
                        "dest": "{{ playbook_dir }}/exec.txt",
                        "mode": "0644",
                    },
                }
            ],
        },
    ]
    (project / "playbook.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    (project / "hosts.yml").write_text("mesh:\n  hosts: {}\n")
    playbook = str(BIN / "ansible-playbook")
    # ANSIBLE_CONFIG: a directory under /tmp may be world-writable, whose ansible.cfg Ansible ignores.
    env = _env(ANSIBLE_CONFIG=str(project / "ansible.cfg"))
    _run([playbook, "-i", "hosts.yml", "--syntax-check", "playbook.yml"], project, env)
    _run([playbook, "-i", "hosts.yml", "playbook.yml"], project, env)
    assert (project / "exec.txt").read_text() == '/bin/echo "a b" "100%%"\n'


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onprem-inventory")
    mesh = load_mesh(REPO / "examples/minimal/catalog.yaml")
    write_tree(out, render_onprem(mesh, OnpremOptions(ca_dir=str(out / "ca"))))
    return out / "inventory.yml"


@pytest.mark.parametrize("where", ["repo root", "ansible/", "elsewhere"])
def test_site_yml_finds_the_collection_from_anywhere(where: str, inventory: Path, tmp_path: Path) -> None:
    """The README's `ansible-playbook -i inventory/inventory.yml ansible/site.yml` from the
    repository root once failed with "the role 'trace_collector' was not found"."""
    cwd = {"repo root": REPO, "ansible/": REPO / "ansible", "elsewhere": tmp_path}[where]
    site = os.path.relpath(REPO / "ansible/site.yml", cwd)
    result = _run([str(BIN / "ansible-playbook"), "-i", str(inventory), "--syntax-check", site], cwd, _env())
    assert "ERROR" not in result.stdout + result.stderr
