"""Find and read config sources: files, or directories of ``*.toml``, in precedence order."""

from __future__ import annotations

import os

from corral.errors import ConfigError, ConfigProblem

DEFAULT_FILE = "corral.toml"
DEFAULT_DIR = "corral.d"


def default_sources(cwd: str) -> list[str]:
    """Without ``-c``: ./corral.toml and ./corral.d/ where present."""
    found = [os.path.join(cwd, DEFAULT_FILE), os.path.join(cwd, DEFAULT_DIR)]
    return [path for path in found if os.path.exists(path)]


def project_dir(sources: list[str], cwd: str) -> str:
    """The directory the project lives in: that of the first source (or cwd)."""
    if not sources:
        return cwd
    first = os.path.abspath(sources[0])
    return first if os.path.isdir(first) else os.path.dirname(first)


def read_sources(paths: list[str], vanished_ok: bool = False) -> list[tuple[str, str]]:
    """``(path, text)`` for every file, directories expanded to their sorted ``*.toml``.

    A path that does not exist is an error (a typo in ``-c``), except with ``vanished_ok``:
    on a reload, a source whose file was deleted simply defines nothing any more."""
    if not paths:
        raise ConfigError(
            [
                ConfigProblem(
                    ".",
                    f"no configuration: expected ./{DEFAULT_FILE} or ./{DEFAULT_DIR}/ (or -c PATH)",
                )
            ]
        )
    files: list[str] = []
    problems: list[ConfigProblem] = []
    for path in paths:
        if os.path.isdir(path):
            files.extend(
                os.path.join(path, name)
                for name in sorted(os.listdir(path))
                if name.endswith(".toml") and not name.startswith(".")
            )
        elif os.path.exists(path):
            files.append(path)
        elif not vanished_ok:
            problems.append(ConfigProblem(path, "no such file or directory"))
    texts = []
    for file in files:
        try:
            with open(file, encoding="utf-8") as handle:
                texts.append((file, handle.read()))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ConfigProblem(file, f"cannot read: {exc}"))
    if problems:
        raise ConfigError(problems)
    return texts
