"""The seed's state operators in ``while``: ``NAME(KEY=a|b|c)`` (any of the list, binding the
value), ``KEY!=a|b`` (none of them), ``all NAME(KEY=a|b|c)`` and ``K of NAME(KEY=a|b|c)``.

A table of examples, the parse errors with their columns, and hypothesis against a
brute-force evaluator written here from the definitions in ``docs/conditions.md``: random
worlds of holding instances, random conditions mixing every form with ``and``/``or``.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.core.evaluate import Binding, Lookup, bindings, holds
from corral.core.expr import (
    Check,
    EventTerm,
    ExprError,
    StateTerm,
    names_in,
    parse_events,
    parse_states,
    wildcard_keys,
)

# -- examples -------------------------------------------------------------------------------

#: Holding instances by state name, as the daemon's lookup gives them.
WORLD: dict[str, list[tuple[str, dict[str, str]]]] = {
    "net": [
        ("a", {"IF": "a", "KIND": "wired"}),
        ("b", {"IF": "b", "KIND": "wifi"}),
        ("d", {"IF": "d", "KIND": "wired"}),
    ],
    "db": [("", {})],
    "off": [],
}
VARIABLES = {"PRIMARY": "a", "BACKUP": "b", "SAME": "a", "STAR": "a*"}


def lookup(name: str) -> list[tuple[str, dict[str, str]]]:
    return WORLD.get(name, [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # any of a list: one binding per holding listed value
        ("net(IF=a|b|c)", [{"IF": "a"}, {"IF": "b"}]),
        ("net(IF=c|e)", []),
        ("net(IF=a*|b)", [{"IF": "a"}, {"IF": "b"}]),  # each value of a plain list is a glob
        ("net(IF=a|b|c,KIND=wifi)", [{"IF": "b"}]),
        ("net(IF=$PRIMARY|c)", [{"IF": "a"}]),
        ("net(IF=$STAR|c)", []),  # a variable's value is a value, not a pattern
        # none of a list (binds nothing)
        ("net(IF!=a|b)", [{}]),
        ("net(IF!=a|b|d)", []),
        ("net(KIND!=wired|wifi)", []),
        ("net(MISSING!=a|b)", [{}]),  # != holds where the key is missing
        # all of a list
        ("all net(IF=a|b)", [{}]),
        ("all net(IF=a|b|c)", []),
        ("all net(IF=a|d,KIND=wired)", [{}]),
        ("all net(IF=a|b,KIND=wired)", []),  # b holds, but not as wired
        ("all net(IF=$PRIMARY|$BACKUP)", [{}]),
        ("all net(IF=$PRIMARY|$UNSET)", []),  # an unset variable names nothing that holds
        ("all net(IF=$SAME|a)", [{}]),  # the same value listed twice counts once
        # at least K of a list
        ("1 of net(IF=a|c|e)", [{}]),
        ("2 of net(IF=a|c|e)", []),
        ("2 of net(IF=a|b|c)", [{}]),
        ("3 of net(IF=a|b|d)", [{}]),
        ("3 of net(IF=a|b|c)", []),
        ("2 of net(IF=a|b|d,KIND!=wifi)", [{}]),
        ("3 of net(IF=a|b|d,KIND!=wifi)", []),
        ("2 of net(IF=$SAME|a|c)", []),  # a and $SAME are one value: only one holds
        # combined with and / or / parentheses, like any term
        ("2 of net(IF=a|b|c) and db", [{}]),
        ("2 of net(IF=a|b|c) and off", []),
        ("all net(IF=a|c) or db", [{}]),
        ("net(IF=a|b) and all net(IF=a|d)", [{"IF": "a"}, {"IF": "b"}]),
        ("net(IF=a|b) and net(IF=b|d)", [{"IF": "b"}]),  # the same KEY joins
        ("(net(IF=a|c) or db) and 3 of net(IF=a|b|d)", [{"IF": "a"}, {}]),
        ("off or not_there", []),
    ],
)
def test_each_operator_on_a_table_of_examples(text: str, expected: list[Binding]) -> None:
    assert bindings(parse_states(text), lookup, VARIABLES) == expected


def test_a_list_binds_its_key_and_counting_terms_bind_nothing() -> None:
    assert wildcard_keys(parse_states("net(IF=a|b) and tty(TTY=*)")) == {"IF", "TTY"}
    assert wildcard_keys(parse_states("net(IF!=a|b)")) == set()
    assert wildcard_keys(parse_states("all net(IF=a|b) or 2 of x(K=1|2|3)")) == set()


def test_names_are_the_states_not_the_prefixes() -> None:
    node = parse_states("all net(IF=a|b) and 2 of tty(TTY=1|2) or net")
    assert names_in(node) == ["net", "tty"]


def test_counting_prefixes_parse_to_one_state_term() -> None:
    assert parse_states("2 of net(IF=a|b|c,KIND=wired)") == StateTerm(
        "net", (Check("IF", ("a", "b", "c")), Check("KIND", ("wired",))), need=2
    )
    assert parse_states("all net(IF=a|b)") == StateTerm("net", (Check("IF", ("a", "b")),), "all")


def test_all_and_digits_stay_ordinary_names_where_no_term_follows() -> None:
    assert parse_states("all") == StateTerm("all")
    assert parse_states("all(K=1) and 2") == parse_states("(all(K=1)) and (2)")
    assert names_in(parse_states("all or 2")) == ["all", "2"]


def test_bars_are_ordinary_characters_in_event_terms() -> None:
    assert parse_events("net-up IF=a|b") == EventTerm("net-up", (Check("IF", ("a|b",)),))


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("net(IF=a||b)", 10, "an empty value in the list 'a||b'"),
        ("net(IF=a|)", 10, "an empty value"),
        ("x and net(IF=a|b|a)", 18, "'a' is listed twice"),
        ("all net", 5, "'all' counts the values of a list"),
        ("all net(IF=a)", 5, "'all' counts the values of a list"),
        ("all net(IF!=a|b)", 5, "'all' counts the values of a list"),
        ("all (a or b)", 5, "'all' applies to one state term"),
        ("x or 2 of (a)", 11, "'2 of' applies to one state term"),
        ("2 of net(IF=a|b,KIND=c|d)", 17, "counts one list; KIND= is a second"),
        ("all net(IF=a|b, X=*)", 17, "X=*: 'all' counts the values of a list"),
        ("2 of net(IF=*)", 10, "IF=*: '2 of' counts the values of a list"),
        ("all net(IF=eth*|b)", 9, "'eth*': each value 'all' counts names one instance"),
        ("4 of net(IF=a|b|c)", 1, "4 of a list of 3 values can never hold"),
        ("a and 0 of net(IF=a|b)", 7, "'0 of' always holds"),
        ("2 of", 5, "unexpected end"),
        ("all net(IF=a|b) net", 17, "unexpected 'net'"),
    ],
)
def test_malformed_operators_point_at_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExprError) as info:
        parse_states(text)
    assert info.value.column == column and words in str(info.value), str(info.value)


@given(st.text(alphabet="a2 ()|=!*,$Xlof", max_size=30))
def test_any_text_parses_or_names_a_column_inside_it(text: str) -> None:
    try:
        parse_states(text)
    except ExprError as exc:
        assert 1 <= exc.column <= len(text) + 1


# -- the brute-force evaluator --------------------------------------------------------------
#
# Its own trees (tuples), its own text, its own matching: nothing of corral's but the parser
# and the evaluator under test.

STATES = ["a", "b", "c"]
VALUES = ["1", "2", "3", "4"]
#: Plain values: globs and variables too. Counted values: each names one value.
PLAIN = [*VALUES, "*", "[12]", "?", "$V", "$U", "$S"]
COUNTED = [*VALUES, "$V", "$U", "$S"]
#: $U is unset; $S's value looks like a pattern, but a variable's value is taken as it is.
VARS = {"V": "2", "S": "[12]"}
#: What instances hold as K: the values, and one that only $S (not the glob [12]) names.
HELD_VALUES = [*VALUES, "[12]"]


class Term(NamedTuple):
    name: str
    checks: tuple[tuple[str, str, tuple[str, ...]], ...]  # (key, "=" or "!=", values)
    need: int | str | None  # None, "all" or K


class Op(NamedTuple):
    kind: str  # "and" | "or"
    left: Tree
    right: Tree


Tree = Term | Op
Instance = Mapping[str, str]
World = Mapping[str, list[Instance]]


def _resolved(value: str) -> str | None:
    return VARS.get(value[1:]) if value.startswith("$") else value


def _matches(value: str, written: str) -> bool:
    """A written value is a glob; a variable's value is compared as it is."""
    if written.startswith("$"):
        return value == _resolved(written)
    return fnmatch.fnmatchcase(value, written)


