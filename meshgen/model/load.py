"""Load a catalog from disk into the resolved Mesh, or raise CatalogError naming every problem."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pydantic import ValidationError

from meshgen.catalog.positions import SourceMap
from meshgen.catalog.schema import Catalog
from meshgen.catalog.source import load_raw
from meshgen.errors import CatalogError, Problem, quote
from meshgen.model.mesh import Mesh
from meshgen.model.resolve import resolve


def load_mesh(path: Path | str) -> Mesh:
    raw = load_raw(Path(path))
    try:
        catalog = Catalog.model_validate(raw.data)
    except ValidationError as exc:
        raise CatalogError([_problem(raw.sources, error) for error in exc.errors()]) from None
    mesh = resolve(catalog, raw.sources, origin=raw.origin)
    return dataclasses.replace(mesh, deprecations=_deprecations(raw.sources))


def _deprecations(sources: SourceMap) -> tuple[str, ...]:
    message = "`on` is read as the boolean true by YAML 1.1 tools (PyYAML, yq, Ansible); write retry_on"
    found = [sources.problem(path, message) for path in sources.positions if path[-2:] == ("retries", "on")]
    return tuple(str(problem) for problem in found)


def _problem(sources: SourceMap, error: object) -> Problem:
    assert isinstance(error, dict)
    # pydantic marks a bad mapping key with a trailing "[key]"; the key's own path says it.
    location = tuple(part for part in error["loc"] if part != "[key]")
    message = _explain(error)
    return sources.problem(location, message)


def _explain(error: dict[str, object]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    # pydantic prefixes messages raised in our validators with "Value error, ".
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    already_quoted = "got " in message
    if not already_quoted and kind not in ("model_type", "dict_type") and isinstance(value, (str, int, float, bool)):
        message += f", got {quote(value)}"
    return message
