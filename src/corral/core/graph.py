"""The dependency graph of the services: ``requires``, ``wants``, ``after`` and ``provides``.

Pure. Built once per configuration; the supervisor asks it who must be up before a service
starts and who must be down before a service stops, and ``config check`` asks it for unknown
names and cycles. Every edge points from a service to something it needs first, so a start
follows the edges and a stop follows them backwards (dependents stop first).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from enum import StrEnum

from msgspec import Struct


class Edge(StrEnum):
    """How a service depends on another."""

    REQUIRES = "requires"  # started first and must be ready; its stop stops the dependent
    WANTS = "wants"  # started first; the dependent goes ahead if it fails
    AFTER = "after"  # ordering only: pulls nothing in


_ALL_EDGES = tuple(Edge)


class Node(Struct, frozen=True):
    """What the graph needs of one service."""

    requires: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()


class GraphProblem(Struct, frozen=True):
    """A name that resolves to nothing, an alias taken twice, or a cycle."""

    service: str
    key: str
    message: str
    unknown: str | None = None  # the name that resolves to nothing, for such a problem


def unknown_name(service: str, key: str, target: str) -> GraphProblem:
    """``service`` names ``target`` in ``key``, and no service or alias answers to it."""
    return GraphProblem(service, key, f'no service or alias named "{target}"', target)


class Graph:
    """Services and their edges, with aliases resolved to the services that provide them."""

    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self.problems: list[GraphProblem] = []
        self.aliases: dict[str, str] = {}
        for name, node in nodes.items():
            for alias in node.provides:
                if alias in nodes:
                    self._problem(name, "provides", f'"{alias}" is already a service name')
                elif alias in self.aliases and self.aliases[alias] != name:
                    other = self.aliases[alias]
                    self._problem(name, "provides", f'"{alias}" is already provided by {other}')
                else:
                    self.aliases[alias] = name
        self.names = list(nodes)
        self.edges: dict[str, dict[Edge, tuple[str, ...]]] = {}
        self.dependents: dict[str, dict[Edge, list[str]]] = {n: {} for n in nodes}
        for name, node in nodes.items():
            self.edges[name] = {}
            for edge, targets in (
                (Edge.REQUIRES, node.requires),
                (Edge.WANTS, node.wants),
                (Edge.AFTER, node.after),
            ):
                resolved = []
                for target in targets:
                    real = self.resolve(target)
                    if real is None:
                        self.problems.append(unknown_name(name, str(edge), target))
                    elif real == name:
                        self._problem(
                            name, str(edge), f"a service cannot depend on itself ({target})"
                        )
                    elif real not in resolved:
                        resolved.append(real)
                        self.dependents[real].setdefault(edge, []).append(name)
                self.edges[name][edge] = tuple(resolved)
        for cycle in self.find_cycles():
            path = " -> ".join(cycle)
            self._problem(cycle[0], str(self._edge_kind(cycle[0], cycle[1])),
                          f"dependency cycle: {path}")  # fmt: skip

    def _problem(self, service: str, key: str, message: str) -> None:
        self.problems.append(GraphProblem(service, key, message))

    def _edge_kind(self, name: str, target: str) -> Edge:
        """The key through which ``name`` needs ``target`` (for the line an error points at)."""
        return next(e for e in _ALL_EDGES if target in self.edges[name].get(e, ()))

    def resolve(self, name: str) -> str | None:
        """A service name, or the service an alias names; None if neither."""
        if name in self.edges or name in self.dependents:
            return name
        return self.aliases.get(name)

    def needs(self, name: str, edge: Edge) -> tuple[str, ...]:
        return self.edges.get(name, {}).get(edge, ())

    def before(self, name: str) -> tuple[str, ...]:
        """Everything that must be up (or given up) before ``name`` may start."""
        edges = self.edges.get(name, {})
        return edges.get(Edge.REQUIRES, ()) + edges.get(Edge.WANTS, ()) + edges.get(Edge.AFTER, ())

    def dependents_of(self, name: str, *edges: Edge) -> list[str]:
        """Services with an edge of the given kinds (all kinds if none) to ``name``."""
        found = self.dependents.get(name, {})
        kinds = edges or _ALL_EDGES
        return [d for kind in kinds for d in found.get(kind, ())]

    def closure_of_dependents(self, name: str) -> list[str]:
        """``name`` and everything that requires or wants it, transitively (for destroy)."""
        seen = [name]
        index = 0
        while index < len(seen):
            for dependent in self.dependents_of(seen[index], Edge.REQUIRES, Edge.WANTS):
                if dependent not in seen:
                    seen.append(dependent)
            index += 1
        return seen

    def find_cycle(self) -> list[str] | None:
        """One cycle over all edge kinds, as ``[a, b, ..., a]``; None when acyclic."""
        cycles = self.find_cycles()
        return cycles[0] if cycles else None

    def find_cycles(self) -> list[list[str]]:
        """One cycle in every group of services that need one another (each strongly
        connected component of more than one service), so that separate cycles are all
        reported at once. Each starts at the group's first service in declaration order
        and is a shortest way back to it."""
        order = {name: index for index, name in enumerate(self.edges)}
        starts = sorted(
            (min(group, key=order.__getitem__), frozenset(group))
            for group in self._components()
            if len(group) > 1
        )
        return [self._cycle_through(start, group) for start, group in starts]

    def _cycle_through(self, start: str, group: frozenset[str]) -> list[str]:
        """A shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
        came_from: dict[str, str] = {}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in self.before(node):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt in group and nxt not in came_from and nxt != start:
                    came_from[nxt] = node
                    queue.append(nxt)
        raise AssertionError(f"{start} is in a cycle but no way back was found")

    def _components(self) -> list[list[str]]:
        """Strongly connected components (Tarjan's algorithm, iterative: a long chain of
        ten thousand services must not exhaust Python's recursion limit)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []

        def visit(node: str) -> None:
            index[node] = low[node] = len(index)
            stack.append(node)
            on_stack.add(node)

        for root in self.edges:
            if root in index:
                continue
            visit(root)
            work = [(root, iter(self.before(root)))]
            while work:
                node, children = work[-1]
                for child in children:
                    if child not in index:
                        visit(child)
                        work.append((child, iter(self.before(child))))
                        break
                    if child in on_stack:
                        low[node] = min(low[node], index[child])
                else:
                    work.pop()
                    if work:
                        parent = work[-1][0]
                        low[parent] = min(low[parent], low[node])
                    if low[node] == index[node]:
                        group: list[str] = []
                        while not group or group[-1] != node:
                            member = stack.pop()
                            on_stack.discard(member)
                            group.append(member)
                        found.append(group)
        return found

    def levels(self) -> list[list[str]]:
        """Services by start order: each level needs only services of earlier levels."""
        depth: dict[str, int] = {}

        def level(name: str, trail: frozenset[str]) -> int:
            if name in depth:
                return depth[name]
            if name in trail:  # a cycle (reported in problems); cut it here
                return 0
            deps = self.before(name)
            value = 1 + max((level(d, trail | {name}) for d in deps), default=-1)
            depth[name] = value
            return value

        for name in self.edges:
            level(name, frozenset())
        result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name in self.edges:
            result[depth[name]].append(name)
        return result

    def as_json(self) -> dict[str, object]:
        return {
            "services": {
                name: {str(edge): list(targets) for edge, targets in edges.items() if targets}
                for name, edges in self.edges.items()
            },
            "aliases": dict(self.aliases),
            "levels": self.levels(),
        }

    def as_dot(self) -> str:
        """Graphviz: an arrow from each service to what it needs first."""
        style = {Edge.REQUIRES: "solid", Edge.WANTS: "dashed", Edge.AFTER: "dotted"}
        lines = ["digraph corral {", "  rankdir=LR;"]
        for name in self.edges:
            lines.append(f'  "{name}";')
        for name, edges in self.edges.items():
            for edge, targets in edges.items():
                for target in targets:
                    lines.append(f'  "{name}" -> "{target}" [style={style[edge]}, label="{edge}"];')
        for alias, name in self.aliases.items():
            lines.append(
                f'  "{alias}" [shape=note]; "{alias}" -> "{name}" [style=dotted, arrowhead=none];'
            )
        lines.append("}")
        return "\n".join(lines) + "\n"
