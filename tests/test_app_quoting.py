"""The app role's quoting (the collection's plugins/filter/systemd_quote.py): an argv list written as
ExecStart=, and values written into an EnvironmentFile=, come back unchanged when read the way
systemd 252 reads them. The readers below follow systemd's own code (extract_first_word with
EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE and cunescape_one, unit specifiers, replace_env_argv at exec,
and env-file.c's parser), so a quoting that forgets an escape gives another argv or value here.
Molecule checks the same on real systemd (molecule/default/tests/test_apps.py)."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import REPO

PLUGIN = REPO / "plugins/filter/systemd_quote.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("systemd_quote", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quote = _load()

WHITESPACE = " \t\n\r"
# A unit's specifiers as systemd would expand them (a few of them; an unknown one is an error).
SPECIFIERS = {"i": "INSTANCE", "n": "meshgen-app-x.service", "h": "/root", "u": "root", "%": "%"}
# The environment the unit starts with: an unescaped $HOME or ${HOME} would show.
ENV = {"HOME": "/home/expanded", "MESHGEN_LISTEN": "127.0.0.1:8080", "SPLIT": "one two"}


class Refused(Exception):
    """systemd would refuse the line."""


def _cunescape_one(text: str, i: int) -> tuple[str, int]:
    """systemd's cunescape_one: the escape at text[i] (after the backslash) -> (char, length)."""
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    simple |= {"\\": "\\", '"': '"', "'": "'", "s": " "}
    c = text[i : i + 1]
    if c in simple and c:
        return simple[c], 1
    for lead, digits, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        if c == lead:
            found = text[i + 1 : i + 1 + digits]
            if len(found) != digits or not re.fullmatch(r"[0-9a-fA-F]+", found):
                raise Refused(f"bad \\{lead} escape")
            code = int(found, base)
            if code == 0 or (lead != "x" and (0xD800 <= code <= 0xDFFF or code > 0x10FFFF)):
                raise Refused("NUL or invalid code point")
            return chr(code), 1 + digits
    if c and c in "01234567":
        found = text[i : i + 3]
        if not re.fullmatch(r"[0-7]{3}", found) or int(found, 8) == 0 or int(found, 8) > 0o377:
            raise Refused("bad octal escape")
        return chr(int(found, 8)), 3
    raise Refused(f"invalid escape \\{c}")


def _words(value: str) -> list[str]:
    """extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), word after word; a lone unquoted
    ';' separates commands (refused here: one command only)."""
    words, i, n = [], 0, len(value)
    while True:
        while i < n and value[i] in WHITESPACE:
            i += 1
        if i >= n:
            return words
        if value[i] == ";" and (i + 1 == n or value[i + 1] in WHITESPACE):
            raise Refused("a second command")
        word, quote_char = "", ""
        while i < n:
            c = value[i]
            if c == "\\":
                char, length = _cunescape_one(value, i + 1)
                word += char
                i += 1 + length
            elif quote_char:
                if c == quote_char:
                    quote_char = ""
                else:
                    word += c
                i += 1
            elif c in "'\"":
                quote_char = c
                i += 1
            elif c in WHITESPACE:
                break
            else:
                word += c
                i += 1
        if quote_char:
            raise Refused("unbalanced quotes")
        words.append(word)


def _specifiers(word: str) -> str:
    out, i = "", 0
    while i < len(word):
        if word[i] == "%":
            letter = word[i + 1 : i + 2]
            if letter not in SPECIFIERS:
                raise Refused(f"unknown specifier %{letter}")
            out += SPECIFIERS[letter]
            i += 2
        else:
            out += word[i]
            i += 1
    return out


def _replace_env(word: str) -> str:
    """replace_env(): ${NAME} is substituted, $$ is a $, anything else stays."""
    out, i = "", 0
    while i < len(word):
        if word[i] == "$" and word[i + 1 : i + 2] == "$":
            out += "$"
            i += 2
        elif word[i] == "$" and word[i + 1 : i + 2] == "{":
            end = word.find("}", i)
            if end < 0:
                out += word[i:]
                break
            out += ENV.get(word[i + 2 : end], "")
            i = end + 1
        else:
            out += word[i]
            i += 1
    return out


def systemd_exec(value: str) -> list[str]:
    """The argv systemd runs for `ExecStart=<value>`."""
    if any(c in value for c in "\n\r\0"):  # a unit file is read line by line (read_line: \n, \r, NUL end one)
        raise Refused("the value ends the line")
    words = [_specifiers(w) for w in _words(value)]
    if not words:
        raise Refused("no command")
    program = words[0]
    if program[:1] in tuple("@-:+!|"):
        raise Refused("a prefix")
    if "/" in program and not program.startswith("/"):
        raise Refused("neither a name nor an absolute path")
    argv: list[str] = []
    for word in words:  # replace_env_argv: a whole-word $NAME is split on whitespace
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            argv.extend(ENV.get(word[1:], "").split())
        else:
            argv.append(_replace_env(word))
    return argv


