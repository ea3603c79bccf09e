"""Find and read config sources: files, or directories of ``*.toml``, in precedence order."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from corral.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from corral.core.registry import SourceTexts

DEFAULT_FILE = "corral.toml"
DEFAULT_DIR = "corral.d"


def default_sources(cwd: str) -> list[str]:
    """Without ``-c``: ./corral.toml and ./corral.d/ where present."""
    found = [os.path.join(cwd, DEFAULT_FILE), os.path.join(cwd, DEFAULT_DIR)]
    return [path for path in found if os.path.exists(path)]


def project_dir(sources: list[str], cwd: str) -> str:
    """The directory the project lives in, where its ``.corral/`` goes: the one that holds the
    first source, be it a file or a directory (``./corral.d/`` alone: ``.``), or cwd."""
    if not sources:
        return cwd
    return os.path.dirname(os.path.abspath(sources[0]))


def read_sources(paths: list[str], vanished_ok: bool = False) -> SourceTexts:
    """``(path, text)`` for every file, directories expanded to their sorted ``*.toml``.

    A path that does not exist is an error (a typo in ``-c``), except with ``vanished_ok``:
    on a reload, a source whose file was deleted simply defines nothing any more. Sources
    that cannot be read are returned as problems beside the others, so that ``build``
    reports them together with whatever is wrong in the rest."""
    from corral.core.registry import SourceTexts  # not for `up -d`, which reads nothing

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
            try:
                names = sorted(os.listdir(path))
            except OSError as exc:
                problems.append(ConfigProblem(path, f"cannot read: {exc}"))
                continue
            files.extend(
                os.path.join(path, name)
                for name in names
                if name.endswith(".toml") and not name.startswith(".")
            )
        elif os.path.exists(path):
            files.append(path)
        elif not vanished_ok:
            problems.append(ConfigProblem(path, "no such file or directory"))
    texts = SourceTexts(problems=problems)
    for file in files:
        try:
            with open(file, encoding="utf-8") as handle:
                texts.append((file, handle.read()))
        except (OSError, UnicodeDecodeError) as exc:
            texts.problems.append(ConfigProblem(file, f"cannot read: {exc}"))
    return texts
