"""Definitions from several sources, with precedence and overrides (Upstart's and systemd's).

Pure: the caller reads the files and passes ``(path, text)`` pairs in increasing precedence.
For every service name the registry keeps each layer that mentions it, in that order:

* a *definition* (``[service.NAME]``) replaces every lesser layer of the same name, so when
  the file of the greatest one goes away the next one becomes current again ("lesser
  precedent job");
* an *override* (``[service.NAME]`` with ``override = true``, or the top-level keys of a
  file ``NAME.override.toml``) amends single keys of the current definition wherever it
  stands among the sources, before or after it, like a systemd drop-in: an override is of
  a service, not of one of its definitions, so it is never silently left out (a
  ``web.override.toml`` sorts before ``web.toml`` in a directory). Overrides apply in source
  order, so of two that set one key, the later wins. A key's value is replaced whole (an
  ``env`` table too).

The merged table is validated as one service, and each problem names the file and line the
offending key came from. ``build`` raises ConfigError with every problem of every source, so
nothing half-loaded is ever used; one bad file or service hides nothing about the others.
"""

from __future__ import annotations

import posixpath
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

# tomli, not the tomllib taken from it: its compiled wheel parses a thousand services in a
# third of the time (15 ms against 43 here), the same language and the same messages.
import tomli
from msgspec import Struct, field

from corral.core import bridge_jobs
from corral.core.config import (
    Where,
    activation_problems,
    locate,
    parse_definition,
    references,
    while_problems,
)
from corral.core.definition import Definition, node_of
from corral.core.expr import Condition
from corral.core.graph import Graph, Node
from corral.errors import ConfigError, ConfigProblem

OVERRIDE_SUFFIX = ".override.toml"


class SourceTexts(list[tuple[str, str]]):
    """``(path, text)`` of the sources that could be read, and a problem for each that could
    not: ``build`` reports those with everything else it finds in the others."""

    def __init__(
        self, texts: Iterable[tuple[str, str]] = (), problems: Iterable[ConfigProblem] = ()
    ) -> None:
        super().__init__(texts)
        self.problems = list(problems)


class Layer(Struct, frozen=True):
    """One source's table for one service."""

    file: str
    text: str
    table: Mapping[str, Any]
    override: bool
    top_level: bool = False  # the keys are those of a NAME.override.toml file

    def line(self, service: str, key: str | None) -> int | None:
        return locate(self.text, None if self.top_level else service, key)


class Registry(Struct, frozen=True):
    """Every layer of every name, and the merged definitions that are current."""

    layers: Mapping[str, tuple[Layer, ...]] = field(default_factory=dict)
    definitions: Mapping[str, Definition] = field(default_factory=dict)
    origins: Mapping[str, Mapping[str, Layer]] = field(default_factory=dict)  # name -> key ->
    graph: Graph | None = None  # of the definitions, as checked: the daemon need not redo it

    def merged(self, name: str) -> dict[str, tuple[Any, str, int | None]]:
        """``key -> (value, file, line)`` of a current definition, for ``config show``."""
        definition = self.definitions[name]
        shown: dict[str, tuple[Any, str, int | None]] = {}
        for key, layer in self.origins[name].items():
            shown[key] = (layer.table[key], layer.file, layer.line(definition.name, key))
        return shown

    def show(self, name: str) -> dict[str, Any]:
        """What ``config show`` prints: every layer (in effect: every override, as all are
        applied, and of the definitions the last) and each merged key with the file and line
        it came from. KeyError for an unknown name."""
        definition = self.definitions[name]
        defining = [layer for layer in self.layers[name] if not layer.override][-1]
        return {
            "name": name,
            "layers": [
                {
                    "file": layer.file,
                    "override": layer.override,
                    "in_effect": layer.override or layer is defining,
                }
                for layer in self.layers[name]
            ],
            "keys": [
                {"key": key, "value": value, "file": file, "line": line}
                for key, (value, file, line) in self.merged(definition.name).items()
            ],
        }


def _parse_toml(path: str, text: str, problems: list[ConfigProblem]) -> dict[str, Any] | None:
    try:
        return tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        problems.append(ConfigProblem(path, f"invalid TOML: {exc}", line=exc.lineno))
        return None
    except RecursionError as exc:  # tomli's own limit: nesting past 400 levels
        problems.append(ConfigProblem(path, f"invalid TOML: {exc}"))
        return None


