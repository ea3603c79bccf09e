"""Drafts written as TOML: laid out for people (``corral import``), or aligned so that every
key stands on the line of the foreign file it came from (``corral up -c Procfile``).

Aligned, a source converted on the fly keeps its own line numbers: the registry finds a key
by reading the text (``core.config.locate``), so an error or ``config show`` names the
Procfile's or the unit's own line. Each key is written as a dotted key
(``service.web.exec = ...``) on the line it came from; a key that has no line of its own in
that file (a second key made from one line, or one from a ``.env`` beside it) takes the next
free line after its origin, past the end of the file if need be.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from corral.convert.model import Draft, Entry

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
            "\f": "\\f"}  # fmt: skip


def key(name: str) -> str:
    """A TOML key: bare where it can be, else quoted."""
    return name if _BARE_KEY.match(name) else string(name)


def string(text: str) -> str:
    """A basic TOML string on one line (newlines escaped)."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def value(item: Any) -> str:
    """Any value a draft holds, as TOML on one line."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"no TOML for {item}")
        return str(int(item)) if item.is_integer() else repr(item)
    if isinstance(item, str):
        return string(item)
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(i) for i in item) + "]"
    if isinstance(item, dict):
        if not item:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"no TOML for {type(item).__name__}")


def pretty(drafts: Iterable[Draft], header: Iterable[str] = ()) -> str:
    """One ``[service.NAME]`` table per draft, for a person to read and keep."""
    lines = [f"# {text}" if text else "#" for text in header]
    for draft in drafts:
        if lines:
            lines.append("")
        lines += [f"# {text}" for text in draft.comments]
        lines.append(f"[service.{key(draft.name)}]")
        lines += [f"{key(name)} = {value(entry.value)}" for name, entry in draft.keys.items()]
    return "\n".join(lines) + "\n"


def aligned(drafts: Iterable[Draft], file: str) -> str:
    """The drafts whose table is in ``file``, each key on its line of that file."""
    placed: dict[int, str] = {}
    displaced: list[tuple[int, str]] = []
    for draft in drafts:
        if draft.file != file:
            continue
        if not draft.keys:  # a state with nothing to say still exists
            displaced.append((draft.line or 1, f"service.{key(draft.name)} = {{}}"))
        for name, entry in draft.keys.items():
            text = f"service.{key(draft.name)}.{key(name)} = {value(entry.value)}"
            line = _own_line(draft, entry, file)
            if line is not None and line not in placed:
                placed[line] = text
            else:
                displaced.append((line or draft.line or 1, text))
    for origin, text in displaced:
        line = origin
        while line in placed:
            line += 1
        placed[line] = text
    last = max(placed, default=0)
    return "\n".join(placed.get(number, "") for number in range(1, last + 1)) + "\n"


def _own_line(draft: Draft, entry: Entry, file: str) -> int | None:
    if entry.file not in (None, file) or entry.line is None:
        return None
    return entry.line
