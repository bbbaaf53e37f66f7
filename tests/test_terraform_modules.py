"""The Terraform modules and examples under terraform/: formatting, init + validate, the modules'
and examples' native `terraform test` suites (mock AWS provider, plan only: no credentials, no network), and
README tables in step with the variables and outputs.

Everything runs on a copy of terraform/ in a temporary directory, so no .terraform directory or
lock file is left in the repository. Each directory is initialised once. Providers come from the
local mirror that scripts/terraform-env finds, or from the registry where there is none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = [
    pytest.mark.terraform,
    pytest.mark.usefixtures("terraform_installed"),
]

TERRAFORM = REPO / "terraform"
MODULES = sorted(p.parent.name for p in (TERRAFORM / "modules").glob("*/versions.tf"))
EXAMPLES = sorted(p.parent.name for p in (TERRAFORM / "examples").glob("*/versions.tf"))
DIRECTORIES = [f"modules/{m}" for m in MODULES] + [f"examples/{e}" for e in EXAMPLES]
TESTED = [d for d in DIRECTORIES if list((TERRAFORM / d / "tests").glob("*.tftest.hcl"))]


def _environment(cache: Path) -> dict[str, str]:
    """os.environ plus what scripts/terraform-env sets up (its CLI config goes to `cache`)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for name in ("TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR", "TF_DATA_DIR", "TF_WORKSPACE"):
        env.pop(name, None)
    config = subprocess.run(
        ["bash", str(REPO / "scripts" / "terraform-env"), "printenv", "TF_CLI_CONFIG_FILE"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if config:
        env["TF_CLI_CONFIG_FILE"] = config
    return env


class Workspace:
    """A copy of terraform/ with lazily initialised directories."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self._initialised: set[str] = set()

    def run(self, directory: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["terraform", *args],
            cwd=self.root / directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def initialised(self, directory: str) -> None:
        if directory in self._initialised:
            return
        result = self.run(directory, "init", "-backend=false", "-input=false", "-no-color")
        assert result.returncode == 0, f"terraform init in {directory} failed:\n{result.stdout}\n{result.stderr}"
        self._initialised.add(directory)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("terraform")
    shutil.copytree(
        TERRAFORM, root / "terraform", ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*")
    )
    yield Workspace(root / "terraform", _environment(tmp_path_factory.mktemp("cache")))


def _report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_formatting() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CLI_CONFIG_FILE"}
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, "terraform fmt -recursive terraform/ would change:\n" + result.stdout


def test_every_module_has_the_standard_files() -> None:
    for module in MODULES:
        files = {p.name for p in (TERRAFORM / "modules" / module).iterdir() if p.is_file()}
        assert files == {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}, module
        assert list((TERRAFORM / "modules" / module / "tests").glob("*.tftest.hcl")), f"{module} has no tests"
        assert 'provider "aws"' not in (TERRAFORM / "modules" / module / "main.tf").read_text(), module


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_init_and_validate(workspace: Workspace, directory: str) -> None:
    workspace.initialised(directory)
    result = workspace.run(directory, "validate", "-no-color")
    assert result.returncode == 0, _report(result)
    assert "Success! The configuration is valid." in result.stdout


@pytest.mark.parametrize("directory", TESTED)
def test_native_terraform_tests(workspace: Workspace, directory: str) -> None:
    workspace.initialised(directory)
    result = workspace.run(directory, "test", "-no-color")
    assert result.returncode == 0, _report(result)
    assert " 0 failed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1], result.stdout


def test_readme_tables_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "tf_docs.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_app_mesh_readme_says_legacy_first() -> None:
    text = (TERRAFORM / "modules" / "app-mesh" / "README.md").read_text()
    intro = text.split("<!-- BEGIN_TF_DOCS -->")[0][:600]
    assert "LEGACY" in intro and "2026-09-30" in intro
    assert "ecs-envoy-service" in intro and "ecs-service-connect" in intro
