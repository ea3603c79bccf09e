"""What the converter tests share: loading a conversion's TOML as corral would."""

from __future__ import annotations

from corral.convert.model import Imported
from corral.convert.toml_text import aligned, pretty
from corral.core.definition import Definition
from corral.core.registry import build


def definitions(imported: Imported) -> dict[str, Definition]:
    """The drafts, written as ``corral import`` prints them, loaded by corral's registry
    (ConfigError if ``config check`` would refuse them)."""
    assert not imported.problems, imported.problems
    return dict(build([("/imported/corral.toml", pretty(imported.drafts))]).definitions)


def loaded_in_place(imported: Imported, path: str) -> dict[str, Definition]:
    """The drafts of ``path``, aligned to its lines, loaded as ``corral up -c PATH`` does."""
    return dict(build([(path, aligned(imported.drafts, path))]).definitions)


def unmapped(imported: Imported) -> list[str]:
    return [str(line) for line in imported.unmapped]
