"""Plain Python data from a composed YAML node tree, with the position of every value."""

from __future__ import annotations

from typing import Any

import yaml

from meshgen.catalog.positions import FieldPath, SourceMap, format_path
from meshgen.errors import Problem


def to_python(root: yaml.Node, file: str, sources: SourceMap, problems: list[Problem]) -> Any:
    """The data `root` stands for; positions go into `sources`, mistakes into `problems`."""
    return _Converter(file, sources, problems).convert(root, ())


class _Converter:
    """Turns a composed YAML node tree into plain Python, recording positions.

    Unlike yaml.safe_load, a key written twice in one mapping is an error, not a silent overwrite.
    """

    def __init__(self, file: str, sources: SourceMap, problems: list[Problem]) -> None:
        self.file = file
        self.sources = sources
        self.problems = problems
        self.constructor = yaml.SafeLoader("")

    def convert(self, node: yaml.Node, path: FieldPath) -> Any:
        self.sources.positions.setdefault(path, (self.file, node.start_mark.line + 1))
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                # Keys are taken as written: YAML 1.1 would turn `on:` into True.
                if not isinstance(key_node, yaml.ScalarNode):
                    self._problem(path, key_node, "mapping keys must be plain scalars")
                    continue
                key = key_node.value
                # A field is located at its key: a value may start on the next line.
                self.sources.positions.setdefault((*path, key), (self.file, key_node.start_mark.line + 1))
                if key in result:
                    self._problem((*path, key), key_node, f"key {key!r} is written twice")
                    continue
                result[key] = self.convert(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        return self.constructor.construct_object(node)

    def _problem(self, path: FieldPath, node: yaml.Node, message: str) -> None:
        self.problems.append(
            Problem(path=format_path(path), message=message, file=self.file, line=node.start_mark.line + 1)
        )
