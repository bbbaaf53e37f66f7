"""What every command module of the CLI shares: user errors and Ctrl-C caught at the entry point,
JSON and progress output, the state dir."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from meshgen.errors import CatalogError, UserError

if TYPE_CHECKING:
    from meshgen.model import Mesh

F = TypeVar("F", bound=Callable[..., Any])

# The shell's convention for a command ended by SIGINT (128 + 2).
INTERRUPTED_EXIT_CODE = 130


def user_errors(command: F) -> F:
    """Print a UserError for the person at the terminal and exit with its code; exit 130 on Ctrl-C.
    Nothing else is caught. With --json, the error is also printed on stdout as
    {"error": {"message", "exit_code", "problems"}}, so stdout is always one JSON document."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            if kwargs.get("as_json"):
                problems = [asdict(p) for p in exc.problems] if isinstance(exc, CatalogError) else []
                error = {"message": str(exc), "exit_code": exc.exit_code, "problems": problems}
                emit_json({"error": error})
            click.echo(f"meshgen: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            # What was interrupted cleaned up on its way out (an `up` stops what it started).
            click.echo("\nmeshgen: interrupted", err=True)
            sys.exit(INTERRUPTED_EXIT_CODE)

    return run  # type: ignore[return-value]


def emit_json(document: Any) -> None:
    """One JSON document on stdout: what --json prints."""
    click.echo(json.dumps(document, indent=2))


def progress(line: str) -> None:
    """What long work is doing, on stderr, so stdout stays parseable (with --json above all)."""
    click.echo(line, err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document (see README).")

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the running local mesh keeps its state and logs (default: $MESHGEN_STATE_DIR or "
    "~/.local/state/meshgen).",
)


def resolve_state_dir(state_dir: Path | None) -> Path:
    from meshgen.deploy.local.state import default_state_dir

    return state_dir or default_state_dir()


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while a command builds large structures without cycles (the
    catalog's nodes, values and model; rendered documents): its passes over every live container
    were more than half of loading a catalog of 5,000 services. Reference counting still frees
    everything as usual; the collector runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_catalog(path: Path) -> Mesh:
    """The catalog's mesh; its deprecated spellings are warned about on stderr, located."""
    from meshgen.model import load_mesh

    with without_cycle_collection():
        mesh = load_mesh(path)
    for deprecation in mesh.deprecations:
        click.echo(f"warning: {deprecation}", err=True)
    return mesh