def _layers_of(
    path: str, text: str, data: Mapping[str, Any], problems: list[ConfigProblem]
) -> list[tuple[str, Layer]]:
    found: list[tuple[str, Layer]] = []
    base = posixpath.basename(path)
    override_file = base.endswith(OVERRIDE_SUFFIX)
    if override_file:
        name = base[: -len(OVERRIDE_SUFFIX)]
        top = {k: v for k, v in data.items() if k != "service"}
        if top:
            top.pop("override", None)
            found.append((name, Layer(path, text, top, override=True, top_level=True)))
    else:
        for top_key in data:
            if top_key != "service":
                problems.append(ConfigProblem(
                    path, f'unknown table "{top_key}": expected [service.NAME] tables'
                ))  # fmt: skip
    services = data.get("service", {})
    if not isinstance(services, dict):
        problems.append(ConfigProblem(path, "service must be a table of [service.NAME] tables"))
        return found
    for name, table in services.items():
        if not isinstance(table, dict):
            problems.append(ConfigProblem(path, f"expected a table [service.{name}]", name,
                                          None, locate(text, name)))  # fmt: skip
            continue
        table = dict(table)
        override = table.pop("override", False)
        if not isinstance(override, bool):
            problems.append(ConfigProblem(path, "override: expected true or false", name,
                                          "override", locate(text, name, "override")))  # fmt: skip
            continue
        found.append((name, Layer(path, text, table, override=override or override_file)))
    return found


#: ``[service.NAME`` at the start of a line: the names a file that is not valid TOML
#: probably defines, so that they are not reported as unknown elsewhere.
_HEADER = re.compile(r"""^\s*\[\s*service\s*\.\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))""",
                     re.MULTILINE)  # fmt: skip


def _names_in(text: str) -> list[str]:
    return [next(filter(None, match.groups())) for match in _HEADER.finditer(text)]


class _Merged(Struct, frozen=True):
    """One service's layers merged: which layer each key comes from."""

    defining: Layer
    origin: Mapping[str, Layer]

    def table(self) -> dict[str, Any]:
        return {key: layer.table[key] for key, layer in self.origin.items()}

    def where(self, name: str) -> Where:
        def where(key: str | None) -> tuple[str, int | None]:
            layer = self.origin.get(key, self.defining) if key is not None else self.defining
            return layer.file, layer.line(name, key)

        return where

    def file_of(self, key: str) -> str:
        return self.origin.get(key, self.defining).file


def _merge(stack: list[Layer]) -> _Merged | None:
    """The last definition, amended by every override of the name in source order,
    wherever each stands (None: no definition at all)."""
    definitions = [layer for layer in stack if not layer.override]
    if not definitions:
        return None
    defining = definitions[-1]
    origin = dict.fromkeys(defining.table, defining)
    for layer in stack:
        if layer.override:
            origin.update(dict.fromkeys(layer.table, layer))
    return _Merged(defining, origin)


class _Read(Struct):
    """The sources as read: each name's layers, and what could not be read."""

    layers: dict[str, list[Layer]]
    sketched: dict[str, Node]  # services glimpsed in files that are not valid TOML
    unreadable: list[str]  # files that could not be read or parsed

    def caveat(self, message: str) -> str:
        """``message`` about a name nothing defines, with the files it might be in."""
        if not self.unreadable:
            return message
        files = ", ".join(self.unreadable)
        return f"{message} (unless it is defined in {files}, which could not be loaded)"


def _read(sources: Iterable[tuple[str, str]], problems: list[ConfigProblem]) -> _Read:
    read = _Read({}, {}, [])
    if isinstance(sources, SourceTexts):
        problems += sources.problems
        read.unreadable += [problem.file for problem in sources.problems]
    for path, text in sources:
        data = _parse_toml(path, text, problems)
        if data is None:
            read.unreadable.append(path)
            read.sketched.update(dict.fromkeys(_names_in(text), Node()))
            continue
        for name, layer in _layers_of(path, text, data, problems):
            read.layers.setdefault(name, []).append(layer)
    return read


