"""Imports go downwards: the daemon and the control protocol never import the CLI (the
status table both render is ``corral.control.table``)."""

from __future__ import annotations

import ast
from pathlib import Path

import corral

PACKAGE = Path(corral.__file__).parent


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_neither_the_daemon_nor_the_protocol_imports_the_cli() -> None:
    upward = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for layer in ("daemon", "control", "core")
        for path in sorted((PACKAGE / layer).glob("*.py"))
        for name in _imported(path)
        if name == "corral.cli" or name.startswith("corral.cli.")
    }
    assert upward == set()
