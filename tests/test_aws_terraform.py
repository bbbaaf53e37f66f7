"""The AWS target with the real Terraform: generated roots validate and plan, apply against a
local moto server, and `meshgen aws drift` sees no drift until the catalog changes.

moto serves ECS, Cloud Map, IAM, CloudWatch Logs and EC2 faithfully enough for the AWS provider.
Its App Mesh answers break the provider (timestamps as strings), so App Mesh is covered by the
module's native `terraform test` with a mock provider, by `plan` here, and its drift detection by
resources created through boto3 (which reads moto's App Mesh fine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.aws.drift import app_mesh_drift, ecs_drift
from meshgen.deploy.aws.terraform import Terraform, TerraformError
from meshgen.model import load_mesh
from meshgen.render.output import write_tree
from meshgen.render.terraform import AwsOptions, render_aws
from meshgen.render.terraform.flavors import app_mesh_data
from tests.support import EXAMPLES, REPO

pytestmark = pytest.mark.terraform

SMALL = """
mesh: {name: tiny}
hosts:
  a-1: {address: 127.0.70.1}
  b-1: {address: 127.0.70.2}
  b-2: {address: 127.0.70.3}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}
  b:
    port: 8080
    versions: {v1: {instances: [b-1], image: "registry.example/b:1"}, v2: {instances: [b-2]}}
    routes: [{name: split, to: {v1: 90, v2: 10}}]
