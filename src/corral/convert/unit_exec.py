"""systemd's command lines (``ExecStart=`` and the rest) to corral's argv and back.

systemd splits a command line itself (quotes, C escapes, ``;`` between commands), resolves
specifiers (``%i``, ``%n``, ...) first, and expands ``${VAR}`` anywhere and ``$VAR`` as a
whole word; ``$$`` is a dollar. corral expands ``$VAR`` and ``${VAR}`` in every word and
also reads ``$$`` as a dollar, so a word is carried over with its variables as ``${VAR}`` and
every other dollar doubled. (systemd splits a whole-word ``$VAR`` at whitespace; corral keeps
it one word.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_PREFIXES = "@-:+!"
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
              "\\": "\\", '"': '"', "'": "'", "s": " ", ";": ";"}  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class ExecLine:
    """One command of a command line: its prefixes and its words in corral's syntax."""

    prefixes: str
    argv: list[str]
    unknown: list[str] = field(default_factory=list)  # specifiers with no value here


#: ``%x`` -> its text in corral's syntax (``${I}`` for a template's instance).
Specifiers = Mapping[str, str]


def parse_command_line(text: str, specifiers: Specifiers) -> list[ExecLine]:
    """The commands of one ``Exec*=`` value (several where ``;`` separates them)."""
    lines: list[ExecLine] = []
    rest = text.strip()
    while rest:
        prefixes = ""
        while rest[:1] and rest[0] in _PREFIXES:
            prefixes += rest[0]
            rest = rest[1:]
        words, unknown, rest = _words(rest, specifiers, expand=":" not in prefixes)
        if words:
            lines.append(ExecLine(prefixes, words, unknown))
        rest = rest.strip()
    return lines


def _words(text: str, specifiers: Specifiers, expand: bool) -> tuple[list[str], list[str], str]:
    """Words up to a lone ``;`` (the rest of the text is returned after it)."""
    words: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        if text[i] == ";" and (i + 1 == len(text) or text[i + 1].isspace()):
            return words, unknown, text[i + 1 :]
        word, i = _word(text, i, specifiers, expand, unknown)
        words.append(word)
    return words, unknown, ""


def _word(
    text: str, i: int, specifiers: Specifiers, expand: bool, unknown: list[str]
) -> tuple[str, int]:
    """One word from ``text[i]``: quotes removed, escapes and specifiers resolved, dollars in
    corral's syntax."""
    start = i
    out: list[str] = []
    quote = ""
    while i < len(text) and (quote or not text[i].isspace()):
        char = text[i]
        if char in "\"'" and (not quote or quote == char):
            quote = "" if quote else char
            i += 1
        elif char == "\\" and i + 1 < len(text) and quote != "'":
            escaped, i = _escape(text, i + 1)
            out.append(escaped.replace("$", "$$"))
        elif char == "%" and i + 1 < len(text):
            letter = text[i + 1]
            if letter == "%":
                out.append("%")
            elif letter in specifiers:
                out.append(specifiers[letter])
            else:
                unknown.append("%" + letter)
                out.append("%" + letter)
            i += 2
        elif char == "$":
            dollar, i = _dollar(text, i, start, expand)
            out.append(dollar)
        else:
            out.append(char)
            i += 1
    return "".join(out), i


def _dollar(text: str, i: int, start: int, expand: bool) -> tuple[str, int]:
    """``$$``, ``${VAR}``, a whole-word ``$VAR``, or a plain dollar, in corral's syntax."""
    if text.startswith("$$", i):
        return "$$", i + 2
    if expand and (braced := re.match(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text[i:])):
        return "${" + braced.group(1) + "}", i + braced.end()
    bare = _NAME.match(text, i + 1)
    whole = (
        bare is not None and i == start and (bare.end() == len(text) or text[bare.end()].isspace())
    )
    if expand and bare is not None and whole:
        return "${" + bare.group(0) + "}", bare.end()
    return "$$", i + 1


def _escape(text: str, i: int) -> tuple[str, int]:
    char = text[i]
    if char in _C_ESCAPES:
        return _C_ESCAPES[char], i + 1
    if char == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 1 : i + 3]):
        return chr(int(text[i + 1 : i + 3], 16)), i + 3
    if re.fullmatch(r"[0-7]{3}", text[i : i + 3]):
        return chr(int(text[i : i + 3], 8)), i + 3
    return "\\" + char, i + 1


# -- corral's words to a systemd command line ---------------------------------------------


_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def unit_word(word: str, rename: Callable[[str], str] = lambda name: "${" + name + "}") -> str:
    """One corral word as systemd reads it: variables as ``${VAR}`` (``rename`` may say
    otherwise, e.g. ``%i`` for a template's instance), ``%`` doubled, quoted where needed."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return "$$" if name is None else rename(name)

    pieces = []
    last = 0
    for match in _VARIABLE.finditer(word):
        pieces.append(_quoted_text(word[last : match.start()]))
        pieces.append(variable(match))
        last = match.end()
    pieces.append(_quoted_text(word[last:]))
    body = "".join(pieces)
    if body and not re.search(r"[\s\"';]", word) and "\\" not in word:
        return body
    return '"' + body + '"'


def _quoted_text(text: str) -> str:
    """Literal text inside a word: ``%`` and ``$`` doubled, escapes for what needs them."""
    escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "%": "%%",
               "$": "$$"}  # fmt: skip
    return "".join(escapes.get(c, c) for c in text)


def unit_command(
    argv: list[str] | tuple[str, ...], rename: Callable[[str], str] | None = None
) -> str:
    """A whole argv as a systemd command line (a program whose name starts like a prefix,
    ``-`` or ``@``, quoted so that it is not read as one)."""
    words = [unit_word(word) if rename is None else unit_word(word, rename) for word in argv]
    if words and words[0][:1] in _PREFIXES:
        words[0] = f'"{words[0]}"'
    return " ".join(words)
