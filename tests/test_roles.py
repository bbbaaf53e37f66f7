"""The Ansible roles document what they accept: every default in defaults/main.yml is an option
of the role's main entry point in meta/argument_specs.yml and the other way round, with the same
default, a description and a type. Fast: reads YAML, runs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import REPO

ROLES = sorted(p.parent.parent for p in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _options(role: Path) -> dict[str, dict[str, Any]]:
    return _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def _defaults(role: Path) -> dict[str, Any]:
    return _load(role / "defaults" / "main.yml") or {}


def test_the_roles_are_all_there() -> None:
    assert sorted(r.name for r in ROLES) == [
        "app",
        "demo_app",
        "envoy",
        "meshgen_runtime",
        "prometheus",
        "trace_collector",
    ]
    assert sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir()) == [r.name for r in ROLES]


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_defaults_are_exactly_the_documented_options(role: Path) -> None:
    assert sorted(_defaults(role)) == sorted(_options(role))


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_every_option_has_a_description_a_type_and_the_default(role: Path) -> None:
    defaults = _defaults(role)
    for name, spec in _options(role).items():
        assert spec.get("description"), f"{role.name}: {name} has no description"
        assert spec.get("type"), f"{role.name}: {name} has no type"
        assert spec.get("default") == defaults.get(name), f"{role.name}: {name} documents another default"
        if "choices" in spec:
            assert defaults[name] in spec["choices"], f"{role.name}: the default of {name} is not a choice"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_variables_carry_the_role_name(role: Path) -> None:
    for name in _defaults(role):
        assert name.startswith(f"{role.name}_"), f"{role.name}: {name}"
    for path in (role / "vars").glob("*.yml"):
        for name in _load(path) or {}:
            assert name.startswith(f"_{role.name}_"), f"{path.relative_to(REPO)}: {name} is private, so _{role.name}_*"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_the_role_has_its_parts(role: Path) -> None:
    for part in ("tasks/main.yml", "tasks/preflight.yml", "meta/main.yml", "vars/Debian.yml", "README.md"):
        assert (role / part).is_file(), f"{role.name}: {part} is missing"
