"""Read catalog YAML while remembering where every value came from.

A catalog is one YAML file or a directory of them merged in name order. Every value is
recorded with its file and line, so later errors can point at the exact spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshgen.catalog.nodes import MAX_DEPTH, to_python
from meshgen.catalog.positions import SourceMap, format_path
from meshgen.errors import CatalogError, Problem

# libyaml's parser where PyYAML was built with it: same nodes and positions, much faster.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Top-level sections that are maps of named things; several files may each add names.
MERGEABLE_SECTIONS = ("hosts", "services", "external", "gateways")


@dataclass
class RawCatalog:
    """The merged catalog data with its source map, before any validation."""

    data: dict[str, Any]
    sources: SourceMap
    origin: str


def catalog_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise CatalogError([Problem(path="", message="no *.yaml files in directory", file=str(path))])
        return files
    if not path.exists():
        raise CatalogError([Problem(path="", message="catalog file not found", file=str(path))])
    return [path]


def load_raw(path: Path) -> RawCatalog:
    """Read and merge the catalog at `path` (file or directory); YAML errors become Problems."""
    sources = SourceMap()
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    for file in catalog_files(path):
        file_sources = SourceMap()
        document = _load_document(file, file_sources, problems)
        if document is None:
            continue
        _merge_document(merged, (file, document, file_sources), sources, problems)
        for field_path, position in file_sources.positions.items():
            sources.positions.setdefault(field_path, position)
    if problems:
        raise CatalogError(problems)
    return RawCatalog(data=merged, sources=sources, origin=str(path))


def _load_document(file: Path, sources: SourceMap, problems: list[Problem]) -> dict[str, Any] | None:
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=_LOADER)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path="", message=f"cannot read: {exc}", file=name))
        return None
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(text, name, exc))
        return None
    except RecursionError:
        # PyYAML's pure-Python composer recurses once per level (libyaml stops at 1,000 itself).
        problems.append(Problem(path="", message="invalid YAML: nested too deeply to read", file=name))
        return None
    if node is None:
        sources.positions.setdefault((), (name, 1))
        return {}
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(path="", message="expected a mapping at the top level", file=name, line=1))
        return None
    value = to_python(node, name, sources, problems)
    return value if isinstance(value, dict) else None


def _yaml_problem(text: str, file: str, error: yaml.YAMLError) -> Problem:
    """Where and why the YAML is invalid. Syntax errors are described again by the pure-Python
    parser, slower than libyaml but saying more ("found character '\\t'" rather than "found
    character"). It only parses, so it does not recurse; but its scanner's work per token grows
    with the nesting depth, so it gives up where no catalog nests. What it does not refuse
    (libyaml's own nesting limit, an undefined alias) keeps `error`'s words."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    break
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        error = exc
    mark = getattr(error, "problem_mark", None)
    reason = getattr(error, "problem", None) or str(error)
    return Problem(path="", message=f"invalid YAML: {reason}", file=file, line=mark.line + 1 if mark else None)


def _merge_document(
    merged: dict[str, Any],
    loaded: tuple[Path, dict[str, Any], SourceMap],
    sources: SourceMap,
    problems: list[Problem],
) -> None:
    file, document, file_sources = loaded
    for section, value in document.items():
        if section in MERGEABLE_SECTIONS and isinstance(value, dict) and isinstance(merged.get(section), dict):
            for name, item in value.items():
                if name in merged[section]:
                    first_file, first_line = sources.positions.get((section, name), (None, None))
                    problems.append(
                        Problem(
                            path=format_path((section, name)),
                            message=f"duplicate name: already defined at {first_file}:{first_line}",
                            file=str(file),
                            line=file_sources.positions[(section, name)][1],
                        )
                    )
                    continue
                merged[section][name] = item
        elif section in merged:
            problems.append(
                Problem(
                    path=section,
                    message=f"section is defined in more than one file (first in {sources.locate((section,))[0]})",
                    file=str(file),
                    line=file_sources.positions[(section,)][1],
                )
            )
        else:
            merged[section] = value
