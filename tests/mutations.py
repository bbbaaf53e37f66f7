"""Seeded structural mutations of real catalogs, for the fuzz tests.

A mutant is a real catalog (an example or a test catalog) changed in a few places: first as
data (a key deleted or duplicated, a value of another type, a huge or negative number, unicode,
an empty string, a duration at or past its bounds), then, sometimes, as text (a line written
twice, a tag, an alias, a recursive alias, an alias bomb, deep nesting, a number thousands of
digits long), which data cannot say.
The same seed always gives the same mutant.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meshgen.catalog.source import load_raw
from tests.support import EXAMPLES, TESTDATA

SOURCES = [*EXAMPLES, *sorted((TESTDATA / "catalogs").glob("*.yaml"))]

Path_ = tuple[str | int, ...]

NUMBERS = [0, 1, -1, -(2**31), 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**20, 10**400]
FLOATS = [0.5, -0.5, 1e-9, 99.99999, 100.00001, 1e308, float("inf"), float("-inf"), float("nan")]
STRINGS = ["", " ", "x", "ünïcødé", "名前", "\u202e", "😀", "a\x00b", "\t", "a" * 300, "v1", "-", "0s"]
DURATIONS = [
    "0s", "0ms", "1ms", "1.5ms", "0.0005s", "-1s", "1e3s", "5", "2562048h", "2562047h",
    "9223372035.999s", "9223372036s", "9223372036854775808ms", "9" * 60 + "s", "1." + "0" * 50 + "1s",
]  # fmt: skip
OTHERS: list[Any] = [None, True, False, [], {}, ["x"], {"x": 1}, [[[]]]]
TAGS = [
    "!custom",
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!binary",
    "!!set",
    "!!timestamp",
    "!!python/object:os.system",
]


@dataclass(frozen=True)
class Mutant:
    seed: int
    source: Path
    changes: list[str]
    text: str

    def describe(self) -> str:
        return f"seed {self.seed}, {self.source.name}: " + "; ".join(self.changes)


def mutant(seed: int) -> Mutant:
    rng = random.Random(seed)
    source = rng.choice(SOURCES)
    data: Any = load_raw(source).data
    changes: list[str] = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        # Half the changes keep a value plausible (at a bound, unicode), so that enough mutants
        # stay valid for rendering and Envoy to see them.
        mutate = rng.choice(EDGE_MUTATIONS if rng.random() < 0.5 else DATA_MUTATIONS)
        changes.append(mutate(rng, data))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
    if rng.random() < 0.35:
        mutate_text = rng.choice(TEXT_MUTATIONS)
        text, change = mutate_text(rng, text)
        changes.append(change)
    return Mutant(seed=seed, source=source, changes=changes, text=text)


# -- data ------------------------------------------------------------------------------------


def _paths(data: Any, path: Path_ = ()) -> list[Path_]:
    """Every value's path below `data` (not `data` itself)."""
    found: list[Path_] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*path, key))
            found.extend(_paths(value, (*path, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*path, index))
            found.extend(_paths(value, (*path, index)))
    return found


def _parent(data: Any, path: Path_) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def _pick(rng: random.Random, data: Any, want: Callable[[Any], bool] = lambda _: True) -> Path_ | None:
    candidates = [p for p in _paths(data) if want(_parent(data, p)[p[-1]])]
    return rng.choice(candidates) if candidates else None


def _replace(rng: random.Random, data: Any, values: list[Any], what: str, want: Callable[[Any], bool]) -> str:
    path = _pick(rng, data, want)
    if path is None:
        return f"{what}: nothing to change"
    value = copy.deepcopy(rng.choice(values))
    _parent(data, path)[path[-1]] = value
    return f"{what}: {_show(path)} = {value!r:.60}"


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_duration(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h)", value) is not None


def delete(rng: random.Random, data: Any) -> str:
    path = _pick(rng, data)
    if path is None:
        return "delete: nothing to delete"
    del _parent(data, path)[path[-1]]
    return f"delete {_show(path)}"


def duplicate(rng: random.Random, data: Any) -> str:
    path = _pick(rng, data, lambda v: isinstance(v, (dict, list)) and len(v) > 0)
    if path is None:
        return "duplicate: nothing to duplicate"
    container = _parent(data, path)[path[-1]]
    if isinstance(container, list):
        container.append(copy.deepcopy(rng.choice(container)))
        return f"duplicate an item of {_show(path)}"
    key = rng.choice(list(container))
    container[f"{key}-2"] = copy.deepcopy(container[key])
    return f"duplicate {_show((*path, key))} as {key}-2"


def retype(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, [*OTHERS, *STRINGS[:4], 7, 2.5], "retype", lambda _: True)


def huge(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, [n for n in NUMBERS if abs(n) >= 2**31] + FLOATS[5:], "huge", _is_number)


def negative(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, [-1, -(2**31), -0.5, float("-inf")], "negative", _is_number)


def number(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, NUMBERS + FLOATS, "number", _is_number)


def text(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, STRINGS, "string", lambda v: isinstance(v, str))


def duration(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, DURATIONS, "duration", _is_duration)


def rename(rng: random.Random, data: Any) -> str:
    path = _pick(rng, data, lambda _: True)
    if path is None or not isinstance(path[-1], str):
        return "rename: nothing to rename"
    parent = _parent(data, path)
    new = rng.choice([*STRINGS, path[-1].upper(), path[-1] + "s"])
    parent[new] = parent.pop(path[-1])
    return f"rename {_show(path)} to {new!r:.40}"


def edge_number(rng: random.Random, data: Any) -> str:
    return _replace(rng, data, [0, 1, 2, 20, 100, 200, 599, 65535, 2**32 - 1, 2**63 - 1], "edge number", _is_number)


def edge_duration(rng: random.Random, data: Any) -> str:
    values = ["0s", "1ms", "50ms", "0.001s", "1.5s", "59m", "2562047h", "9223372035.999s"]
    return _replace(rng, data, values, "edge duration", _is_duration)


def unicode(rng: random.Random, data: Any) -> str:
    path = _pick(rng, data, lambda v: isinstance(v, str) and not _is_duration(v))
    if path is None:
        return "unicode: no string"
    parent = _parent(data, path)
    parent[path[-1]] += rng.choice(["ü", "名前", "😀", "\u202e", " ", "\x00"])
    return f"unicode: {_show(path)} = {parent[path[-1]]!r:.60}"


DATA_MUTATIONS = [delete, duplicate, retype, huge, negative, number, text, duration, rename]
EDGE_MUTATIONS = [edge_number, edge_duration, edge_duration, unicode]


# -- text ------------------------------------------------------------------------------------

_VALUE_LINE = re.compile(r"^(\s*(?:- )?[^\s#:'\"-][^:#]*: )(\S.*)$")


def _value_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if _VALUE_LINE.match(line)]


