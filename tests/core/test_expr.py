"""The condition language: parsing with positions, event matching, atomic firing, states."""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.core.evaluate import (
    Event,
    Progress,
    advance,
    bindings,
    checks_match,
    holds,
    pinned_variables,
)
from corral.core.expr import (
    And,
    Check,
    EventTerm,
    ExprError,
    Or,
    StateTerm,
    names_in,
    parse_events,
    parse_states,
)
from corral.core.expr_text import render
from tests.core.test_operators import Tree, conditions, text_of


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    node = parse_events("a or b and c")
    assert isinstance(node, Or) and isinstance(node.right, And)
    node = parse_events("(a or b) and c")
    assert isinstance(node, And) and isinstance(node.left, Or)
    assert names_in(parse_events("started db and (x or started db)")) == ["started", "x"]


def test_event_terms_take_positional_values_and_tests() -> None:
    node = parse_events("started db INSTANCE=web* RESULT!=failed")
    assert node == EventTerm(
        "started",
        (
            Check(None, ("db",)),
            Check("INSTANCE", ("web*",)),
            Check("RESULT", ("failed",), negate=True),
        ),
    )


def test_state_terms_take_instance_tests() -> None:
    assert parse_states("tty(TTY=*)") == StateTerm("tty", (Check("TTY", ("*",)),))
    assert parse_states("a and b(X=1,Y=2)") == And(
        StateTerm("a"), StateTerm("b", (Check("X", ("1",)), Check("Y", ("2",))))
    )
    assert parse_states("(a)") == StateTerm("a")


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "empty condition"),
        ("a and", 6, "unexpected end"),
        ("a or or b", 6, "expected a name, got 'or'"),
        ("(a or b", 8, "missing ')'"),
        ("a b) c", 4, "unexpected ')'"),
        ("started 1X=2", 9, "'1X' is not a valid variable name"),
        ("*bad", 1, "not a valid name"),
    ],
)
def test_parse_errors_point_at_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExprError) as info:
        parse_events(text)
    assert info.value.column == column and words in str(info.value)


def test_state_parse_errors() -> None:
    with pytest.raises(ExprError, match="expected KEY=VALUE"):
        parse_states("tty(TTY)")
    with pytest.raises(ExprError, match="unexpected end"):
        parse_states("tty(TTY=1")


ENV = (("JOB", "db"), ("INSTANCE", "main"), ("RESULT", "ok"))


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ((Check(None, ("db",)),), True),
        ((Check(None, ("d?",)), Check(None, ("ma*",))), True),
        ((Check(None, ("web",)),), False),
        (
            (
                Check(None, ("db",)),
                Check(None, ("main",)),
                Check(None, ("ok",)),
                Check(None, ("x",)),
            ),
            False,
        ),
        ((Check("RESULT", ("ok",)),), True),
        ((Check("RESULT", ("[of]*",)),), True),
        ((Check("RESULT", ("failed",), negate=True),), True),
        ((Check("RESULT", ("ok",), negate=True),), False),
        ((Check("MISSING", ("*",)),), False),
        ((Check("MISSING", ("x",), negate=True),), True),  # != holds when the key is missing
        ((Check("JOB", ("$NAME",)),), True),
        ((Check("JOB", ("$UNSET",)),), False),
        ((Check("JOB", ("$UNSET",), negate=True),), True),
        ((Check("JOB", ("$GLOB",)),), False),  # a variable's value is not a pattern
        ((Check("JOB", ("${NAME}*",)),), True),  # what is written around it is
        ((Check("INSTANCE", ("$NAME|main",)),), False),  # no lists in events: | is literal
    ],
)
def test_tests_match_globs_positions_and_variables(
    checks: tuple[Check, ...], expected: bool
) -> None:
    assert checks_match(checks, ENV, {"NAME": "db", "GLOB": "d*"}) is expected


