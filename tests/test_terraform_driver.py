"""How meshgen drives the Terraform CLI: output streamed while Terraform runs, a timeout that stops
it, and `meshgen aws plan --json` (Terraform's output on stderr, one JSON document on stdout).

The driver tests use only Terraform's built-in `terraform_data`, so they need no provider."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.aws.terraform import Terraform, TerraformError
from tests.support import REPO

pytestmark = pytest.mark.terraform

SLOW = """
resource "terraform_data" "slow" {
  provisioner "local-exec" {
    command = "echo started; sleep %s; echo done"
  }
}
"""


def _root(tmp_path: Path, seconds: float) -> Path:
    (tmp_path / "main.tf").write_text(SLOW % seconds)
    return tmp_path


def test_output_arrives_while_terraform_runs(tmp_path: Path, terraform_env: dict[str, str]) -> None:
    heard: list[tuple[float, str]] = []
    terraform = Terraform(
        _root(tmp_path, 3), env=terraform_env, progress=lambda line: heard.append((time.monotonic(), line))
    )
    terraform.init()
    terraform.plan()
    terraform.apply_plan()
    finished = time.monotonic()
    started = next(at for at, line in heard if line.endswith("(local-exec): started"))
    assert finished - started > 2, "the provisioner's first line came only when Terraform exited"
    assert any("Apply complete!" in line for _, line in heard)


def test_a_command_past_its_timeout_is_stopped(tmp_path: Path, terraform_env: dict[str, str]) -> None:
    terraform = Terraform(_root(tmp_path, 60), env=terraform_env, progress=lambda line: None, timeout=3)
    terraform.init()
    terraform.plan()
    begun = time.monotonic()
    with pytest.raises(TerraformError, match=r"terraform apply did not finish within 3s .* and was stopped"):
        terraform.apply_plan()
    assert time.monotonic() - begun < 30  # stopped by the interrupt, not by the sleep ending


def test_aws_plan_json(tmp_path: Path, terraform_env: dict[str, str], aws_env: dict[str, str]) -> None:
    catalog = REPO / "examples/minimal/catalog.yaml"
    out = tmp_path / "root"
    args = ["aws", "plan", str(catalog), "-o", str(out), "--default-image", "demo:1", "--json"]
    result = CliRunner(env=terraform_env).invoke(main, args)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert set(plan) == {"add", "change", "destroy", "resources"}
    assert plan["add"] == len(plan["resources"]) > 0 and plan["change"] == plan["destroy"] == 0
    assert {"action", "address"} == set(plan["resources"][0])
    assert any(r["action"] == "create" and r["address"].endswith("aws_ecs_service.this") for r in plan["resources"])
    assert "Terraform has been successfully initialized" in result.stderr  # streamed, not in stdout
