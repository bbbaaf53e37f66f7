"""Where each catalog value was written: field paths and the file and line of each."""

from __future__ import annotations

from dataclasses import dataclass, field

from meshgen.errors import Problem

FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """`("services", "users", "routes", 1, "to")` -> `services.users.routes[1].to`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class SourceMap:
    """Where each field path was written: file and 1-based line."""

    positions: dict[FieldPath, tuple[str, int]] = field(default_factory=dict)

    def locate(self, path: FieldPath) -> tuple[str | None, int | None]:
        """The position of `path`, or of its nearest ancestor the YAML had."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found:
                return found
        return None, None

    def problem(self, path: FieldPath, message: str) -> Problem:
        file, line = self.locate(path)
        return Problem(path=format_path(path), message=message, file=file, line=line)