def systemd_env_file(text: str) -> dict[str, str]:
    """env-file.c's parse_env_file_internal, without variable expansion (EnvironmentFile=)."""
    found: dict[str, str] = {}
    state, key, value = "pre_key", "", ""
    last_value_whitespace = -1

    def push() -> None:
        nonlocal key, value
        v = value if last_value_whitespace < 0 else value[:last_value_whitespace]
        found[key.rstrip(WHITESPACE)] = v
        key, value = "", ""

    for c in text + "\n":
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in WHITESPACE:
                state, key = "key", c
        elif state == "key":
            if c in "\n\r":
                state, key = "pre_key", ""
            elif c == "=":
                state, last_value_whitespace = "pre_value", -1
            else:
                key += c
        elif state == "pre_value":
            if c in "\n\r":
                push()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in WHITESPACE:
                state, value = "value", value + c
        elif state == "value":
            if c in "\n\r":
                push()
                state = "pre_key"
            elif c == "\\":
                state, last_value_whitespace = "value_escape", -1
            else:
                if c in WHITESPACE:
                    if last_value_whitespace < 0:
                        last_value_whitespace = len(value)
                else:
                    last_value_whitespace = -1
                value += c
        elif state == "value_escape":
            state = "value"
            if c != "\n":
                value += c
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value += c
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value += c
        elif state == "double_escape":
            state = "double"
            if c in '"\\`$':
                value += c
            elif c != "\n":
                value += "\\" + c
        elif state == "comment" and c in "\n\r":
            state = "pre_key"
    assert state == "pre_key", f"the file ends inside a value ({state})"
    return found


# --- the readers read what systemd documents


def test_the_reference_reader_reads_as_systemd_documents() -> None:
    assert systemd_exec('/bin/echo "a b" c\\x41 %i $HOME ${HOME}x $$HOME %%') == [
        "/bin/echo",
        "a b",
        "cA",
        "INSTANCE",
        "/home/expanded",
        "/home/expandedx",
        "$HOME",
        "%",
    ]
    assert systemd_exec("sh $SPLIT") == ["sh", "one", "two"]
    with pytest.raises(Refused):
        systemd_exec('/bin/echo "open')
    with pytest.raises(Refused):
        systemd_exec("/bin/echo %Q")
    assert systemd_env_file('A="x\\"y\\\\z\\$w\\q"\nB=plain value  \n#C=no\nD=\'it\'"s"\n') == {
        "A": 'x"y\\z$w\\q',
        "B": "plain value",
        "D": "its",
    }


# --- ExecStart=

NASTY = [
    "with space",
    'double "quotes"',
    "single 'quotes'",
    "$HOME and ${HOME} and $$",
    "100% %i %%n",
    "back\\slash \\n not a newline \\",
    "ünï cödé ✓ 日本 🦆",
    "line\nbreak\ttab\rcr",
    "\x01\x1b[0m\x7f",
    "\u00a0nbsp\u2028sep",
    ";",
    "",
    "'",
    '"',
    "#not a comment",
]


@pytest.mark.parametrize("word", NASTY, ids=range(len(NASTY)))
def test_each_argument_comes_back_unchanged(word: str) -> None:
    argv = ["/usr/bin/env", word, "tail"]
    assert systemd_exec(quote.exec_line(argv)) == argv


def test_the_molecule_command_is_quoted_as_written_here() -> None:
    argv = ["sh", "-c", 'exec python3 -m http.server --bind "${MESHGEN_LISTEN%:*}" "${MESHGEN_LISTEN##*:}"']
    line = quote.exec_line(argv)
    assert (
        line == 'sh -c "exec python3 -m http.server --bind \\"$${MESHGEN_LISTEN%%:*}\\" \\"$${MESHGEN_LISTEN##*:}\\""'
    )
    assert systemd_exec(line) == argv


def test_plain_words_stay_unquoted_and_paths_with_spaces_are_quoted() -> None:
    assert quote.exec_line(["/opt/app/bin/server", "--port=8080", "-v"]) == "/opt/app/bin/server --port=8080 -v"
    assert quote.exec_line(["/opt/my app/server"]) == '"/opt/my app/server"'
    assert systemd_exec(quote.exec_line(["/opt/my app/server"])) == ["/opt/my app/server"]


@pytest.mark.parametrize("argv", [["./server"], ["-server"], ["@server"], ["bin/"], [""], [], ["sh", "a\0b"]])
def test_what_systemd_cannot_run_as_given_is_refused(argv: list[str]) -> None:
    with pytest.raises(Exception, match=r"command"):
        quote.exec_line(argv)


# Any text without NUL (which no argv can hold) and without lone surrogates (not UTF-8).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.lists(TEXT, max_size=6))
def test_any_argv_comes_back_unchanged(words: list[str]) -> None:
    argv = ["/bin/app", *words]
    assert systemd_exec(quote.exec_line(argv)) == argv


# --- EnvironmentFile=


@pytest.mark.parametrize("value", NASTY, ids=range(len(NASTY)))
def test_each_environment_value_comes_back_unchanged(value: str) -> None:
    assert systemd_env_file(f"A=1\nVALUE={quote.env_value(value)}\nZ=2\n") == {"A": "1", "VALUE": value, "Z": "2"}


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_any_environment_value_comes_back_unchanged(value: str) -> None:
    assert systemd_env_file(f"VALUE={quote.env_value(value)}\n") == {"VALUE": value}


def test_environment_values_are_double_quoted_with_four_escapes() -> None:
    assert quote.env_value('a"b\\c`d$e %f\n') == '"a\\"b\\\\c\\`d\\$e %f\n"'
    assert quote.env_value(8080) == '"8080"'
    with pytest.raises(Exception, match="NUL"):
        quote.env_value("a\0b")


# --- paths


def test_paths_double_only_percent_signs() -> None:
    assert quote.path("/srv/100%/app") == "/srv/100%%/app"
    assert _specifiers(quote.path("/srv/100%/app %i")) == "/srv/100%/app %i"