def _check(env: Instance, key: str, op: str, values: tuple[str, ...]) -> bool:
    hit = key in env and any(_matches(env[key], written) for written in values)
    return hit if op == "=" else not hit


def _binds(key: str, op: str, values: tuple[str, ...]) -> bool:
    """A list, or one pattern (a glob character, not a $VAR), binds its key."""
    pattern = (
        len(values) == 1 and not values[0].startswith("$") and any(c in values[0] for c in "*?[")
    )
    return op == "=" and (pattern or len(values) > 1)


def _passing(term: Term, world: World) -> list[Instance]:
    return [e for e in world[term.name] if all(_check(e, *c) for c in term.checks)]


def _count_holds(term: Term, world: World) -> bool:
    key, _, values = next(c for c in term.checks if c[1] == "=" and len(c[2]) > 1)
    wanted = {_resolved(v) for v in values}
    held = {e[key] for e in _passing(term, world)} & wanted
    return len(held) >= (len(wanted) if term.need == "all" else int(term.need or 0))


def brute(tree: Tree, world: World) -> set[frozenset[tuple[str, str]]]:
    """Every way the condition holds, as the set of its bindings."""
    if isinstance(tree, Term):
        if tree.need is not None:
            return {frozenset()} if _count_holds(tree, world) else set()
        bound = [c[0] for c in tree.checks if _binds(*c)]
        return {frozenset((k, e[k]) for k in bound) for e in _passing(tree, world)}
    left, right = brute(tree.left, world), brute(tree.right, world)
    if tree.kind == "or":
        return left | right
    return {x | y for x in left for y in right if all(dict(y).get(k, v) == v for k, v in x)}


