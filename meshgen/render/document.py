"""Serialising rendered documents: deterministic YAML under a human-readable header."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block-style YAML that never emits anchors, so every file reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: Any, header: list[str] | None = None) -> str:
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000)
    lines = [f"# {line}".rstrip() for line in header or []]
    return "\n".join(lines) + ("\n" if lines else "") + body