"""


@pytest.fixture(autouse=True)
def ca_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """meshgen's own CA for the meshes applied here: in the test's directory, never the home one."""
    directory = tmp_path / "ca"
    monkeypatch.setenv("MESHGEN_CA_DIR", str(directory))
    return directory


def catalog(tmp_path: Path, text: str = SMALL) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


FLAVORS = ["ecs-envoy", "service-connect", "app-mesh"]


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_generated_root_validates_and_plans(
    tmp_path: Path, example: Path, flavor: str, terraform_env: dict[str, str], aws_env: dict[str, str]
) -> None:
    out = tmp_path / "root"
    write_tree(out, render_aws(load_mesh(example), out, AwsOptions(flavor=flavor, default_image="demo:1")).files)
    terraform = Terraform(out, env=terraform_env)
    terraform.init()
    terraform.run("validate", "-no-color")
    summary = terraform.plan()
    mesh = load_mesh(example)
    versions = sum(len(s.versions) for s in mesh.services)
    planned = " ".join(summary.resources)
    if flavor == "app-mesh":
        assert planned.count("aws_appmesh_virtual_node.this") == versions
        assert planned.count("aws_appmesh_route.this") == sum(len(s.routes) for s in mesh.services)
        assert planned.count("aws_appmesh_virtual_gateway.this") == len(mesh.gateways)
        assert planned.count("aws_appmesh_gateway_route.this") == sum(len(g.routes) for g in mesh.gateways)
    else:
        assert planned.count("aws_ecs_service.this") == versions
        assert summary.destroy == 0 and summary.add == len(summary.resources)


def test_generated_root_moves_the_security_group_and_needs_subnets_with_a_vpc(
    tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str]
) -> None:
    out = tmp_path / "root"
    minimal = REPO / "examples/minimal/catalog.yaml"
    write_tree(out, render_aws(load_mesh(minimal), out, AwsOptions(default_image="demo:1")).files)
    terraform = Terraform(out, env=terraform_env)
    terraform.init()
    with pytest.raises(TerraformError, match="With vpc_id set, subnet_ids must name at least one"):
        terraform.run("plan", "-input=false", "-no-color", "-var", "vpc_id=vpc-0123456789abcdef0")
    # Roots generated before the group moved into ecs-mesh keep their group: it is moved, not replaced.
    assert "from = aws_security_group.mesh" in (out / "network.tf").read_text()


def _apply(tmp_path: Path, path: Path, flavor: str, terraform_env: dict[str, str]) -> Path:
    out = tmp_path / f"root-{flavor}"
    result = CliRunner(env=terraform_env).invoke(
        main,
        ["aws", "apply", str(path), "-o", str(out), "--flavor", flavor, "--default-image", "demo:1", "--auto-approve"],
    )
    assert result.exit_code == 0, result.output + str(result.exception)
    assert result.output.strip().endswith("applied")
    return out


def test_ecs_envoy_apply_then_drift(tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str]) -> None:
    path = catalog(tmp_path)
    out = _apply(tmp_path, path, "ecs-envoy", terraform_env)
    mesh = load_mesh(path)
    session = boto3.session.Session()
    assert ecs_drift(mesh, "ecs-envoy", "tiny.local", session) == []
    clean = CliRunner().invoke(main, ["aws", "drift", str(path)])
    assert clean.exit_code == 0 and clean.output.strip() == f"no drift: AWS matches {path}"

    group = session.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["meshgen-tiny"]}]
    )["SecurityGroups"][0]
    rules = [(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]]
    assert rules == [("tcp", 15006, 15006)]  # the Envoy inbound port, nothing else
    assert [pair["GroupId"] for pair in group["IpPermissions"][0]["UserIdGroupPairs"]] == [group["GroupId"]]

    ecs = session.client("ecs")
    task = ecs.describe_task_definition(taskDefinition="b-v1")["taskDefinition"]
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert sorted(containers) == ["app", "envoy", "xray-daemon"]
    assert containers["app"]["image"] == "registry.example/b:1"

    changed = catalog(
        tmp_path,
        SMALL.replace("{v1: 90, v2: 10}", "{v1: 50, v2: 50}")
        .replace("[b-1]", "[b-1, b-2]")
        .replace("v2: {instances: [b-2]}", "v2: {instances: [b-3]}")
        .replace("  b-2: {address: 127.0.70.3}\n", "  b-2: {address: 127.0.70.3}\n  b-3: {address: 127.0.70.4}\n"),
    )
    drifts = ecs_drift(load_mesh(changed), "ecs-envoy", "tiny.local", session)
    described = sorted((d.resource, d.field) for d in drifts)
    assert ("ECS service b-v1", "desired count") in described
    assert ("task definition a-v1", "envoy config") in described  # a's routes to b changed
    result = CliRunner().invoke(main, ["aws", "drift", str(changed), "--json"])
    assert result.exit_code == 1
    assert {d["field"] for d in json.loads(result.output)["drift"]} >= {"desired count", "envoy config"}

    removed = catalog(
        tmp_path,
        SMALL.replace(
            "  a: {port: 8080, edge: true, versions: {v1: {instances: [a-1]}}, dependencies: [b]}\n", ""
        ).replace("edge: true, ", ""),
    )
    extra = ecs_drift(load_mesh(removed), "ecs-envoy", "tiny.local", session)
    assert ("ECS service a-v1", "exists") in [(d.resource, d.field) for d in extra]
    assert ("Cloud Map service a-v1.tiny.local", "exists") in [(d.resource, d.field) for d in extra]

    destroyed = CliRunner(env=terraform_env).invoke(main, ["aws", "destroy", "-o", str(out), "--auto-approve"])
    assert destroyed.exit_code == 0, destroyed.output
    assert ecs_drift(mesh, "ecs-envoy", "tiny.local", session)[0].resource == "ECS cluster tiny"


def test_service_connect_apply_then_drift(
    tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str]
) -> None:
    path = catalog(tmp_path)
    _apply(tmp_path, path, "service-connect", terraform_env)
    session = boto3.session.Session()
    drifts = ecs_drift(load_mesh(path), "service-connect", "tiny.local", session)
    # moto accepts a service's serviceConnectConfiguration but does not store it (moto 5.2), so
    # it reads back as disabled; everything else matches. The comparison itself is tested below
    # against AWS's documented response shape.
    assert {(d.field, d.actual) for d in drifts} == {("service connect", "disabled")}
    assert sorted(d.resource for d in drifts) == ["ECS service a-v1", "ECS service b-v1", "ECS service b-v2"]


def _described(discovery: str | None, aliases: list[tuple[str, int]]) -> dict[str, Any]:
    """An ECS DescribeServices entry as AWS documents it, Service Connect enabled."""
    services = []
    if discovery:
        services = [
            {
                "portName": "app",
                "discoveryName": discovery,
                "clientAliases": [{"dnsName": d, "port": p} for d, p in aliases],
            }
        ]
    return {
        "deployments": [{"serviceConnectConfiguration": {"enabled": True, "namespace": "arn:ns", "services": services}}]
    }


def test_service_connect_drift_compares_discovery_names_and_aliases() -> None:
    from meshgen.deploy.aws.drift import _service_connect_drift
    from meshgen.render.terraform.flavors import service_connect_services

    mesh = load_mesh(REPO / "examples/shop/catalog.yaml")
    expected = service_connect_services(mesh)
    assert _service_connect_drift("users-v1", expected["users-v1"], _described("users", [("users", 8080)])) == []
    assert _service_connect_drift("users-v2", expected["users-v2"], _described("users-v2", [])) == []
    moved = _service_connect_drift("users-v1", expected["users-v1"], _described("users-v1", []))
    assert [(d.field, d.expected, d.actual) for d in moved] == [
        ("service connect discovery names", "['users']", "['users-v1']"),
        ("service connect client aliases", "[('users', 8080)]", "[]"),
    ]
    off = _service_connect_drift("users-v1", expected["users-v1"], {"deployments": [{}]})
    assert [(d.field, d.actual) for d in off] == [("service connect", "disabled")]


def _create_app_mesh(client: Any, mesh: str, data: dict[str, Any]) -> None:
    """What the app-mesh module creates, made with boto3 (the provider cannot talk to moto's App Mesh)."""
    client.create_mesh(meshName=mesh)
    for node, spec in data["virtual_nodes"].items():
        client.create_virtual_node(
            meshName=mesh,
            virtualNodeName=node,
            spec={
                "listeners": [{"portMapping": {"port": spec["port"], "protocol": spec["protocol"]}}],
                "serviceDiscovery": {"dns": {"hostname": spec["hostname"]}},
                "backends": [{"virtualService": {"virtualServiceName": b}} for b in spec["backends"]],
            },
        )
    for router, spec in data["virtual_services"].items():
        client.create_virtual_router(
            meshName=mesh,
            virtualRouterName=router,
            spec={"listeners": [{"portMapping": {"port": spec["port"], "protocol": spec["protocol"]}}]},
        )
        for priority, route in enumerate(spec["routes"]):
            body: dict[str, Any] = {
                "match": {"prefix": route.get("prefix", "/")},
                "action": {
                    "weightedTargets": [
                        {"virtualNode": t["virtual_node"], "weight": t["weight"]} for t in route["targets"]
                    ]
                },
            }
            if "retry" in route:
                body["retryPolicy"] = {
                    "maxRetries": route["retry"]["max_retries"],
                    "perRetryTimeout": {"unit": "ms", "value": route["retry"]["per_retry_timeout_ms"]},
                    "httpRetryEvents": route["retry"]["http_retry_events"] or ["server-error"],
                }
            client.create_route(
                meshName=mesh,
                virtualRouterName=router,
                routeName=route["name"],
                spec={"priority": priority, "httpRoute": body},
            )


def test_app_mesh_drift_reads_routes_and_nodes(tmp_path: Path, aws_env: dict[str, str]) -> None:
    path = catalog(tmp_path)
    mesh = load_mesh(path)
    session = boto3.session.Session()
    assert app_mesh_drift(mesh, "tiny.local", session)[0].resource == "App Mesh tiny"
    _create_app_mesh(session.client("appmesh"), "tiny", app_mesh_data(mesh, "tiny.local"))
    assert app_mesh_drift(mesh, "tiny.local", session) == []
    shifted = load_mesh(catalog(tmp_path, SMALL.replace("{v1: 90, v2: 10}", "{v1: 50, v2: 50}")))
    drifts = app_mesh_drift(shifted, "tiny.local", session)
    assert [(d.resource, d.field) for d in drifts] == [("route b.tiny.local/split", "targets")]
    assert "('b-v1', 50)" in drifts[0].expected and "('b-v1', 90)" in drifts[0].actual