def build(sources: Iterable[tuple[str, str]], python: str = sys.executable) -> Registry:
    """Load ``(path, text)`` sources in increasing precedence; raise ConfigError with every
    problem found: of every file that can be read, and of every service whatever is wrong
    with the others (its keys, then unknown names, cycles and conditions over the whole).
    The bridges the definitions use are added as services of their own (``bridge_jobs``),
    run by ``python``."""
    problems: list[ConfigProblem] = []
    read = _read(sources, problems)
    definitions: dict[str, Definition] = {}
    merges: dict[str, _Merged] = {}
    partial: dict[str, tuple[Node, Condition | None]] = {}  # names whose own keys are wrong
    for name, stack in read.layers.items():
        if _reserved(name, stack, problems):
            continue
        merged = _merge(stack)
        if merged is None:
            if name not in read.sketched:
                first = stack[0]
                message = f"an override for {name}, but no source defines [service.{name}]"
                problems.append(ConfigProblem(first.file, read.caveat(message), name, None,
                                              first.line(name, None)))  # fmt: skip
            continue
        merges[name] = merged
        definition = parse_definition(
            name, merged.table(), merged.defining.file, merged.where(name), problems,
            merged.file_of,
        )  # fmt: skip
        if definition is None:
            partial[name] = references(merged.table())
        else:
            definitions[name] = definition
    _add_bridges(read, definitions, merges, problems, python)
    graph = _check_references(read, definitions, partial, merges, problems)
    if problems:
        raise ConfigError(problems)
    frozen = {name: tuple(stack) for name, stack in read.layers.items()}
    origins = {name: merges[name].origin for name in definitions}
    return Registry(frozen, definitions, origins, graph)


def _check_references(
    read: _Read,
    definitions: Mapping[str, Definition],
    partial: Mapping[str, tuple[Node, Condition | None]],
    merges: Mapping[str, _Merged],
    problems: list[ConfigProblem],
) -> Graph:
    """The graph of every service that exists, however broken, with the problems of names,
    cycles and conditions added to ``problems``, each located where its key was written."""
    nodes = read.sketched | {name: node_of(d) for name, d in definitions.items()}
    graph = Graph(nodes | {name: node for name, (node, _) in partial.items()})
    found = graph.problems + activation_problems(definitions, graph)
    found += bridge_jobs.problems(definitions)
    for name, (_, condition) in partial.items():
        found += while_problems(name, condition, graph)
    for issue in found:
        file, line = merges[issue.service].where(issue.service)(issue.key)
        message = read.caveat(issue.message) if issue.unknown else issue.message
        problems.append(ConfigProblem(file, message, issue.service, issue.key, line))
    return graph


def _reserved(name: str, stack: list[Layer], problems: list[ConfigProblem]) -> bool:
    """A user's table of a name kept for corral's bridges: refused, each where it is."""
    reason = bridge_jobs.reserved(name)
    if reason is None:
        return False
    for layer in stack:
        problems.append(ConfigProblem(layer.file, reason, name, None, layer.line(name, None)))
    return True


def _add_bridges(
    read: _Read,
    definitions: dict[str, Definition],
    merges: dict[str, _Merged],
    problems: list[ConfigProblem],
    python: str,
) -> None:
    """The bridges the definitions use, as services of their own: a layer from no file,
    loaded like any other table (``config show`` shows it as ``<built-in>``)."""
    for spec in bridge_jobs.needed(definitions):
        name = spec.service
        layer = Layer(bridge_jobs.BUILT_IN, "", bridge_jobs.bridge_table(spec, python), False)
        merged = _Merged(layer, dict.fromkeys(layer.table, layer))
        definition = parse_definition(
            name, merged.table(), layer.file, merged.where(name), problems
        )  # fmt: skip
        if definition is not None:
            read.layers[name] = [layer]
            merges[name] = merged
            definitions[name] = definition


def load(sources: Iterable[tuple[str, str]]) -> dict[str, Definition]:
    """Just the current definitions."""
    return dict(build(sources).definitions)


def describe_changes(summary: dict[str, list[object]]) -> str:
    """One line for humans: what a reload added, changed, applied and removed."""
    parts = []
    for kind, say, note in (
        ("added", "added", ""),
        ("changed", "changed", " (running instances keep their definition until restarted)"),
        ("applied", "applied to running instances", ""),
        ("removed", "removed", " (running instances stay until stopped)"),
    ):
        items = summary.get(kind) or []
        names = [
            f"{i['name']} ({', '.join(i['keys'])})" if isinstance(i, dict) else str(i)
            for i in items
        ]
        if names:
            parts.append(f"{say}: {', '.join(names)}{note}")
    return "; ".join(parts) or "no change"
