"""Mutated real catalogs through the real command line: never a traceback, exit 0 or 2 only,
every problem located, nothing written on error; and what meshgen calls valid, Envoy accepts.

Seeded (tests/mutations.py), so every run checks the same mutants; about 15 s on two cores.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meshgen.cli import main
from tests.mutations import Mutant, mutant

SEEDS = range(120)
TARGETS = {"envoy": [], "onprem": [], "aws": ["--default-image", "x"]}
VALUE_CHANGES = ("edge", "unicode", "number", "huge", "negative", "duration", "string", "retype")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def check_outcome(result: Result, catalog: Path, out: Path | None, context: str) -> None:
    """Exit 0, or exit 2 with every problem at `file:line: ` or `file: `; never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{context}\n{result.exception!r}\n{result.stderr[-3000:]}"
    )
    assert result.exit_code in (0, 2), f"{context}\nexit {result.exit_code}\n{result.stderr[-3000:]}"
    if result.exit_code == 0:
        return
    heading, *problems = result.stderr.splitlines()
    assert re.fullmatch(r"meshgen: .+: \d+ problems?", heading), f"{context}\n{result.stderr[-3000:]}"
    located = re.compile(rf"  {re.escape(str(catalog))}(:\d+)?: \S")
    assert problems, f"{context}\n{result.stderr[-3000:]}"
    for line in problems:
        assert located.match(line), f"{context}\nnot located: {line!r}"
    if out is not None:
        assert not out.exists(), f"{context}\nwrote into {out} on error"


def written(tmp_path: Path, candidate: Mutant) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(candidate.text, encoding="utf-8")
    return path


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_catalog_through_the_cli(tmp_path: Path, seed: int) -> None:
    candidate = mutant(seed)
    catalog = written(tmp_path, candidate)
    context = candidate.describe()
    validated = invoke("validate", str(catalog))
    check_outcome(validated, catalog, None, f"validate, {context}")
    for target, options in TARGETS.items():
        out = tmp_path / f"out-{target}"
        generated = invoke("generate", str(catalog), "--target", target, "-o", str(out), *options)
        check_outcome(generated, catalog, out, f"generate --target {target}, {context}")
        if validated.exit_code == 2:
            assert generated.exit_code == 2, f"generate --target {target} took what validate refused, {context}"
        elif target == "envoy":
            assert generated.exit_code == 0, f"generate refused what validate took, {context}\n{generated.stderr}"


@pytest.mark.envoy
def test_what_meshgen_calls_valid_envoy_accepts(tmp_path: Path) -> None:
    """A handful of mutants that pass `validate` with a value changed (a number, a duration, a
    string, a type): the real Envoy must take every config."""
    checked = []
    for seed in range(10_000, 12_000):
        candidate = mutant(seed)
        if not any(c.startswith(VALUE_CHANGES) and "nothing" not in c for c in candidate.changes):
            continue
        catalog = tmp_path / f"{seed}.yaml"
        catalog.write_text(candidate.text, encoding="utf-8")
        if invoke("validate", str(catalog)).exit_code != 0:
            continue
        with_envoy = invoke("validate", "--envoy", str(catalog))
        assert with_envoy.exit_code == 0, f"{candidate.describe()}\n{with_envoy.stderr[-3000:]}"
        checked.append(candidate.describe())
        if len(checked) == 8:
            break
    assert len(checked) == 8, checked
