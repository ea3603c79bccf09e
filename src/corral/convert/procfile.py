"""A Procfile (and the ``.env`` beside it) as corral services, the way honcho and foreman run
them: each ``NAME: COMMAND`` line is a process type whose command runs under a shell, with
``PORT`` set to 5000 (or the ``.env``'s ``PORT``) plus 100 per process type in file order.

``formation`` is honcho's ``--concurrency`` / foreman's ``--formation``: ``all=1,web=2``. A
type with 0 processes is kept but not started by ``corral up``; one with N above 1 becomes a
service with one instance per port (``instance = "${PORT}"``), of which ``up`` starts the
first (corral has no key that starts N instances by itself).
"""

from __future__ import annotations

import posixpath
import re

from corral.convert.model import Imported
from corral.core.expand import parse_env_file

_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$")
_ENV_LINE = re.compile(r"^line (\d+): (.*)$")
BASE_PORT = 5000
PORT_STEP = 100


def parse_formation(text: str) -> dict[str, int]:
    """``all=1,web=2,worker=0`` as counts; ValueError says what is wrong."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, number = part.partition("=")
        if not sep or not name.strip() or not number.strip().isdigit():
            raise ValueError(f"formation: expected NAME=COUNT, got {part!r}")
        counts[name.strip()] = int(number)
    return counts


def import_procfile(
    path: str,
    text: str,
    dotenv: tuple[str, str] | None = None,
    formation: dict[str, int] | None = None,
) -> Imported:
    """The process types of a Procfile; ``dotenv`` is ``(path, text)`` of its ``.env``."""
    result = Imported()
    base = BASE_PORT
    if dotenv is not None:
        env = _read_dotenv(dotenv, result)
        if env.get("PORT", "").isdigit():
            base = int(env["PORT"])
    counts = formation or {}
    index = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            result.skip(path, number, line.partition(":")[0] or line,
                        'not a "NAME: COMMAND" line')  # fmt: skip
            continue
        name, command = match.groups()
        draft = result.draft(name, path, number)
        if draft is None:
            continue
        port = base + PORT_STEP * index
        index += 1
        draft.set("script", command, number)
        draft.set("env", {"PORT": str(port)}, number)
        if dotenv is not None:
            draft.set("env_file", posixpath.basename(dotenv[0]))
        count = counts.get(name, counts.get("all", 1))
        if count == 0:
            draft.set("autostart", False)
        elif count > 1:
            draft.set("instance", "${PORT}", number)
            draft.set("autostart", True)
            others = " ".join(f"PORT={port + n}" for n in range(1, count))
            result.skip(path, number, name, f"formation {name}={count}: corral up starts the "
                        f"first instance; start the others with: corral start {name} {others}")  # fmt: skip
    unknown = sorted(set(counts) - {"all"} - {d.name for d in result.drafts})
    for name in unknown:
        result.skip(path, None, f"formation {name}", "no such process type in the Procfile")
    return result


def _read_dotenv(dotenv: tuple[str, str], result: Imported) -> dict[str, str]:
    """The ``.env``'s variables (corral reads the file itself at each start, as
    ``env_file``); a line it cannot read is an error at that line."""
    path, text = dotenv
    try:
        return parse_env_file(text)
    except ValueError as exc:
        match = _ENV_LINE.match(str(exc))
        line, message = (int(match.group(1)), match.group(2)) if match else (None, str(exc))
        result.fail(path, message, line)
        return {}
