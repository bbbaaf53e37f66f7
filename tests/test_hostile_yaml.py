"""YAML built to hurt the reader (alias bombs, recursive aliases, deep nesting, tags) is refused
quickly, as a located problem with exit 2: never a hang, a traceback or a runaway process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from meshgen.catalog import source
from meshgen.cli import main
from meshgen.model import load_mesh
from tests.test_catalog_errors import MARK, assert_problem, catalog, listing, marked_line, problems_of, write


def alias_bomb(levels: int, width: int = 10) -> str:
    """'Billion laughs': each level lists the previous one `width` times, so the last level
    stands for width**levels values while the text stays a few lines long."""
    lines = [f"lol0: &lol0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_an_alias_line(tmp_path: Path) -> None:
    """Six levels (a million values) under an unknown key: the reader must stop expanding long
    before the end, and say where, not report `unknown field` after seconds of work."""
    text = catalog(append=alias_bomb(levels=6))
    path = write(tmp_path, text)
    started = time.monotonic()
    problems = problems_of(path)
    assert time.monotonic() - started < 5
    assert len(problems) == 1, listing(problems)
    (problem,) = problems
    assert problem.file == str(path)
    assert problem.path.startswith("lol"), listing(problems)
    alias_lines = [n for n, line in enumerate(text.splitlines(), 1) if "*lol" in line]
    assert problem.line in alias_lines, listing(problems)
    assert "aliases expand" in problem.message


def _limit_memory() -> None:
    # The unfixed reader grows past 1.5 GB on this document; fail fast instead of hurting the machine.
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_billion_laughs_exits_2_quickly_in_a_real_process(tmp_path: Path) -> None:
    """Ten levels of ten (10**10 values), as in the issue, through the real command line."""
    path = write(tmp_path, catalog(append=alias_bomb(levels=10)))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "meshgen", "validate", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=_limit_memory,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("meshgen validate still expanding the alias bomb after 60 s")
    assert result.returncode == 2, result.stderr[-2000:]
    assert time.monotonic() - started < 30
    assert result.stderr.startswith("meshgen: invalid catalog: 1 problem\n")
    assert f"  {path}:" in result.stderr and "aliases expand" in result.stderr


def test_aliases_a_real_catalog_uses_are_read_as_usual(tmp_path: Path) -> None:
    """The control: one retry policy shared by anchor and alias is no bomb."""
    text = catalog(
        ("    dependencies: [users]", "    dependencies: [users]\n    retries: &standard {attempts: 3}"),
        append="    retries: *standard\n",
    )
    mesh = load_mesh(write(tmp_path, text))
    assert mesh.service("web").routes[0].retries == mesh.service("users").routes[0].retries
    assert mesh.service("users").routes[0].retries.attempts == 3


@pytest.mark.parametrize(
    ("replacement", "path"),
    [
        (("mesh:\n  name: test", "mesh: &m {name: test, defaults: *m}  " + MARK), "mesh.defaults"),
        (("services:\n", "extras: &e [1, *e]  " + MARK + "\nservices:\n"), "extras[1]"),
        (("services:\n", "extras: &e\n  inner: {again: *e}  " + MARK + "\nservices:\n"), "extras.inner.again"),
    ],
    ids=["mapping", "sequence", "nested"],
)
def test_recursive_alias_is_a_problem_at_the_alias(tmp_path: Path, replacement: tuple[str, str], path: str) -> None:
    text = catalog(replacement)
    file = write(tmp_path, text)
    problems = problems_of(file)
    assert_problem(problems, path=path, fragment="recursive alias", file=file, line=marked_line(text))


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_deeper_than_any_catalog_is_a_problem_at_its_line(tmp_path: Path) -> None:
    text = catalog(append="extras: " + nested(200) + "  " + MARK + "\n")
    file = write(tmp_path, text)
    problems = problems_of(file)
    assert len(problems) == 1, listing(problems)
    assert problems[0].path.startswith("extras[0]")
    assert "nested more than" in problems[0].message
    assert (problems[0].file, problems[0].line) == (str(file), marked_line(text))


def test_nesting_beyond_what_the_yaml_parser_takes_is_a_problem_at_its_line(tmp_path: Path) -> None:
    """1,000 levels: libyaml refuses them itself; explaining its refusal must not recurse either."""
    text = catalog(append="extras: " + nested(1000) + "  " + MARK + "\n")
    file = write(tmp_path, text)
    problems = problems_of(file)
    assert_problem(problems, path="", fragment="nesting depth", file=file, line=marked_line(text))
    assert len(problems) == 1, listing(problems)


def test_explaining_deep_nesting_stays_quick(tmp_path: Path) -> None:
    """The pure-Python scanner that words syntax errors works per token in proportion to the
    depth: 20,000 levels took it over a minute. It stops where no catalog nests."""
    text = catalog(append="extras: " + nested(20_000) + "  " + MARK + "\n")
    file = write(tmp_path, text)
    started = time.monotonic()
    problems = problems_of(file)
    assert time.monotonic() - started < 10
    assert_problem(problems, path="", fragment="nesting depth", file=file, line=marked_line(text))


def test_deep_nesting_without_libyaml_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML's pure-Python composer recurses per level: a deep document must not escape as a
    RecursionError where PyYAML was built without libyaml."""
    monkeypatch.setattr(source, "_LOADER", yaml.SafeLoader)
    file = write(tmp_path, catalog(append="extras: " + nested(1000) + "\n"))
    problems = problems_of(file)
    assert len(problems) == 1, listing(problems)
    assert problems[0].file == str(file)
    assert "nest" in problems[0].message


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("!custom 8080", "unsupported tag '!custom'"),
        ("!!python/object/apply:os.system [echo]", "unsupported tag '!!python/object/apply:os.system'"),
        ("!custom {number: 8080}", "unsupported tag '!custom'"),
        ("!!set {8080}", "unsupported tag '!!set'"),
        ("!!int eighty", "not a valid integer"),
        ("!!float eighty", "not a valid number"),
        ("!!bool maybe", "not a valid boolean"),
        ("!!timestamp someday", "not a valid date"),
        ("9" * 5000, "not a valid integer"),
        ("0x" + "f" * 4000, "not a valid integer, too large"),
        ("1" + ":59" * 3000, "not a valid integer, too large"),
    ],
    ids=["scalar", "python", "mapping", "set", "int", "float", "bool", "timestamp", "5000-digits", "hex", "base-60"],
)
def test_tags_and_unreadable_scalars_are_problems_at_their_field(tmp_path: Path, written: str, fragment: str) -> None:
    text = catalog(("  users:\n    port: 8080", f"  users:\n    port: {written}  " + MARK))
    file = write(tmp_path, text)
    problems = problems_of(file)
    assert_problem(problems, path="services.users.port", fragment=fragment, file=file, line=marked_line(text))
    assert len(problems) == 1, listing(problems)


def test_standard_tags_are_read_as_usual(tmp_path: Path) -> None:
    text = catalog(("  users:\n    port: 8080", "  users:\n    port: !!int 8080\n    edge: !!bool false"))
    assert load_mesh(write(tmp_path, text)).service("users").port == 8080


@pytest.mark.parametrize(
    "append",
    [
        "extras: &e [1, *e]\n",
        "extras: " + nested(200) + "\n",
        "extras: " + nested(1000) + "\n",
        "extras: !custom 1\n",
    ],
    ids=["recursive-alias", "deep", "deeper-than-libyaml", "tag"],
)
@pytest.mark.parametrize("command", ["validate", "generate"])
def test_cli_exits_2_with_located_problems(tmp_path: Path, append: str, command: str) -> None:
    file = write(tmp_path, catalog(append=append))
    out = tmp_path / "out"
    args = [command, str(file)] + (["-o", str(out)] if command == "generate" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    heading, *lines = result.stderr.splitlines()
    assert heading.startswith("meshgen: invalid catalog: ")
    assert lines and all(line.startswith(f"  {file}:") for line in lines), result.stderr
    assert not out.exists()
