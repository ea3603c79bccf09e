"""The layout the architecture promises (docs/architecture.md), checked on the source itself:
no import cycle anywhere (type-checking imports included), each layer imports only the ones
below it, and every module and class stays small enough to read in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "corral"

#: Which packages a package may import from (besides itself and the top-level modules).
LAYERS = {
    "core": set(),
    "control": {"core"},
    "daemon": {"core", "control", "convert"},  # sources read a Procfile or a unit directly
    "bridges": {"core", "control"},
    "convert": {"core"},  # import and export: text in, text or definitions out
    "cli": {
        "core",
        "control",
        "daemon",
        "convert",
    },  # ``up`` runs the daemon; nothing imports the CLI
}
#: Top-level modules every layer may use (the error family, the version).
SHARED = {"corral", "corral.errors", "corral.__main__"}

MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every corral module this one imports, at any depth of its code (functions too)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_no_import_cycle_anywhere() -> None:
    edges = graph()
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    for name in edges:
        edges[name] = {t for t in edges[name] if not name.startswith(t + ".") or t == "corral"}
    edges["corral"] = {t for t in edges.get("corral", set()) if not t.startswith("corral.")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else None


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_those_below_it(layer: str) -> None:
    wrong = []
    for name, targets in graph().items():
        if layer_of(name) != layer:
            continue
        for target in targets:
            other = layer_of(target)
            if target in SHARED or other == layer or other is None:
                continue
            if other not in LAYERS[layer]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_modules_and_classes_stay_small() -> None:
    too_big = []
    for name, path in modules().items():
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            too_big.append(f"{name}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_big.append(f"{name}.{node.name}: {size} lines (at most {MAX_CLASS_LINES})")
    assert not too_big, "\n".join(too_big)


def test_the_checks_see_a_cycle_when_there_is_one(tmp_path: Path) -> None:
    """The walk itself: two modules importing each other, relatively and absolutely."""
    pkg = tmp_path / "corral" / "daemon"
    pkg.mkdir(parents=True)
    (tmp_path / "corral" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from corral.daemon.b import x\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n"
    )
    known = {module_name_in(tmp_path, p): p for p in (tmp_path / "corral").rglob("*.py")}
    assert imports_of("corral.daemon.a", pkg / "a.py", known) == {"corral.daemon.b"}
    assert imports_of("corral.daemon.b", pkg / "b.py", known) == {"corral.daemon.a"}


def module_name_in(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
