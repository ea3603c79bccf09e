"""Find and read config sources: files, or directories of ``*.toml``, in precedence order.

A file given by itself may also be a Procfile, a supervisord ``.conf``, a
``process-compose.yaml`` or a systemd unit (``corral.convert.detect_format`` tells): it is
converted here, with the files beside it that its format reads (a ``.env``, included
``.conf`` files, a unit's ``.socket``), into TOML that puts each key on the line of the file
it came from, so errors and ``config show`` name the original lines. What a conversion
cannot map is said on stderr, one line each, at every load.
"""

from __future__ import annotations

import glob
import os
import stat
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from corral.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from corral.convert.model import Imported
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


def read_sources(
    paths: list[str], vanished_ok: bool = False, warn: Callable[[str], None] | None = None
) -> SourceTexts:
    """``(path, text)`` for every file, directories expanded to their sorted ``*.toml``, and
    files of other formats converted (``warn`` gets each line a conversion could not map;
    by default stderr).

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
    read: list[tuple[str, str]] = []
    for file in files:
        try:
            read.append((file, _read(file)))
        except (OSError, UnicodeDecodeError) as exc:
            texts.problems.append(ConfigProblem(file, f"cannot read: {exc}"))
    _convert_foreign(read, texts, warn or _to_stderr)
    return texts


#: The largest config file read: past it, a file is refused rather than read into memory.
MAX_SOURCE_SIZE = 16 * 1024 * 1024


def _read(path: str) -> str:
    """A source's text. Only a regular file is read: a FIFO would block the read (and a
    reload, the daemon's loop) for ever, a device such as /dev/zero would fill the memory;
    opened without blocking, so that a FIFO is told apart, not waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        data = handle.read(MAX_SOURCE_SIZE + 1)
    if len(data) > MAX_SOURCE_SIZE:
        raise OSError(f"larger than {MAX_SOURCE_SIZE} bytes")
    return data.decode("utf-8")


def _to_stderr(line: str) -> None:
    print(f"corral: {line}", file=sys.stderr)


def _convert_foreign(
    read: list[tuple[str, str]], texts: SourceTexts, warn: Callable[[str], None]
) -> None:
    """Append each file to ``texts``: TOML as it is, other formats converted. The systemd
    units among them are converted together, so they may depend on one another."""
    from corral.convert import detect_format
    from corral.convert.toml_text import aligned

    formats = {path: detect_format(path, text) for path, text in read}
    units = [path for path, kind in formats.items() if kind == "systemd"]
    converted: dict[str, Imported] = {}
    for path, text in read:
        kind = formats[path]
        if kind is None:
            texts.append((path, text))
            continue
        if path not in converted:
            try:
                imported = (import_units_at(units, dict(read)) if kind == "systemd"
                            else import_file(path, text, kind))  # fmt: skip
            except (OSError, UnicodeDecodeError) as exc:
                texts.problems.append(ConfigProblem(path, f"cannot read what goes with it: {exc}"))
                continue
            converted.update(dict.fromkeys(units if kind == "systemd" else [path], imported))
            texts.problems.extend(imported.problems)
            for unmapped in imported.unmapped:
                warn(str(unmapped))
        texts.append((path, aligned(converted[path].drafts, path)))


def import_file(
    path: str, text: str, kind: str, formation: dict[str, int] | None = None
) -> Imported:
    """A file of a foreign format ``kind``, with the files beside it that the format reads;
    a companion that cannot be read is a problem of the result."""
    directory = os.path.dirname(path)
    if kind == "procfile":
        from corral.convert.procfile import import_procfile

        dotenv = os.path.join(directory, ".env")
        env = (dotenv, _read(dotenv)) if os.path.isfile(dotenv) else None
        return import_procfile(path, text, env, formation)
    if kind == "supervisord":
        from corral.convert.supervisord import import_supervisord, include_patterns

        included = []
        for pattern in include_patterns(text):
            for found in sorted(glob.glob(os.path.join(directory, pattern))):
                included.append((found, _read(found)))
        return import_supervisord(path, text, included)
    if kind == "process-compose":
        from corral.convert.process_compose import import_process_compose

        return import_process_compose(path, text)
    return import_units_at([path], {path: text})


def import_units_at(paths: Iterable[str], texts: dict[str, str]) -> Imported:
    """systemd units, each with the ``.socket`` or ``.service`` beside it that goes with it."""
    from corral.convert.systemd_import import import_units

    units = dict.fromkeys(paths)
    for path in list(units):
        stem, _, kind = path.rpartition(".")
        if kind == "service":
            units.setdefault(stem.removesuffix("@") + ".socket")
        else:
            units.setdefault(stem + ".service")
            units.setdefault(stem + "@.service")
    pairs = []
    for path in units:
        if path in texts:
            pairs.append((path, texts[path]))
        elif os.path.isfile(path):
            pairs.append((path, _read(path)))
    return import_units(pairs)
