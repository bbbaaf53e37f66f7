"""What every command module of the CLI shares: user errors caught at the entry point, the state dir."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from meshgen.errors import UserError

if TYPE_CHECKING:
    from meshgen.model import Mesh

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: F) -> F:
    """Print a UserError for the person at the terminal and exit with its code; nothing else is caught."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            click.echo(f"meshgen: {exc}", err=True)
            sys.exit(exc.exit_code)

    return run  # type: ignore[return-value]


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


def load_catalog(path: Path) -> Mesh:
    """The catalog's mesh; its deprecated spellings are warned about on stderr, located."""
    from meshgen.model import load_mesh

    mesh = load_mesh(path)
    for deprecation in mesh.deprecations:
        click.echo(f"warning: {deprecation}", err=True)
    return mesh
