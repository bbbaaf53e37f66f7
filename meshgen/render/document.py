"""Serialising rendered documents under a human-readable header.

Envoy configs are written as JSON under `#` comment lines, in `.yaml` files: JSON is YAML, so
Envoy (and any YAML tool) reads them as usual, the header still explains the file, and orjson
writes them about twenty times faster than PyYAML's emitter, which bounds how fast large meshes
generate. Small data for people (Ansible inventories) stays block-style YAML.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

# libyaml's emitter where PyYAML was built with it: the same output, several times faster.
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Block-style YAML that never emits anchors, so every file reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class Unsafe(str):
    """Text Ansible must take as it is, never as a template: written with Ansible's `!unsafe`
    tag, so a `{{`, `{%` or `{#` in it (a shell's `${#var}`) reaches the host unchanged."""

    __slots__ = ()


def _represent_unsafe(dumper: yaml.SafeDumper, data: Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(data))


_Dumper.add_representer(Unsafe, _represent_unsafe)


def to_yaml(document: Any, header: list[str] | None = None) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000)
    return _header(header) + body


def _header(header: list[str] | None) -> str:
    lines = [f"# {line}".rstrip() for line in header or []]
    return "\n".join(lines) + ("\n" if lines else "")


def to_config(document: Any, header: list[str] | None = None, *, compact: bool = False) -> str:
    """The document as JSON under the header: indented to be read, or `compact` where size is capped."""
    body = orjson.dumps(document) if compact else orjson.dumps(document, option=orjson.OPT_INDENT_2)
    return _header(header) + body.decode() + "\n"


def parse_config(text: str) -> Any:
    """Read a file written by to_config, or hand-written YAML."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
