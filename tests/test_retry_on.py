"""`retry_on` is the retry conditions' key; `on`, which YAML 1.1 tools read as the boolean true,
still works and is warned about where it is written."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from meshgen.cli import main
from meshgen.model import load_mesh

CATALOG = """\
mesh: {name: retries}
hosts:
  web-1: {address: 127.0.30.1}
  users-1: {address: 127.0.30.2}
services:
  web:
    port: 8080
    edge: true
    versions: {v1: {instances: [web-1]}}
    dependencies: [users]
  users:
    port: 8080
    versions: {v1: {instances: [users-1]}}
    retries:
      attempts: 3
      KEY: [reset, gateway-error]
"""


def _write(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG.replace("KEY", key))
    return path


def _conditions(path: Path) -> tuple[str, ...]:
    return load_mesh(path).service("users").routes[0].retries.on


def test_both_names_mean_the_same(tmp_path: Path) -> None:
    new = _conditions(_write(tmp_path, "retry_on"))
    old = _conditions(_write(tmp_path, "on"))
    assert new == old == ("reset", "gateway-error")


def test_retry_on_survives_a_yaml_1_1_round_trip(tmp_path: Path) -> None:
    """PyYAML (as yq and Ansible) reads `on` as True; `retry_on` comes back as written."""
    for key, survives in (("retry_on", True), ("on", False)):
        data = yaml.safe_load(CATALOG.replace("KEY", key))
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump(data))
        if survives:
            assert _conditions(path) == ("reset", "gateway-error")
        else:
            assert True in data["services"]["users"]["retries"]  # the key became a boolean
            result = CliRunner().invoke(main, ["validate", str(path)])
            assert result.exit_code == 2, result.output


def test_on_is_warned_about_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "on")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    line = CATALOG.splitlines().index("      KEY: [reset, gateway-error]") + 1
    assert f"warning: {path}:{line}: services.users.retries.on: `on` is read as the boolean true" in result.stderr
    quiet = CliRunner().invoke(main, ["validate", str(_write(tmp_path, "retry_on"))])
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