def text_of(tree: Tree) -> str:
    if isinstance(tree, Op):
        return f"({text_of(tree.left)} {tree.kind} {text_of(tree.right)})"
    inside = ",".join(f"{k}{op}{'|'.join(values)}" for k, op, values in tree.checks)
    term = f"{tree.name}({inside})" if inside else tree.name
    if tree.need is None:
        return term
    return f"all {term}" if tree.need == "all" else f"{tree.need} of {term}"


def _lists(pool: list[str], least: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(pool), min_size=least, max_size=4, unique=True).map(tuple)


_plain_check = st.tuples(st.sampled_from(["K", "X"]), st.sampled_from(["=", "!="]),
                         _lists(PLAIN, 1))  # fmt: skip


@st.composite
def plain_terms(draw: st.DrawFn) -> Tree:
    checks = draw(st.lists(_plain_check, max_size=2))
    return Term(draw(st.sampled_from(STATES)), tuple(checks), None)


@st.composite
def counted_terms(draw: st.DrawFn) -> Tree:
    values = draw(_lists(COUNTED, 2))
    need = draw(st.one_of(st.just("all"), st.integers(1, len(values))))
    filters = draw(st.lists(st.one_of(
        st.tuples(st.just("X"), st.just("="), st.sampled_from([("p",), ("q",), ("?",)])),
        st.tuples(st.sampled_from(["K", "X"]), st.just("!="), _lists([*VALUES, "p", "*"], 1)),
    ), max_size=2))  # fmt: skip
    checks = draw(st.permutations([("K", "=", values), *filters]))
    return Term(draw(st.sampled_from(STATES)), tuple(checks), need)


def conditions(max_leaves: int = 5) -> st.SearchStrategy[Tree]:
    """Random ``while`` conditions over every form of state term."""
    return st.recursive(
        st.one_of(plain_terms(), counted_terms()),
        lambda inner: st.builds(Op, st.sampled_from(["and", "or"]), inner, inner),
        max_leaves=max_leaves,
    )


def _instances() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {}, optional={"K": st.sampled_from(HELD_VALUES), "X": st.sampled_from(["p", "q"])}
    )


worlds = st.fixed_dictionaries({name: st.lists(_instances(), max_size=5) for name in STATES})


def _lookup_of(world: World) -> Lookup:
    return lambda name: [(str(i), env) for i, env in enumerate(world.get(name, []))]


@settings(max_examples=400)
@given(conditions(), worlds)
def test_bindings_agree_with_the_brute_force_evaluator(tree: Tree, world: World) -> None:
    node = parse_states(text_of(tree))
    found = bindings(node, _lookup_of(world), VARS)
    assert len(found) == len({frozenset(b.items()) for b in found}), "a binding twice"
    assert {frozenset(b.items()) for b in found} == brute(tree, world)


def _truth(tree: Tree, world: World, sigma: Mapping[str, str]) -> bool:
    """Whether the condition is true with every bound key set as in ``sigma``: a second,
    separate reading of the same meaning (some binding exists iff some sigma satisfies)."""
    if isinstance(tree, Op):
        left, right = _truth(tree.left, world, sigma), _truth(tree.right, world, sigma)
        return left and right if tree.kind == "and" else left or right
    if tree.need is not None:
        return _count_holds(tree, world)
    bound = [c[0] for c in tree.checks if _binds(*c)]
    return any(all(e[k] == sigma[k] for k in bound) for e in _passing(tree, world))


@settings(max_examples=300)
@given(conditions(), worlds)
def test_holds_means_some_assignment_of_the_bound_keys_satisfies(tree: Tree, world: World) -> None:
    node = parse_states(text_of(tree))
    satisfied = any(
        _truth(tree, world, dict(zip(["K", "X"], sigma, strict=True)))
        for sigma in itertools.product([*HELD_VALUES, "p", "q"], repeat=2)
    )
    assert holds(node, _lookup_of(world), VARS) is satisfied


# -- the documentation ----------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "conditions.md"


def test_every_example_in_the_docs_parses_and_every_refusal_is_as_shown() -> None:
    text = DOCS.read_text().replace("\\|", "|")
    for key, example in re.findall(r'(start_on|stop_on|while) = "([^"]+)"', text):
        (parse_states if key == "while" else parse_events)(example)
    refused = text.split("## What is refused")[1]
    rows = re.findall(r"^\| `(.+?)` \| (\d+) \| (.+) \|$", refused, re.MULTILINE)
    assert len(rows) >= 9
    for condition, column, message in rows:
        with pytest.raises(ExprError) as info:
            parse_states(condition)
        assert info.value.column == int(column) and message in str(info.value), condition
