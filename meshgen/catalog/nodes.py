"""Plain Python data from a composed YAML node tree, with the position of every value.

A catalog is plain data: mappings, lists and scalars. YAML can say much more, and some of it is
built to hurt a reader: an alias bomb expands exponentially, an alias inside its own anchor
never ends, thousands of nested brackets exhaust the stack, a tag asks for a constructor. Each
is refused here as a located problem, before anything expands or recurses without bound.
"""

from __future__ import annotations

from typing import Any

import yaml

from meshgen.catalog.positions import FieldPath, SourceMap, format_path
from meshgen.errors import Problem, quote

# Aliases in a real catalog share small blocks (a retry policy, a circuit breaker) between
# services, so the values read are a small multiple of the values written. An alias bomb grows
# exponentially: ten levels of ten aliases stand for 10**10 values written in ten lines. Reading
# stops past ten times the values written so far plus 100,000: far above any real catalog (one
# with 1,000 services writes about 27,000 values, none of them repeated), and a bomb is refused
# within a fraction of a second and a few tens of MB.
EXPANSION_FACTOR = 10
EXPANSION_ALLOWANCE = 100_000
# The deepest field a catalog has is about ten levels down (services.NAME.routes[i].fault.
# headers.NAME.exact); a hundred keeps the converter's recursion far from Python's limit.
MAX_DEPTH = 100
# No catalog number is near 1,024 bits, and Python cannot even print an integer of more than
# 4,300 digits, which YAML's hexadecimal and base-60 integers reach in a few kilobytes.
MAX_INTEGER_BITS = 1024
# The tags YAML gives plain scalars by itself are the only ones read (a date stays a date, for
# the schema to refuse); what each is called in a message.
_SCALAR_KINDS = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "date",
}
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def to_python(root: yaml.Node, file: str, sources: SourceMap, problems: list[Problem]) -> Any:
    """The data `root` stands for; positions go into `sources`, mistakes into `problems`.

    None when the document is refused as a whole (an alias bomb, a cycle, nesting too deep).
    """
    try:
        return _Converter(file, sources, problems).convert(root, ())
    except _Refused as refused:
        problems.append(refused.problem)
        return None


class _Refused(Exception):
    """Stops converting a document that cannot be read as a whole."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _Converter:
    """Turns a composed YAML node tree into plain Python, recording positions.

    Unlike yaml.safe_load, a key written twice in one mapping is an error, not a silent overwrite.
    """

    def __init__(self, file: str, sources: SourceMap, problems: list[Problem]) -> None:
        self.file = file
        self.sources = sources
        self.problems = problems
        self.constructor = yaml.SafeLoader("")
        self.values = 0  # values read so far, each alias expansion counted again
        # Every node met so far: True while it is being read, False once read. libyaml's
        # composer (like PyYAML's) gives an alias the very node object of its anchor, so meeting
        # a node again is an alias, and meeting one still being read is an alias inside itself.
        self.reading: dict[int, bool] = {}
        self.alias: FieldPath | None = None  # where the outermost alias being expanded is used

    def convert(self, node: yaml.Node, path: FieldPath) -> Any:
        key = id(node)
        met = self.reading.get(key)
        outermost = False
        if met is None:
            self.sources.positions.setdefault(path, (self.file, node.start_mark.line + 1))
        elif met:
            raise _Refused(self.sources.problem(path, "recursive alias: the value contains itself"))
        elif self.alias is None:
            # Not located at the node's line: an alias's node is its anchor's, written elsewhere.
            outermost = True
            self.alias = path
        self.values += 1
        if self.values > EXPANSION_FACTOR * len(self.reading) + EXPANSION_ALLOWANCE:
            message = (
                f"aliases expand {len(self.reading):,} written values to more than {self.values - 1:,}, "
                "far beyond any catalog: refused as an alias bomb"
            )
            raise _Refused(self.sources.problem(self.alias or path, message))
        if len(path) > MAX_DEPTH:
            # The line says where; the first steps of the path say under which field.
            raise _Refused(self._problem_at(node, f"nested more than {MAX_DEPTH} levels deep", path[:3]))
        # No clean-up on _Refused: it abandons the whole document.
        self.reading[key] = True
        value = self._value(node, path)
        self.reading[key] = False
        if outermost:
            self.alias = None
        return value

    def _value(self, node: yaml.Node, path: FieldPath) -> Any:
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
            self.problems.append(self.sources.problem(path, f"unsupported tag {_short(node.tag)!r}"))
            return None
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                # Keys are taken as written: YAML 1.1 would turn `on:` into True.
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(self._problem_at(key_node, "mapping keys must be plain scalars", path))
                    continue
                key = key_node.value
                # A field is located at its key: a value may start on the next line.
                self.sources.positions.setdefault((*path, key), (self.file, key_node.start_mark.line + 1))
                if key in result:
                    self.problems.append(self._problem_at(key_node, f"key {key!r} is written twice", (*path, key)))
                    continue
                result[key] = self.convert(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        kind = _SCALAR_KINDS.get(node.tag)
        if kind is None:
            self.problems.append(self.sources.problem(path, f"unsupported tag {_short(node.tag)!r}"))
            return None
        try:
            value = self.constructor.construct_object(node)
        # PyYAML's constructors fail in their own ways on text their tag does not fit (int("x"),
        # a boolean looked up in a table, a date regex that does not match, a 5,000-digit integer).
        except (ValueError, LookupError, AttributeError, ArithmeticError, yaml.YAMLError):
            self.problems.append(self.sources.problem(path, f"not a valid {kind}: {quote(node.value)}"))
            return None
        if isinstance(value, int) and value.bit_length() > MAX_INTEGER_BITS:
            self.problems.append(self.sources.problem(path, f"not a valid integer, too large: {quote(node.value)}"))
            return None
        return value

    def _problem_at(self, node: yaml.Node, message: str, path: FieldPath = ()) -> Problem:
        return Problem(path=format_path(path), message=message, file=self.file, line=node.start_mark.line + 1)


def _short(tag: str) -> str:
    """`tag:yaml.org,2002:set` -> `!!set`, as it is written."""
    return tag.replace("tag:yaml.org,2002:", "!!", 1)
