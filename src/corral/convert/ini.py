"""INI files as supervisord and systemd write them, kept with their line numbers.

Two dialects: supervisord's (Python's RawConfigParser: ``key = value`` or ``key: value``,
``;`` and ``#`` comments, a line that starts with whitespace continues the value) and
systemd's (``Key=Value``, a trailing backslash continues the line, a key may repeat).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass
class Setting:
    key: str
    value: str
    line: int


@dataclass
class Section:
    name: str
    line: int
    settings: list[Setting] = field(default_factory=list)

    def last(self, key: str) -> Setting | None:
        """The setting that wins where a key is given twice."""
        found = [s for s in self.settings if s.key == key]
        return found[-1] if found else None


@dataclass
class Parsed:
    sections: list[Section] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


_HEADER = re.compile(r"^\[([^\]]+)\]\s*$")
_INLINE_COMMENT = re.compile(r"\s+;.*$")


def supervisor_ini(text: str) -> Parsed:
    """supervisord's dialect; an inline ``;`` comment needs whitespace before it."""
    parsed = Parsed()
    section: Section | None = None
    current: Setting | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip()[:1] in ("#", ";"):
            current = None if not raw.strip() else current
            continue
        if raw[:1].isspace() and current is not None:
            current.value += "\n" + _INLINE_COMMENT.sub("", raw.strip())
            continue
        line = raw.strip()
        header = _HEADER.match(line)
        if header:
            section = Section(header.group(1).strip(), number)
            parsed.sections.append(section)
            current = None
            continue
        match = re.match(r"^([^=:]+?)\s*[=:]\s*(.*)$", line)
        if section is None or match is None:
            parsed.errors.append((number, "expected [section] or key = value"))
            continue
        current = Setting(match.group(1).strip().lower(),
                          _INLINE_COMMENT.sub("", match.group(2)).strip(), number)  # fmt: skip
        section.settings.append(current)
    return parsed


def unit_ini(text: str) -> Parsed:
    """systemd's dialect (systemd.syntax(7)): a backslash at the end of a line joins the
    next one with a space, comment lines inside such a value are skipped."""
    parsed = Parsed()
    section: Section | None = None
    pending: Setting | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if pending is not None:
            if line.startswith(("#", ";")):
                continue
            pending.value += " " + line.removesuffix("\\").strip()
            if not line.endswith("\\"):
                pending = None
            continue
        if not line or line.startswith(("#", ";")):
            continue
        header = _HEADER.match(line)
        if header:
            section = Section(header.group(1), number)
            parsed.sections.append(section)
            continue
        name, sep, value = line.partition("=")
        if section is None or not sep or not name.strip():
            parsed.errors.append((number, "expected [Section] or Key=Value"))
            continue
        setting = Setting(name.strip(), value.strip().removesuffix("\\").strip(), number)
        section.settings.append(setting)
        if value.strip().endswith("\\"):
            pending = setting
    return parsed
