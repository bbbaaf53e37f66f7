"""Golden-file tests of the on-prem and AWS targets, as tests/test_envoy_golden.py does for sidecars:
each case first asserts a few values the output is made from, then compares the files with
tests/testdata/<case>.golden. On-prem: the Ansible inventory, group_vars and every host's
host_vars. AWS: terraform.tfvars.json of each flavor, and for ecs-envoy the Envoy bootstraps of a
few versions that differ (an edge with routes, a caller of an external, a leaf; HTTP, TCP, gRPC). The fixed .tf files are templates without data and are checked by `terraform validate`.

A file written as one long JSON line is stored indented, so a golden diff reads line by line.
To rewrite goldens on purpose after an intended change, then review the diff:
MESHGEN_UPDATE_GOLDENS=1 pytest tests/test_target_goldens.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from meshgen.model import load_mesh
from meshgen.render.ansible import OnpremOptions, render_onprem
from meshgen.render.terraform import AwsOptions, render_aws
from tests.support import REPO, TESTDATA, load_inventory_yaml

UPDATE = os.environ.get("MESHGEN_UPDATE_GOLDENS") == "1"
SHOP = REPO / "examples/shop/catalog.yaml"
FEATURES = TESTDATA / "catalogs/features.yaml"
MOLECULE = REPO / "molecule/default/catalog.yaml"
AWS_ROOT = Path("/srv/meshgen/aws")  # where the root would be written: only relative paths may depend on it


def _onprem(catalog: Path, connection: str) -> Callable[[], dict[str, str]]:
    def render() -> dict[str, str]:
        # A fixed CA directory: the default one depends on where the tests run.
        options = OnpremOptions(connection=connection, ca_dir="/var/lib/meshgen-ca-for-goldens")
        files = render_onprem(load_mesh(catalog), options)
        # envoy/ holds sidecar configs, which the Envoy goldens cover.
        return {name: text for name, text in files.items() if not name.startswith("envoy/")}

    return render


def _aws(catalog: Path, flavor: str, bootstraps: tuple[str, ...] = ()) -> Callable[[], dict[str, str]]:
    """terraform.tfvars.json, and the Envoy bootstraps of the versions named (a few that differ)."""

    def render() -> dict[str, str]:
        files = render_aws(load_mesh(catalog), AWS_ROOT, AwsOptions(flavor=flavor, default_image="demo:1")).files
        kept = ["terraform.tfvars.json", *(f"envoy/{version}.yaml" for version in bootstraps)]
        return {name: files[name] for name in kept}

    return render


def _check_onprem_shop(files: dict[str, str]) -> None:
    groups = yaml.safe_load(files["inventory.yml"])["all"]["children"]
    assert sorted(groups["users_v2"]["hosts"]) == ["users-2"]
    hosts = {name.removeprefix("host_vars/").removesuffix(".yml") for name in files if name.startswith("host_vars/")}
    assert hosts == set(groups["mesh"]["hosts"]) | set(groups["trace_collector"]["hosts"])


def _check_onprem_molecule(files: dict[str, str]) -> None:
    hosts = yaml.safe_load(files["inventory.yml"])["all"]["children"]["mesh"]["hosts"]
    assert all(h["ansible_connection"] == "community.docker.docker" for h in hosts.values())
    for name, text in files.items():
        if name.startswith("host_vars/") and name != "host_vars/collector-1.yml":
            assert load_inventory_yaml(text)["envoy_sidecars"], f"{name} runs no sidecar"


def _check_ecs_envoy_shop(files: dict[str, str]) -> None:
    services = json.loads(files["terraform.tfvars.json"])["services"]
    assert len(services) == 8 and services["users-v2"]["version"] == "v2"
    frontend = json.loads(files["envoy/frontend-v1.yaml"].splitlines()[-1])
    assert frontend["node"] == {
        "id": "frontend.v1.frontend-v1",
        "cluster": "frontend",
        "metadata": {"mesh": "shop", "service": "frontend", "version": "v1", "host": "frontend-v1"},
    }


def _check_tfvars(flavor: str) -> Callable[[dict[str, str]], None]:
    def check(files: dict[str, str]) -> None:
        assert json.loads(files["terraform.tfvars.json"])["mesh_name"] == "shop", flavor

    return check


@dataclass(frozen=True)
class Case:
    name: str
    render: Callable[[], dict[str, str]]
    check: Callable[[dict[str, str]], None]


CASES = [
    Case("onprem-shop", _onprem(SHOP, "ssh"), _check_onprem_shop),
    Case("onprem-molecule", _onprem(MOLECULE, "docker"), _check_onprem_molecule),
    Case(
        "aws-ecs-envoy-shop", _aws(SHOP, "ecs-envoy", ("frontend-v1", "checkout-v1", "users-v2")), _check_ecs_envoy_shop
    ),
    Case("aws-ecs-envoy-features", _aws(FEATURES, "ecs-envoy", ("api-v1", "db-v1", "grpc-v2")), lambda files: None),
    Case("aws-service-connect-shop", _aws(SHOP, "service-connect"), _check_tfvars("service-connect")),
    Case("aws-app-mesh-shop", _aws(SHOP, "app-mesh"), _check_tfvars("app-mesh")),
]


def _readable(text: str) -> str:
    """`text` with each line that is a whole JSON document indented; every other line as it is."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith(("{", "[")):
            try:
                lines.append(json.dumps(json.loads(line), indent=2) + "\n")
                continue
            except ValueError:
                pass
        lines.append(line)
    return "".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_target_matches_golden(case: Case) -> None:
    files = case.render()
    case.check(files)
    rendered = "".join(f"=== {name} ===\n{_readable(files[name])}" for name in sorted(files))
    golden = TESTDATA / f"{case.name}.golden"
    if UPDATE:
        golden.write_text(rendered, encoding="utf-8")
    assert golden.exists(), f"missing {golden}: run with MESHGEN_UPDATE_GOLDENS=1 to create it"
    assert rendered == golden.read_text(encoding="utf-8"), f"{golden.name} differs (see the module docstring)"
