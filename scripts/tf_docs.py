#!/usr/bin/env python3
"""Write or check the Inputs/Outputs tables of the Terraform modules' READMEs.

    python scripts/tf_docs.py                        # rewrite every terraform/modules/*/README.md
    python scripts/tf_docs.py terraform/modules/X    # rewrite one module's README
    python scripts/tf_docs.py --check                # exit 1 if any README is out of date

The tables go between <!-- BEGIN_TF_DOCS --> and <!-- END_TF_DOCS --> in README.md; the rest of
the README is left alone. Variables come from variables.tf and outputs from outputs.tf, parsed
with python-hcl2, in the order they are declared. Every variable must have a description and a
type and every output a description: a missing one is reported and makes the run fail.
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODULES = REPO / "terraform" / "modules"
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
# Types up to this length that are not objects stay on one line.
INLINE_TYPE = 40


@dataclass
class Variable:
    name: str
    description: str | None
    type: str | None
    has_default: bool
    default: Any


@dataclass
class Output:
    name: str
    description: str | None


# -- parsing ---------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    try:
        import hcl2
    except ImportError:  # pragma: no cover - depends on the environment
        sys.exit("tf_docs.py needs python-hcl2: pip install python-hcl2")
    with path.open(encoding="utf-8") as handle:
        options_type = getattr(hcl2, "SerializationOptions", None)
        if options_type is None:  # python-hcl2 < 8: strings without quotes, escapes left as written
            return _unescape(dict(hcl2.load(handle)))
        options = options_type(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
        return dict(hcl2.load(handle, serialization_options=options))


def _unescape(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), value)
    if isinstance(value, list):
        return [_unescape(item) for item in value]
    if isinstance(value, dict):
        return {key: _unescape(item) for key, item in value.items()}
    return value


def raw_types(path: Path) -> dict[str, str]:
    """Each variable's type expression as written (terraform fmt layout: the block's attributes are
    indented two spaces and its closing brace is in column 0), without the common indentation."""
    text = path.read_text(encoding="utf-8")
    types = {}
    for block in re.finditer(r'(?ms)^variable\s+"([^"]+)"\s*\{\n(.*?)^\}', text):
        found = re.search(r"(?m)^  type\s*=\s*", block.group(2))
        if found is None:
            continue
        lines = []
        depth = 0
        for line in block.group(2)[found.end() :].split("\n"):
            lines.append(line)
            depth += sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}")
            if depth <= 0:
                break
        types[block.group(1)] = "\n".join(
            lines[:1] + [line[2:] if line.startswith("  ") else line for line in lines[1:]]
        )
    return types


def _unquote(value: Any) -> Any:
    """A value as written: strings without HCL quotes or a ${...} expression wrapper (any hcl2 version)."""
    if isinstance(value, list):
        return [_unquote(item) for item in value]
    if isinstance(value, dict):
        return {_unquote(key): _unquote(item) for key, item in value.items() if not str(key).startswith("__")}
    if isinstance(value, str):
        return _unquote_string(value)
    return value


def _unquote_string(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except json.JSONDecodeError:
            return value[1:-1]
    if value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    return value


def _blocks(parsed: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for entry in parsed.get(kind, []):
        for name, body in entry.items():
            found.append((str(_unquote(name)), body))
    return found


def read_module(module: Path) -> tuple[list[Variable], list[Output]]:
    variables = []
    if (module / "variables.tf").exists():
        types = raw_types(module / "variables.tf")
        for name, body in _blocks(_load(module / "variables.tf"), "variable"):
            variables.append(
                Variable(
                    name=name,
                    description=_unquote(body.get("description")),
                    type=types.get(name) if "type" in body else None,
                    has_default="default" in body,
                    default=_unquote(body.get("default")),
                )
            )
    outputs = []
    if (module / "outputs.tf").exists():
        for name, body in _blocks(_load(module / "outputs.tf"), "output"):
            outputs.append(Output(name=name, description=_unquote(body.get("description"))))
    return variables, outputs


def problems(module: Path, variables: list[Variable], outputs: list[Output]) -> list[str]:
    found = []
    for variable in variables:
        if not variable.description:
            found.append(f"{module}: variable {variable.name} has no description")
        if not variable.type:
            found.append(f"{module}: variable {variable.name} has no type")
    found += [f"{module}: output {o.name} has no description" for o in outputs if not o.description]
    return found


# -- rendering -------------------------------------------------------------------------------


def pretty_type(expression: str) -> str:
    """One attribute per line inside object({...}), indented by nesting."""
    lines: list[str] = []
    line = ""
    depth = 0
    stack: list[str] = []
    quoted = False
    i = 0
    while i < len(expression):
        char = expression[i]
        if quoted:
            line += char
            if char == "\\" and i + 1 < len(expression):
                line += expression[i + 1]
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
            line += char
        elif expression.startswith("{}", i):
            line += "{}"
            i += 1
        elif char == "{":
            stack.append(char)
            depth += 1
            lines.append(line + "{")
            line = "  " * depth
        elif char == "}":
            stack.pop()
            depth -= 1
            if line.strip():
                lines.append(line.rstrip().rstrip(","))
            line = "  " * depth + "}"
        elif char in "([":
            stack.append(char)
            line += char
        elif char in ")]":
            stack.pop()
            line += char
        elif char == "," and stack and stack[-1] == "{":
            lines.append(line.rstrip())
            line = "  " * depth
            while i + 1 < len(expression) and expression[i + 1] == " ":
                i += 1
        else:
            line += char
        i += 1
    if line.strip():
        lines.append(line)
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Table cell text: one line, with <, > and & shown as written rather than read as HTML."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _code(text: str) -> str:
    """Inline code, or a <pre> block for several lines."""
    if "\n" not in text:
        return "`" + text.replace("|", "\\|") + "`"
    return (
        "<pre>"
        + "<br>".join(html.escape(line, quote=False).replace("|", "&#124;") for line in text.split("\n"))
        + "</pre>"
    )


def render_type(expression: str) -> str:
    """Short types inline; long ones in a block, as written or laid out one attribute a line."""
    if "\n" in expression or (len(expression) <= INLINE_TYPE and "object(" not in expression):
        return _code(expression)
    return _code(pretty_type(expression))


def render_default(variable: Variable) -> str:
    if not variable.has_default:
        return "n/a"
    value = variable.default
    if isinstance(value, (dict, list)) and value:
        return _code(json.dumps(value, indent=2))
    return _code(json.dumps(value))


def render(variables: list[Variable], outputs: list[Output]) -> str:
    parts = [BEGIN, "## Inputs", ""]
    if variables:
        parts += [
            "| Name | Description | Type | Default | Required |",
            "|------|-------------|------|---------|:--------:|",
        ]
        for v in variables:
            cells = [
                f"`{v.name}`",
                _cell(v.description or ""),
                render_type(v.type or "any"),
                render_default(v),
                "no" if v.has_default else "yes",
            ]
            parts.append("| " + " | ".join(cells) + " |")
    else:
        parts.append("No inputs.")
    parts += ["", "## Outputs", ""]
    if outputs:
        parts += ["| Name | Description |", "|------|-------------|"]
        parts += [f"| `{o.name}` | {_cell(o.description or '')} |" for o in outputs]
    else:
        parts.append("No outputs.")
    parts.append(END)
    return "\n".join(parts)


def updated_readme(readme: str, tables: str) -> str:
    start = readme.index(BEGIN)
    end = readme.index(END, start) + len(END)
    return readme[:start] + tables + readme[end:]


# -- command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", type=Path, help="module directories (default: terraform/modules/*)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a README is out of date")
    args = parser.parse_args(argv)

    modules = args.modules or sorted(p.parent for p in MODULES.glob("*/variables.tf"))
    failed = False
    for module in modules:
        readme_path = module / "README.md"
        variables, outputs = read_module(module)
        for problem in problems(module, variables, outputs):
            print(problem, file=sys.stderr)
            failed = True
        if not readme_path.exists():
            print(f"{readme_path}: missing", file=sys.stderr)
            failed = True
            continue
        readme = readme_path.read_text(encoding="utf-8")
        if BEGIN not in readme or END not in readme:
            print(f"{readme_path}: no {BEGIN} ... {END} markers", file=sys.stderr)
            failed = True
            continue
        wanted = updated_readme(readme, render(variables, outputs))
        if wanted == readme:
            continue
        if args.check:
            print(f"{readme_path}: out of date; run python scripts/tf_docs.py {module}", file=sys.stderr)
            diff = difflib.unified_diff(
                readme.splitlines(), wanted.splitlines(), str(readme_path), "generated", lineterm="", n=1
            )
            print("\n".join(list(diff)[:40]), file=sys.stderr)
            failed = True
        else:
            readme_path.write_text(wanted, encoding="utf-8")
            print(f"{readme_path}: updated")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
