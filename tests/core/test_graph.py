"""The dependency graph: aliases, dependents, cycles and start levels."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from corral.core.graph import Edge, Graph, Node


def test_aliases_resolve_in_every_edge_and_dependents_point_back() -> None:
    graph = Graph(
        {
            "pg": Node(provides=("database",)),
            "web": Node(requires=("database",), wants=("cache",)),
            "cache": Node(),
            "cron": Node(after=("web",)),
        }
    )
    assert graph.problems == []
    assert graph.resolve("database") == "pg" and graph.resolve("nope") is None
    assert graph.needs("web", Edge.REQUIRES) == ("pg",)
    assert graph.before("web") == ("pg", "cache")
    assert graph.dependents_of("pg") == ["web"]
    assert graph.dependents_of("web", Edge.AFTER) == ["cron"]
    assert graph.closure_of_dependents("pg") == ["pg", "web"]  # after pulls nothing down
    assert graph.levels() == [["pg", "cache"], ["web"], ["cron"]]
    assert '"web" -> "pg" [style=solid' in graph.as_dot()
    assert graph.as_json()["services"] == {
        "pg": {},
        "web": {"requires": ["pg"], "wants": ["cache"]},
        "cache": {},
        "cron": {"after": ["web"]},
    }


def test_a_cycle_through_mixed_edges_is_found() -> None:
    graph = Graph({"a": Node(requires=("b",)), "b": Node(after=("c",)), "c": Node(wants=("a",))})
    cycle = graph.find_cycle()
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert any("dependency cycle" in p.message for p in graph.problems)


def test_closure_of_dependents_is_transitive() -> None:
    graph = Graph(
        {"db": Node(), "api": Node(requires=("db",)), "web": Node(wants=("api",)), "x": Node()}
    )
    assert graph.closure_of_dependents("db") == ["db", "api", "web"]


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Node]:
    """Random acyclic graphs: a service only depends on services with a lower number."""
    count = draw(st.integers(1, 25))
    nodes = {}
    for i in range(count):
        earlier = [f"s{j}" for j in range(i)]
        pick = (
            st.lists(st.sampled_from(earlier), max_size=3, unique=True) if earlier else st.just([])
        )
        nodes[f"s{i}"] = Node(tuple(draw(pick)), tuple(draw(pick)), tuple(draw(pick)))
    return nodes


@given(dags())
def test_acyclic_graphs_have_no_cycle_and_levels_respect_every_edge(nodes: dict[str, Node]) -> None:
    graph = Graph(nodes)
    assert graph.find_cycle() is None and graph.problems == []
    level = {name: i for i, names in enumerate(graph.levels()) for name in names}
    assert set(level) == set(nodes)
    for name in nodes:
        for need in graph.before(name):
            assert level[need] < level[name]


@given(dags(), st.data())
def test_one_back_edge_makes_a_real_cycle(nodes: dict[str, Node], data: st.DataObject) -> None:
    names = list(nodes)
    if len(names) < 2:
        return
    low = data.draw(st.integers(0, len(names) - 2))
    high = data.draw(st.integers(low + 1, len(names) - 1))
    # Make sure high depends on low (directly), then let low depend on high.
    top, bottom = names[high], names[low]
    nodes[top] = Node((*nodes[top].requires, bottom), nodes[top].wants, nodes[top].after)
    nodes[bottom] = Node(nodes[bottom].requires, nodes[bottom].wants, (*nodes[bottom].after, top))
    cycle = Graph(nodes).find_cycle()
    assert cycle is not None and cycle[0] == cycle[-1]
    graph = Graph(nodes)
    for a, b in itertools.pairwise(cycle):
        assert b in graph.before(a)


def test_every_separate_cycle_is_found_each_once() -> None:
    graph = Graph(
        {
            "a": Node(requires=("b",)),
            "b": Node(requires=("a", "c")),  # a <-> b, and on to the next group
            "c": Node(wants=("d",)),
            "d": Node(after=("e",)),
            "e": Node(requires=("c",)),  # c -> d -> e -> c
            "f": Node(requires=("a",)),  # needs a cycle, but is in none
        }
    )
    assert graph.find_cycles() == [["a", "b", "a"], ["c", "d", "e", "c"]]
    cycles = [p for p in graph.problems if "dependency cycle" in p.message]
    assert [(p.service, p.key) for p in cycles] == [("a", "requires"), ("c", "wants")]


def test_a_cycle_closing_a_long_chain_is_found_without_recursion() -> None:
    count = 5000
    nodes = {f"s{i}": Node(requires=(f"s{i + 1}",)) for i in range(count - 1)}
    nodes[f"s{count - 1}"] = Node(after=("s0",))
    cycle = Graph(nodes).find_cycle()
    assert cycle is not None and len(cycle) == count + 1 and cycle[0] == cycle[-1] == "s0"
