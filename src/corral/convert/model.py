"""What an importer makes: drafts of services, key by key with where each came from, and the
list of what it could not map (``FILE:LINE: KEY: not mapped (why)``), never left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.core.config import NOT_YET
from corral.core.values import PARSERS, SERVICE_NAME
from corral.errors import ConfigProblem


def supported(key: str) -> bool:
    """Whether this corral takes ``key``: DESIGN.md names keys (``limits``, ``stop_exec``,
    ...) that land one by one, and an importer maps to them as soon as they do."""
    return key in PARSERS and key not in NOT_YET


@dataclass
class Entry:
    """One key's value, and where it came from (``file`` None: the draft's own file)."""

    value: Any
    line: int | None = None
    file: str | None = None


@dataclass
class Draft:
    """One service as an importer made it: keys in the order they should be written."""

    name: str
    file: str
    line: int | None = None
    keys: dict[str, Entry] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)  # written above the table

    def set(self, key: str, value: Any, line: int | None = None, file: str | None = None) -> None:
        self.keys[key] = Entry(value, line, file)

    def value(self, key: str, default: Any = None) -> Any:
        entry = self.keys.get(key)
        return default if entry is None else entry.value


@dataclass(frozen=True)
class Unmapped:
    """Something of the source that has no place in corral's configuration, and why."""

    file: str
    line: int | None
    key: str
    why: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: not mapped ({self.why})"


@dataclass
class Imported:
    """The services of a source, what could not be mapped, and what stops it being read at
    all (a file that does not parse): ``problems`` are errors, ``unmapped`` are warnings."""

    drafts: list[Draft] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)

    def skip(self, file: str, line: int | None, key: str, why: str) -> None:
        self.unmapped.append(Unmapped(file, line, key, why))

    def fail(self, file: str, message: str, line: int | None = None) -> None:
        self.problems.append(ConfigProblem(file, message, line=line))

    def draft(self, name: str, file: str, line: int | None) -> Draft | None:
        """A new draft named ``name``; None (and a problem) for a name corral refuses or
        one already taken in this import."""
        if not SERVICE_NAME.match(name):
            self.fail(file, f'"{name}" cannot be a service name: letters, digits and _ . @ - '
                      "only, not starting with . @ -", line)  # fmt: skip
            return None
        if any(d.name == name for d in self.drafts):
            self.fail(file, f'a second service named "{name}"', line)
            return None
        draft = Draft(name, file, line)
        self.drafts.append(draft)
        return draft

    def extend(self, other: Imported) -> None:
        self.drafts += other.drafts
        self.unmapped += other.unmapped
        self.problems += other.problems


def not_yet(key: str) -> str:
    """The reason for a key DESIGN.md names and this corral does not have yet."""
    return f"corral does not implement {key} yet"