def duplicate_line(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.splitlines()
    index = rng.randrange(len(lines))
    lines.insert(index, lines[index])
    return "\n".join(lines) + "\n", f"line {index + 1} written twice"


def _set_value(rng: random.Random, text: str, make: Callable[[str], str]) -> tuple[str, int] | None:
    lines = text.splitlines()
    candidates = _value_lines(lines)
    if not candidates:
        return None
    index = rng.choice(candidates)
    match = _VALUE_LINE.match(lines[index])
    assert match is not None
    lines[index] = match.group(1) + make(match.group(2))
    return "\n".join(lines) + "\n", index


def tag(rng: random.Random, text: str) -> tuple[str, str]:
    chosen = rng.choice(TAGS)
    done = _set_value(rng, text, lambda value: f"{chosen} {value}")
    return (done[0], f"tag {chosen} on line {done[1] + 1}") if done else (text, "tag: no value line")


def alias(rng: random.Random, text: str) -> tuple[str, str]:
    """An anchor on one value, an alias to it in place of a value further down."""
    lines = text.splitlines()
    candidates = _value_lines(lines)
    if len(candidates) < 2:
        return text, "alias: too few value lines"
    first, second = sorted(rng.sample(candidates, 2))
    anchored = _VALUE_LINE.match(lines[first])
    aliased = _VALUE_LINE.match(lines[second])
    assert anchored is not None and aliased is not None
    lines[first] = f"{anchored.group(1)}&shared {anchored.group(2)}"
    lines[second] = f"{aliased.group(1)}*shared"
    return "\n".join(lines) + "\n", f"line {second + 1} aliases line {first + 1}"


def recursive_alias(rng: random.Random, text: str) -> tuple[str, str]:
    shape = rng.choice(["&loop [*loop]", "&loop {again: *loop}", "&loop [1, {x: [*loop]}]"])
    done = _set_value(rng, text, lambda _: shape)
    return (done[0], f"recursive alias on line {done[1] + 1}") if done else (text, "recursive alias: no value line")


def alias_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    """Ten levels of ten aliases at the top, used in place of some value (anywhere in the file)."""
    levels = rng.randint(4, 10)
    bomb = ["lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    bomb += [f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 10)}]" for n in range(1, levels)]
    done = _set_value(rng, text, lambda _: f"*lol{levels - 1}")
    body = done[0] if done else text
    return "\n".join(bomb) + "\n" + body, f"alias bomb of {levels} levels"


def deep(rng: random.Random, text: str) -> tuple[str, str]:
    depth = rng.choice([50, 101, 500, 999, 1000, 5000])
    opening, closing = rng.choice([("[", "]"), ("{a: ", "}")])
    done = _set_value(rng, text, lambda _: opening * depth + "1" + closing * depth)
    return (done[0], f"{depth} levels deep on line {done[1] + 1}") if done else (text, "deep: no value line")


def long_literal(rng: random.Random, text: str) -> tuple[str, str]:
    """Numbers as only text can write them: thousands of decimal, hexadecimal, binary or base-60 digits."""
    literal = rng.choice(["9" * 5000, "0x" + "f" * 4000, "0b" + "1" * 20_000, "1" + ":59" * 3000, "-" + "9" * 400])
    done = _set_value(rng, text, lambda _: literal)
    return (done[0], f"{literal[:6]}... on line {done[1] + 1}") if done else (text, "long literal: no value line")


TEXT_MUTATIONS = [duplicate_line, tag, alias, recursive_alias, alias_bomb, deep, long_literal]


def _show(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(root)"