_WRITTEN = st.sampled_from(["db", "d*", "[dw]b", "?", "*", "$NAME", "$GLOB", "$UNSET", "x"])
_CHECKS = st.lists(
    st.builds(Check, st.sampled_from([None, "JOB", "INSTANCE", "MISSING"]),
              _WRITTEN.map(lambda w: (w,)), st.booleans()),
    max_size=4,
)  # fmt: skip
_ENVS = st.lists(
    st.tuples(st.sampled_from(["JOB", "INSTANCE", "RESULT"]), st.sampled_from(["db", "d*", "x"])),
    max_size=4,
).map(tuple)


def _naive_match(checks: list[Check], env: tuple[tuple[str, str], ...]) -> bool:
    variables = {"NAME": "db", "GLOB": "d*"}
    position = 0
    for check in checks:
        (written,) = check.globs
        if check.key is None:
            if position >= len(env):
                return False
            value: str | None = env[position][1]
            position += 1
        else:
            value = dict(env).get(check.key)
        if written.startswith("$"):
            hit = value is not None and value == variables.get(written[1:])
        else:
            hit = value is not None and fnmatch.fnmatchcase(value, written)
        if hit == check.negate:
            return False
    return True


@given(_CHECKS, _ENVS)
def test_checks_match_agrees_with_a_naive_reading(
    checks: list[Check], env: tuple[tuple[str, str], ...]
) -> None:
    checks = [c for c in checks if c.key is not None or not c.negate]  # as the parser makes
    assert checks_match(checks, env, {"NAME": "db", "GLOB": "d*"}) is _naive_match(checks, env)


def test_a_compound_condition_fires_once_then_starts_from_scratch() -> None:
    node = parse_events("started apache and started mysql")
    progress = Progress()
    progress, fired = advance(node, progress, Event("started", (("JOB", "apache"),)))
    assert fired is None
    progress, fired = advance(node, progress, Event("started", (("JOB", "mysql"),)))
    assert fired == {"JOB": "mysql"}
    assert progress == Progress()  # reset: a single event cannot fire it again
    progress, fired = advance(node, progress, Event("started", (("JOB", "mysql"),)))
    assert fired is None


def test_firing_carries_the_env_of_the_events_that_made_it_true() -> None:
    node = parse_events("tty-added TTY=* or net-up")
    _, fired = advance(node, Progress(), Event("tty-added", (("TTY", "tty1"),)))
    assert fired == {"TTY": "tty1"}
    node = parse_events("a and (b or c)")
    progress, _ = advance(node, Progress(), Event("c", (("C", "1"),)))
    progress, _ = advance(node, progress, Event("b", (("B", "2"),)))
    progress, fired = advance(node, progress, Event("a", (("A", "3"),)))
    assert fired == {"A": "3", "B": "2", "C": "1"}


def test_stop_on_uses_the_instances_variables() -> None:
    node = parse_events("tty-removed TTY=$TTY")
    event = Event("tty-removed", (("TTY", "tty1"),))
    assert advance(node, Progress(), event, {"TTY": "tty1"})[1] == {"TTY": "tty1"}
    assert advance(node, Progress(), event, {"TTY": "tty2"})[1] is None


WORLD = {
    "apache": [("", {})],
    "mysql": [],
    "tty": [("tty1", {"TTY": "tty1"}), ("tty2", {"TTY": "tty2"})],
    "net": [("eth0", {"IF": "eth0"})],
}


def lookup(name: str) -> list[tuple[str, dict[str, str]]]:
    return WORLD.get(name, [])  # type: ignore[return-value]


def test_states_hold_like_their_services() -> None:
    assert holds(parse_states("apache"), lookup)
    assert not holds(parse_states("apache and mysql"), lookup)
    assert holds(parse_states("apache or mysql"), lookup)
    assert holds(parse_states("tty(TTY=tty1)"), lookup)
    assert not holds(parse_states("tty(TTY=tty9)"), lookup)


