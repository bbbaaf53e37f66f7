"""Quoting for systemd unit files and environment files, as systemd 252 (Debian 12) reads them.

- `meshgen.mesh.systemd_exec`: an argv list as the value of ExecStart=. systemd splits the value on
  whitespace, unquotes "double quotes" and takes C escapes in them (\\\\, \\", \\n, \\xHH, \\uXXXX),
  then expands specifiers (%i; %% is a %) in each word, and at start expands $VAR and ${VAR}
  ($$ is a $). Each word is written so that all of this gives it back unchanged.
- `meshgen.mesh.systemd_env`: a value for an EnvironmentFile= line. In "double quotes" systemd takes
  \\", \\\\, \\` and \\$ as escapes and everything else, newlines included, as it is; it expands
  nothing.
- `meshgen.mesh.systemd_path`: a path for a setting that expands specifiers but takes no quotes
  (WorkingDirectory=, EnvironmentFile=): only % is doubled.

Values that systemd cannot carry (a NUL character; a program name it would read as a prefix)
raise an error rather than becoming something else.
"""

from __future__ import annotations

import re
from typing import Any

try:
    from ansible.errors import AnsibleFilterError  # type: ignore[import-untyped]
except ImportError:  # outside Ansible (the unit tests import this file on its own)

    class AnsibleFilterError(Exception):  # type: ignore[no-redef]
        pass


# Words written without quotes: nothing systemd would split, unquote, unescape or expand.
_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
# systemd's ExecStart= prefixes, read off the first word after unquoting (so quotes cannot hide them).
_EXEC_PREFIXES = "@-:+!|"
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "%": "%%", "$": "$$"}


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise AnsibleFilterError(f"{what}: expected a string, got {type(value).__name__}")
    if "\0" in value:
        raise AnsibleFilterError(f"{what}: a NUL character cannot be passed")
    return value


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():  # every printable character, non-ASCII included, as it is (UTF-8)
        return char
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def exec_word(word: Any) -> str:
    """One argv word for ExecStart=."""
    text = _check_text(word, "command")
    if _PLAIN.fullmatch(text):
        return text
    return '"' + "".join(_escape_char(char) for char in text) + '"'


def exec_line(argv: Any) -> str:
    """An argv list as the value of ExecStart=."""
    if not isinstance(argv, (list, tuple)) or not argv:
        raise AnsibleFilterError(f"command: expected a non-empty list of strings, got {argv!r}")
    program = _check_text(argv[0], "command[0]")
    if "/" in program:
        if not program.startswith("/") or program.endswith("/"):
            raise AnsibleFilterError(f"command[0]: an absolute path or a name on systemd's PATH, got {program!r}")
    elif not program or program[0] in _EXEC_PREFIXES:
        raise AnsibleFilterError(f"command[0]: systemd would read {program!r} as a prefix of ExecStart=")
    return " ".join(exec_word(word) for word in argv)


def env_value(value: Any) -> str:
    """A value for a NAME=value line of an EnvironmentFile=."""
    text = _check_text(value if isinstance(value, str) else str(value), "environment")
    return '"' + re.sub(r'(["\\`$])', r"\\\1", text) + '"'


def path(value: Any) -> str:
    """A path for a setting that expands specifiers and takes no quotes."""
    return _check_text(value, "path").replace("%", "%%")


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "systemd_exec": exec_line,
            "systemd_env": env_value,
            "systemd_path": path,
        }
