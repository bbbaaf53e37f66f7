"""Driving the Terraform CLI from Python.

The product owner named python-terraform. Its last release (0.10.1, 2019) predates Terraform
0.15 and breaks on Terraform 1.x: `destroy()` passes the removed `-force` flag, `output(name)`
expects a JSON shape Terraform no longer prints, and `apply()` without `skip_plan` waits for an
interactive "yes" (tests/test_aws_terraform.py shows all three). So meshgen drives the CLI itself
through its documented automation interface (`-input=false`, saved plans, `show -json`,
`output -json`), which HashiCorp maintains and keeps stable, and which needs no wrapper library.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshgen.errors import UserError

PLAN_FILE = "meshgen.tfplan"


class TerraformError(UserError):
    """A Terraform command failed; the message carries its output."""


@dataclass(frozen=True)
class PlanSummary:
    add: int
    change: int
    destroy: int
    resources: list[str]  # "create aws_ecs_service.this (module.service["users-v1"])" ...

    def describe(self) -> str:
        return f"Plan: {self.add} to add, {self.change} to change, {self.destroy} to destroy."


class Terraform:
    def __init__(self, working_dir: Path, env: dict[str, str] | None = None, binary: str | None = None) -> None:
        self.working_dir = working_dir
        self.env = {**os.environ, **(env or {}), "TF_IN_AUTOMATION": "1"}
        found = binary or shutil.which("terraform")
        if not found:
            raise UserError("terraform not found: install Terraform 1.9 or newer and put it on PATH")
        self.binary = found

    def run(self, *args: str, capture: bool = True) -> str:
        result = subprocess.run(
            [self.binary, f"-chdir={self.working_dir}", *args],
            env=self.env,
            capture_output=capture,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = ((result.stdout or "") + (result.stderr or "")).strip()
            raise TerraformError(f"terraform {args[0]} failed in {self.working_dir}:\n{output}")
        return result.stdout or ""

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color")

    def plan(self, destroy: bool = False) -> PlanSummary:
        self.run(
            "plan",
            "-input=false",
            "-no-color",
            "-lock-timeout=30s",
            f"-out={PLAN_FILE}",
            *(["-destroy"] if destroy else []),
        )
        return summarize(json.loads(self.run("show", "-json", PLAN_FILE)))

    def apply_plan(self) -> None:
        """Apply exactly the plan saved by the last `plan()`."""
        self.run("apply", "-input=false", "-no-color", "-lock-timeout=30s", PLAN_FILE)

    def apply_targets(self, *addresses: str) -> None:
        """Apply only `addresses` (and what they need), without a saved plan: for bootstrapping
        what the rest of the configuration must find already in place."""
        targets = [f"-target={address}" for address in addresses]
        self.run("apply", "-input=false", "-no-color", "-lock-timeout=30s", "-auto-approve", *targets)

    def resources(self, type_: str, name: str) -> dict[str, dict[str, Any]]:
        """Instances of the managed resource `type_.name` in the state, in any module: index -> values."""
        state = json.loads(self.run("show", "-json")).get("values", {})
        found: dict[str, dict[str, Any]] = {}
        modules = [state.get("root_module", {})]
        while modules:
            module = modules.pop()
            modules += module.get("child_modules", [])
            for resource in module.get("resources", []):
                if (resource.get("mode"), resource["type"], resource["name"]) == ("managed", type_, name):
                    found[str(resource.get("index", ""))] = resource.get("values", {})
        return found

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json"))
        return {name: entry["value"] for name, entry in raw.items()}

    def version(self) -> str:
        return str(json.loads(self.run("version", "-json"))["terraform_version"])


def summarize(plan: dict[str, Any]) -> PlanSummary:
    counts = {"create": 0, "update": 0, "delete": 0}
    resources = []
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        for action in actions:
            if action in counts:
                counts[action] += 1
        resources.append(f"{'/'.join(actions)} {change['address']}")
    return PlanSummary(add=counts["create"], change=counts["update"], destroy=counts["delete"], resources=resources)