def test_wildcards_instantiate_once_per_holding_instance() -> None:
    assert bindings(parse_states("tty(TTY=*)"), lookup) == [{"TTY": "tty1"}, {"TTY": "tty2"}]
    assert bindings(parse_states("tty(TTY=*) and apache"), lookup) == [
        {"TTY": "tty1"},
        {"TTY": "tty2"},
    ]
    assert bindings(parse_states("tty(TTY=*) and mysql"), lookup) == []
    assert bindings(parse_states("tty(TTY=*) and net(IF=*)"), lookup) == [
        {"TTY": "tty1", "IF": "eth0"},
        {"TTY": "tty2", "IF": "eth0"},
    ]
    assert bindings(parse_states("apache or tty(TTY=tty1)"), lookup) == [{}]


# -- exhaustive truth tables and round trips -------------------------------------------------

NAMES = ["a", "b", "c", "d"]


def trees(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(NAMES)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"{t[0]} {t[1]} {t[2]}"
            ),
            inner.map(lambda t: f"({t})"),
        ),
        max_leaves=depth,
    )


@given(trees(8))
def test_state_truth_tables_agree_with_python(text: str) -> None:
    """For every assignment of the four names, ``holds`` is Python's own and/or/()."""
    node = parse_states(text)
    for values in itertools.product([False, True], repeat=len(NAMES)):
        world = dict(zip(NAMES, values, strict=True))
        expected = eval(text, {}, world)  # and/or/() mean the same in Python

        def answers(name: str, world: dict[str, bool] = world) -> list[tuple[str, dict[str, str]]]:
            return [("", {})] if world[name] else []

        assert holds(node, answers) is bool(expected)


@given(trees(8))
def test_event_conditions_fire_exactly_when_their_terms_have_been_seen(text: str) -> None:
    node = parse_events(text)
    for values in itertools.product([False, True], repeat=len(NAMES)):
        world = dict(zip(NAMES, values, strict=True))
        progress, fired = Progress(), None
        for name in NAMES:
            if world[name] and fired is None:
                progress, fired = advance(node, progress, Event(name))
        assert (fired is not None) is bool(eval(text, {}, world))


@given(trees(10))
def test_render_parses_back_to_the_same_tree(text: str) -> None:
    for parse in (parse_events, parse_states):
        node = parse(text)
        assert parse(render(node)) == node


@given(conditions(max_leaves=6))
def test_render_parses_back_to_the_same_tree_with_the_state_operators(tree: Tree) -> None:
    """Lists, ``!=`` lists, ``all`` and ``K of`` among ``and``/``or``/parentheses."""
    node = parse_states(text_of(tree))
    assert parse_states(render(node)) == node


def test_pinned_variables_are_the_key_equals_var_checks_of_one_term() -> None:
    assert pinned_variables(parse_events("tty-removed TTY=$TTY")) == {"TTY": "TTY"}
    assert pinned_variables(parse_events("net-down IF=${NAME} KIND=x*")) == {"NAME": "IF"}
    assert pinned_variables(parse_events("net-down IF!=$IF")) == {}
    assert pinned_variables(parse_events("net-down IF=x$IF")) == {}
    assert pinned_variables(parse_events("a IF=$IF or b IF=$IF")) == {}


_PINNED_VALUES = st.sampled_from(["tty1", "tty2", "tty*", "[t]ty1"])


@given(
    st.lists(st.sampled_from(["TTY=$TTY", "TTY=${TTY}", "SEAT=$SEAT", "SEAT=seat*", "x"]),
             min_size=1, max_size=3),
    st.fixed_dictionaries({}, optional={"TTY": _PINNED_VALUES, "SEAT": _PINNED_VALUES}),
    st.fixed_dictionaries({}, optional={"TTY": _PINNED_VALUES, "SEAT": _PINNED_VALUES}),
)  # fmt: skip
def test_an_event_matches_only_instances_whose_pinned_variables_it_carries(
    checks: list[str], variables: dict[str, str], env: dict[str, str]
) -> None:
    """What lets the daemon go straight to the instance a ``stop_on`` event is for."""
    node = parse_events(" ".join(["tty-removed", *checks]))
    _, fired = advance(node, Progress(), Event("tty-removed", tuple(env.items())), variables)
    if fired is not None:
        for variable, key in pinned_variables(node).items():
            assert variables[variable] == env[key]
