"""Metrics on AWS (issue 15): what the generator writes for each flavor when the catalog has
`mesh.metrics`. ecs-envoy runs a CloudWatch agent per task (the module's native tests check the
container, its configuration and the IAM policy); service-connect and app-mesh list what they lose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.model import load_mesh
from meshgen.render.terraform import AwsOptions, render_aws
from tests.support import REPO

SHOP = REPO / "examples/shop/catalog.yaml"


def _catalog(tmp_path: Path, change: Any = None) -> Path:
    """The shop example, changed by `change(data)`, written next to nothing it needs."""
    data = yaml.safe_load(SHOP.read_text())
    if change is not None:
        change(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _without_metrics(data: dict[str, Any]) -> None:
    del data["mesh"]["metrics"]


def _root(catalog: Path, out: Path, flavor: str) -> tuple[dict[str, str], list[str]]:
    root = render_aws(load_mesh(catalog), out, AwsOptions(flavor=flavor, default_image="demo:1"))
    return root.files, root.warnings


def _tfvars(files: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files["terraform.tfvars.json"])
    return data


def test_ecs_envoy_publishes_under_the_mesh_namespace(tmp_path: Path) -> None:
    files, warnings = _root(_catalog(tmp_path), tmp_path / "out", "ecs-envoy")
    data = _tfvars(files)
    assert data["metrics"] == {"namespace": "meshgen/shop"}
    # Every version's agent scrapes that version's stats port (the catalog's default here).
    assert {name: entry["stats_port"] for name, entry in data["services"].items()} == dict.fromkeys(
        data["services"], 15090
    )
    # The root hands the namespace to the mesh (the IAM condition) and each version's port to its agent.
    assert "metrics_namespace  = var.metrics == null ? null : var.metrics.namespace" in files["main.tf"]
    assert "stats_port     = each.value.stats_port" in files["main.tf"]
    assert "log_group_name = module.mesh.metrics_log_group_name" in files["main.tf"]
    [line] = [w for w in warnings if w.startswith("metrics:")]
    assert "meshgen/shop" in line and "request times (p50, p99) are lost" in line and "histograms" in line
    assert f"- {line}" in files["LIMITATIONS.md"]


def test_ecs_envoy_without_metrics_runs_no_agent(tmp_path: Path) -> None:
    files, warnings = _root(_catalog(tmp_path, _without_metrics), tmp_path / "out", "ecs-envoy")
    assert _tfvars(files)["metrics"] is None
    assert not [w for w in warnings if w.startswith("metrics:")]


def test_ecs_envoy_scrapes_the_stats_port_the_catalog_gives(tmp_path: Path) -> None:
    def ports(data: dict[str, Any]) -> None:
        data["mesh"].setdefault("sidecar", {})["stats_port"] = 16090
        data["services"]["users"]["versions"]["v2"]["instances"] = [{"host": "users-2", "stats_port": 15190}]

    files, _ = _root(_catalog(tmp_path, ports), tmp_path / "out", "ecs-envoy")
    services = _tfvars(files)["services"]
    assert services["users-v2"]["stats_port"] == 15190
    assert services["users-v1"]["stats_port"] == 16090
    assert '"port_value":15190' in files["envoy/users-v2.yaml"]  # where the version's Envoy listens for it


def test_service_connect_lists_its_own_cloudwatch_metrics_instead(tmp_path: Path) -> None:
    files, warnings = _root(_catalog(tmp_path), tmp_path / "out", "service-connect")
    [line] = [w for w in warnings if w.startswith("metrics:")]
    for metric in ("RequestCount", "HTTPCode_Target_5XX_Count", "TargetResponseTime", "AWS/ECS"):
        assert metric in line
    assert "no stats listener" in line and "instance" in line
    assert f"- {line}" in files["LIMITATIONS.md"]
    assert "metrics" not in _tfvars(files)

    _, warnings = _root(_catalog(tmp_path, _without_metrics), tmp_path / "out2", "service-connect")
    assert not [w for w in warnings if w.startswith("metrics:")]


def test_app_mesh_lists_metrics_as_lost(tmp_path: Path) -> None:
    files, warnings = _root(_catalog(tmp_path), tmp_path / "out", "app-mesh")
    [line] = [w for w in warnings if w.startswith("metrics:")]
    assert "no tasks" in line and "CloudWatch agent" in line
    assert "metrics" not in _tfvars(files)


METERED = """
mesh: {name: metered, metrics: {prometheus: "127.0.0.1:9091"}, security: {mtls: "off"}}
hosts:
  a-1: {address: 127.0.72.1}
services:
  a: {port: 8080, edge: true, versions: {v1: {instances: [{host: a-1, stats_port: 15190}]}}}
"""


@pytest.mark.terraform
def test_ecs_envoy_apply_runs_the_agent_with_its_permissions(
    tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Terraform applies the root against moto: the task definition ECS stores runs the
    agent on the version's stats port, and IAM holds the namespace-scoped policy."""
    monkeypatch.setenv("MESHGEN_CA_DIR", str(tmp_path / "ca"))
    path = tmp_path / "catalog.yaml"
    path.write_text(METERED)
    out = tmp_path / "root"
    result = CliRunner(env=terraform_env).invoke(
        main,
        ["aws", "apply", str(path), "-o", str(out), "--default-image", "demo:1", "--auto-approve"],
    )
    assert result.exit_code == 0, result.output + str(result.exception)
    session = boto3.session.Session()

    task = session.client("ecs").describe_task_definition(taskDefinition="a-v1")["taskDefinition"]
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert sorted(containers) == ["app", "cloudwatch-agent", "envoy", "xray-daemon"]
    environment = {e["name"]: e["value"] for e in containers["cloudwatch-agent"]["environment"]}
    scrape = yaml.safe_load(environment["PROMETHEUS_CONFIG_CONTENT"])["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == ["127.0.0.1:15190"]
    assert scrape["metrics_path"] == "/stats/prometheus"
    prometheus = json.loads(environment["CW_CONFIG_CONTENT"])["logs"]["metrics_collected"]["prometheus"]
    assert prometheus["emf_processor"]["metric_namespace"] == "meshgen/metered"
    assert prometheus["log_group_name"] == "/meshgen/metered/metrics"

    logs = session.client("logs").describe_log_groups(logGroupNamePrefix="/meshgen/metered/metrics")
    assert [g["logGroupName"] for g in logs["logGroups"]] == ["/meshgen/metered/metrics"]
    iam = session.client("iam")
    role = next(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("metered-task-"))
    policy = iam.get_role_policy(RoleName=role, PolicyName="publish-mesh-metrics")["PolicyDocument"]
    put = next(s for s in policy["Statement"] if s["Action"] == "cloudwatch:PutMetricData")
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "meshgen/metered"}}

    destroyed = CliRunner(env=terraform_env).invoke(main, ["aws", "destroy", "-o", str(out), "--auto-approve"])
    assert destroyed.exit_code == 0, destroyed.output
