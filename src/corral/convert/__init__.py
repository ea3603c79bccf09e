"""Import and export: other tools' files to corral's TOML, and corral's definitions to theirs.

Pure, like ``core`` (the only package it imports): text comes in, text or drafts go out, and
the files are read by ``cli/convert.py`` and ``daemon/sources.py``. Every importer returns an
:class:`~corral.convert.model.Imported`: the services as drafts (each key with the line it
came from) and one :class:`~corral.convert.model.Unmapped` line for everything it could not
map, so nothing is dropped silently. ``toml_text`` writes drafts as TOML, for people or with
every key on the line of the file it came from (so ``corral up -c Procfile`` reports errors
at the Procfile's own lines). Exporters take the definitions ``config check`` builds.
"""

from __future__ import annotations

import posixpath

#: The formats ``corral import`` and ``corral up -c`` read besides TOML.
FORMATS = ("procfile", "supervisord", "process-compose", "systemd")


def detect_format(path: str, text: str) -> str | None:
    """Which foreign format a file is in, by its name and then its content; None for TOML
    (corral's own), which is also what a file no rule recognises is read as."""
    name = posixpath.basename(path)
    lower = name.lower()
    if lower.endswith(".toml"):
        return None
    if lower == "procfile" or lower.startswith("procfile.") or lower.endswith(".procfile"):
        return "procfile"
    if lower.endswith((".service", ".socket")):
        return "systemd"
    if lower.endswith((".yaml", ".yml")):
        return "process-compose" if _has_line(text, "processes:") else None
    if lower.endswith((".conf", ".ini")) and _has_section(text, ("program:", "supervisord")):
        return "supervisord"
    return None


def _has_line(text: str, start: str) -> bool:
    return any(line.startswith(start) for line in text.splitlines())


def _has_section(text: str, names: tuple[str, ...]) -> bool:
    return any(line.strip().lstrip("[").startswith(names) for line in text.splitlines()
               if line.strip().startswith("["))  # fmt: skip
