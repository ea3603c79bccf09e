"""``$VAR`` / ``${VAR}`` expansion of exec words and env files, done by corral (no shell).

Pure. ``$$`` is a literal dollar. An unset variable is an error rather than an empty string:
a typo in a command line should say so, not run the program with a missing argument.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

#: ``$$``, ``${VAR}`` or ``$VAR``; groups 1 or 2 hold the name (neither for ``$$``).
VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class UnsetVariable(KeyError):
    """A ``$VAR`` names a variable that the instance's environment does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"variable ${self.name} is not set"


def expand(word: str, env: Mapping[str, str]) -> str:
    """Replace ``$VAR`` and ``${VAR}`` in one word from ``env``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name is None:
            return "$"
        if name not in env:
            raise UnsetVariable(name)
        return env[name]

    return VARIABLE.sub(replace, word)


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd and docker read them: ``#`` comments, blank lines, an
    optional ``export``, values optionally quoted (single quotes literal, double quotes with
    backslash escapes). Raises ValueError naming the line that is not of that form."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"line {number}: expected NAME=VALUE, got {raw.strip()!r}")
        value = value.strip()
        if value[:1] in ("'", '"'):
            try:
                parts = shlex.split(value, posix=True)
            except ValueError:
                raise ValueError(f"line {number}: unterminated quote") from None
            value = parts[0] if parts else ""
        env[name] = value
    return env
