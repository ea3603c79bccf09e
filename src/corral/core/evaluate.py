"""Evaluating parsed conditions (:mod:`corral.core.expr`): event conditions against the
events that arrive, state conditions against what holds now. Pure.

An event condition is atomic (Upstart's rule): each term remembers the event that satisfied
it; when the whole condition becomes true it fires with the environment those events carried
and every term is reset, so the next firing needs the whole condition again from scratch. A
state condition's ``bindings`` are every distinct way it holds, which is how a ``while`` job
gets one instance per holding ``KEY=*``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence

from msgspec import Struct, field

from corral.core.expand import expand
from corral.core.expr import And, Check, EventTerm, Node, Or, StateTerm

# -- matching --------------------------------------------------------------------------------


def _value(glob: str, variables: Mapping[str, str]) -> str:
    """``$VAR`` from the instance's environment; an unset one matches nothing."""
    if "$" not in glob:
        return glob
    try:
        return expand(glob, variables)
    except KeyError:
        return "\0unset\0"


def checks_match(
    checks: Sequence[Check], env: Sequence[tuple[str, str]], variables: Mapping[str, str]
) -> bool:
    """Positional values match the environment's values in order; ``KEY!=GLOB`` holds
    when the key is missing (the value is certainly not GLOB)."""
    named = dict(env)
    position = 0
    for check in checks:
        pattern = _value(check.glob, variables)
        if check.key is None:
            if position >= len(env) or not fnmatch.fnmatchcase(env[position][1], pattern):
                return False
            position += 1
            continue
        value = named.get(check.key)
        hit = value is not None and fnmatch.fnmatchcase(value, pattern)
        if hit == check.negate:
            return False
    return True


class Event(Struct, frozen=True):
    name: str
    env: tuple[tuple[str, str], ...] = ()


class Progress(Struct, frozen=True):
    """Which event terms of an atomic condition are satisfied, and by which event."""

    matched: Mapping[int, Event] = field(default_factory=dict)


def _true(node: Node, matched: Mapping[int, Event]) -> bool:
    if isinstance(node, EventTerm):
        return node.index in matched
    if isinstance(node, StateTerm):
        raise TypeError("a state term in an event condition")
    if isinstance(node, And):
        return _true(node.left, matched) and _true(node.right, matched)
    return _true(node.left, matched) or _true(node.right, matched)


def _terms(node: Node) -> list[EventTerm]:
    if isinstance(node, EventTerm):
        return [node]
    if isinstance(node, StateTerm):
        return []
    return _terms(node.left) + _terms(node.right)


def advance(
    node: Node, progress: Progress, event: Event, variables: Mapping[str, str] = {}
) -> tuple[Progress, dict[str, str] | None]:
    """Feed one event to an atomic condition. Returns the new progress and, if the
    condition fired, the environment of the events that made it true (in term order; a
    later term's value wins); firing resets the progress."""
    matched = dict(progress.matched)
    for term in _terms(node):
        if term.name == event.name and checks_match(term.checks, event.env, variables):
            matched[term.index] = event
    if not _true(node, matched):
        return Progress(matched), None
    env: dict[str, str] = {}
    for term in _terms(node):
        if term.index in matched and _true_through(node, term.index, matched):
            env.update(matched[term.index].env)
    return Progress(), env


def _true_through(node: Node, index: int, matched: Mapping[int, Event]) -> bool:
    """Whether the term takes part in making the condition true (a false ``or`` branch's
    stale match does not contribute its environment)."""
    if isinstance(node, EventTerm):
        return node.index == index
    if isinstance(node, StateTerm):
        return False
    if isinstance(node, And):
        return _true_through(node.left, index, matched) or _true_through(node.right, index, matched)
    left = _true(node.left, matched) and _true_through(node.left, index, matched)
    return left or (_true(node.right, matched) and _true_through(node.right, index, matched))


# -- states --------------------------------------------------------------------------------

#: A holding instance of a state or service: its key and its environment.
Holding = tuple[str, Mapping[str, str]]
#: The holding instances of a name (running ones, and process-less states that hold).
Lookup = Callable[[str], Sequence[Holding]]


def _term_bindings(term: StateTerm, lookup: Lookup) -> list[dict[str, str]]:
    """The ways one state term holds: one binding per holding instance that passes its
    checks, binding each ``KEY=*`` wildcard to that instance's value."""
    bindings = []
    for _key, env in lookup(term.name):
        items = tuple(env.items())
        if not checks_match(term.checks, items, {}):
            continue
        bindings.append(
            {t.key: env[t.key] for t in term.checks if t.key and t.glob == "*" and t.key in env}
        )
    return bindings


def bindings(node: Node, lookup: Lookup) -> list[dict[str, str]]:
    """Every distinct way a ``while`` condition holds, as the wildcard values it binds.

    ``[{}]`` means it holds with nothing bound (one plain instance); ``[]`` means it does
    not hold. ``and`` joins compatible bindings (all of), ``or`` unites them (any of), so
    ``getty`` with ``while = "tty(TTY=*)"`` runs once per holding tty instance.
    """
    if isinstance(node, StateTerm):
        return _unique(_term_bindings(node, lookup))
    if isinstance(node, EventTerm):
        raise TypeError("an event term in a state condition")
    left, right = bindings(node.left, lookup), bindings(node.right, lookup)
    if isinstance(node, Or):
        return _unique(left + right)
    joined = []
    for a in left:
        for b in right:
            if all(a[k] == b[k] for k in a.keys() & b.keys()):
                joined.append({**a, **b})
    return _unique(joined)


def _unique(items: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def holds(node: Node, lookup: Lookup) -> bool:
    return bool(bindings(node, lookup))
