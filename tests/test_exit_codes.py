"""Exit 2 for every error in the input (the catalog or the options), located in the catalog
where the catalog is at fault; exit 1 for failures at run time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.deploy.aws.terraform import TerraformError
from meshgen.deploy.local.processes import StartError
from meshgen.errors import (
    CatalogError,
    EnvoyNotFoundError,
    EnvoyRejectedError,
    InputError,
    Problem,
    UserError,
)
from tests.test_catalog_errors import BASE, write
from tests.test_cli import MINIMAL, SHOP

NO_HOSTS = """\
mesh: {name: x}
services:
  a:
    port: 80
    versions:
      v1: {instances: [a-1]}
      v2:
        instances:
          - {host: a-2, port: 81}
"""


def run(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def test_onprem_without_hosts_names_every_instance_host(tmp_path: Path) -> None:
    catalog = write(tmp_path, NO_HOSTS)
    out = tmp_path / "out"
    result = run("generate", catalog, "--target", "onprem", "-o", out)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert lines_of(result.stderr) == [
        "meshgen: the catalog cannot go on-prem: 2 problems",
        f"  {catalog}:6: services.a.versions.v1.instances[0].host: on-prem hosts need real addresses: "
        "'a-1' is not in `hosts` (the catalog has no `hosts` section)",
        f"  {catalog}:9: services.a.versions.v2.instances[0].host: on-prem hosts need real addresses: "
        "'a-2' is not in `hosts` (the catalog has no `hosts` section)",
    ]
    assert not out.exists()


def test_aws_without_an_image_names_every_version(tmp_path: Path) -> None:
    catalog = write(
        tmp_path, BASE.replace("      v1: {instances: [users-1]}", "      v1: {instances: [users-1], image: u:1}")
    )
    out = tmp_path / "out"
    result = run("generate", catalog, "--target", "aws", "-o", out)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert lines_of(result.stderr) == [
        "meshgen: the catalog cannot go to AWS: 2 problems",
        f"  {catalog}:12: services.web.versions.v1.image: no container image; "
        "give the version an `image`, or pass --default-image",
        f"  {catalog}:18: services.users.versions.v2.image: no container image; "
        "give the version an `image`, or pass --default-image",
    ]
    assert not out.exists()
    assert run("generate", catalog, "--target", "aws", "-o", out, "--default-image", "x").exit_code == 0


@pytest.mark.parametrize("target", ["envoy", "onprem"])
def test_a_relative_config_root_is_an_input_error(tmp_path: Path, target: str) -> None:
    catalog = MINIMAL if target == "envoy" else write(tmp_path, BASE)
    result = run("generate", catalog, "--target", target, "-o", tmp_path / "out", "--config-root", "relative")
    assert result.exit_code == 2, result.output
    assert result.stderr == "meshgen: --config-root must be an absolute path, got 'relative'\n"
    assert not (tmp_path / "out").exists()


def test_a_bad_lint_margin_is_an_input_error() -> None:
    result = run("lint", SHOP, "--min-timeout-margin", "soon")
    assert result.exit_code == 2, result.output
    assert "--min-timeout-margin: expected a duration" in result.stderr


def test_bad_external_stand_ins_are_input_errors(tmp_path: Path) -> None:
    """Refused before anything starts: no process, no state."""
    state = tmp_path / "state"
    for external in ["payments", "nope=127.0.0.1:1", "payments=192.0.2.1:443"]:
        result = run("up", SHOP, "--state-dir", state, "--external", external)
        assert result.exit_code == 2, (external, result.output)
        assert "--external" in result.stderr
    assert not state.exists()


def test_a_catalog_that_cannot_run_locally_is_located(tmp_path: Path) -> None:
    catalog = write(tmp_path, BASE.replace("  users-1: {address: 127.0.30.2}", "  users-1: {address: 10.0.0.2}"))
    state = tmp_path / "state"
    result = run("up", catalog, "--state-dir", state)
    assert result.exit_code == 2, result.output
    assert lines_of(result.stderr) == [
        "meshgen: this catalog cannot run on this machine: 1 problem",
        f"  {catalog}:5: hosts.users-1.address: host users-1 has address 10.0.0.2, which is not on loopback",
    ]
    assert not state.exists()


def test_traces_of_a_catalog_without_tracing_is_an_input_error() -> None:
    result = run("traces", "--catalog", MINIMAL)
    assert result.exit_code == 2, result.output
    assert f"  {MINIMAL}:2: mesh: no `tracing` configured, so there is no collector to ask" in result.stderr


def test_failures_at_run_time_still_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGEN_ENVOY", str(tmp_path / "no-such-envoy"))
    result = run("validate", MINIMAL, "--envoy")
    assert result.exit_code == 1, result.output
    assert "envoy not found" in result.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CatalogError([Problem(path="", message="x")]), 2),
        (InputError("--option: x"), 2),
        (UserError("not applied"), 1),
        (EnvoyNotFoundError(), 1),
        (EnvoyRejectedError(config="c", output="o"), 2),  # the catalog asks what Envoy refuses
        (TerraformError("terraform apply failed"), 1),
        (StartError("envoy exited"), 1),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_exit_code_of_each_kind_of_error(error: UserError, code: int) -> None:
    assert error.exit_code == code


def test_the_errors_module_says_which_errors_exit_2() -> None:
    from meshgen import errors

    assert errors.__doc__ is not None
    assert re.search(r"exit(s)? 2", errors.__doc__) and re.search(r"exit(s)? 1", errors.__doc__)
