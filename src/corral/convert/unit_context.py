"""What the unit importer keeps while it reads one unit: its draft, its specifiers, and the
keys that several directives add to (environment, dependencies, limits, paths)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corral.convert.ini import Setting
from corral.convert.model import Draft, Imported, not_yet, supported
from corral.convert.unit_exec import ExecLine, Specifiers, parse_command_line


@dataclass
class UnitContext:
    path: str
    draft: Draft
    result: Imported
    specifiers: Specifiers
    instance_var: str | None  # the variable %i stands for, in a template
    services: dict[str, str]  # unit stem -> corral name, of every unit imported together
    env: dict[str, str] = field(default_factory=dict)
    env_line: int | None = None
    deps: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # key -> (name, line)
    collected: dict[str, tuple[Any, int]] = field(default_factory=dict)  # planned key -> value
    wanted_by: bool = False
    service_type: str = "simple"

    def skip(self, setting: Setting, why: str, key: str | None = None) -> None:
        self.result.skip(self.path, setting.line, key or setting.key, why)

    def fail(self, setting: Setting, message: str) -> None:
        self.result.fail(self.path, f"{setting.key}: {message}", setting.line)

    def set(self, key: str, value: Any, setting: Setting) -> None:
        self.draft.set(key, value, setting.line)

    def planned(self, key: str, value: Any, setting: Setting) -> None:
        """A key DESIGN.md names: set it where this corral has it, else say it is not yet."""
        if supported(key):
            self.set(key, value, setting)
        else:
            self.skip(setting, not_yet(key))

    def commands(self, setting: Setting) -> list[ExecLine]:
        """An ``Exec*=`` value's commands; unknown specifiers are reported."""
        lines = parse_command_line(setting.value, self.specifiers)
        for line in lines:
            for specifier in line.unknown:
                self.skip(setting, f"corral has no value for the specifier {specifier}",
                          f"{setting.key} {specifier}")  # fmt: skip
        return lines

    def static(self, setting: Setting, text: str | None = None) -> str | None:
        """A value with its specifiers resolved, where none needs the instance (corral
        expands ``${VAR}`` only in commands); None, reported, where one does."""
        raw = setting.value if text is None else text
        out: list[str] = []
        for match in re.finditer(r"%(.)|[^%]+", raw):
            letter = match.group(1)
            if letter is None:
                out.append(match.group(0))
            elif letter == "%":
                out.append("%")
            elif letter in self.specifiers and "$" not in self.specifiers[letter]:
                out.append(self.specifiers[letter])
            else:
                why = ("corral expands the instance only in commands"
                       if letter in self.specifiers else f"no value for the specifier %{letter}")  # fmt: skip
                self.skip(setting, why)
                return None
        return "".join(out)
