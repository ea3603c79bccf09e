"""Evaluating parsed conditions (:mod:`corral.core.expr`): event conditions against the
events that arrive, state conditions against what holds now. Pure.

An event condition is atomic (Upstart's rule): each term remembers the event that satisfied
it; when the whole condition becomes true it fires with the environment those events carried
and every term is reset, so the next firing needs the whole condition again from scratch. A
state condition's ``bindings`` are every distinct way it holds, which is how a ``while`` job
gets one instance per holding ``KEY=*`` (or per holding value of a list ``KEY=a|b|c``); the
counting terms ``all NAME(KEY=a|b|c)`` and ``K of NAME(KEY=a|b|c)`` hold or not, binding
nothing. ``docs/conditions.md`` shows every form.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence

from msgspec import Struct, field

from corral.core.expand import expand
from corral.core.expr import And, Check, EventTerm, Node, Or, StateTerm

# -- matching --------------------------------------------------------------------------------

#: What an unset ``$VAR`` becomes: a value no instance or event has.
UNSET = "\0unset\0"
_GLOB_CHARS = frozenset("*?[")
_SOLE_VARIABLE = re.compile(r"^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$")


@functools.lru_cache(maxsize=4096)
def _sole_variable(glob: str) -> str | None:
    """The name in a value that is just ``$NAME`` or ``${NAME}`` (``IF=$IF``, the usual
    ``stop_on``): looked up directly, without expanding."""
    match = _SOLE_VARIABLE.match(glob)
    return (match.group(1) or match.group(2)) if match else None


def _value(glob: str, variables: Mapping[str, str], literal: bool = True) -> str:
    """A check's value as a pattern: ``$VAR`` from the instance's environment (an unset one
    matches nothing). What is written is a glob; with ``literal``, what a variable gives is
    not: ``TTY=$TTY`` means "equal to my TTY", even where that TTY has a ``*`` in it."""
    if "$" not in glob:
        return glob
    name = _sole_variable(glob)
    if name is not None:
        value = variables.get(name)
        if value is None:
            return UNSET
        return _escape(value) if literal else value
    try:
        if literal:
            variables = _Escaped(variables)
        return expand(glob, variables)
    except KeyError:
        return UNSET


def _escape(value: str) -> str:
    """A value as an fnmatch pattern that matches just itself."""
    if _GLOB_CHARS.isdisjoint(value):
        return value
    return "".join(f"[{c}]" if c in _GLOB_CHARS else c for c in value)


class _Escaped(Mapping[str, str]):
    """Variables whose values read as literal patterns (for ``expand``)."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self._variables = variables

    def __getitem__(self, name: str) -> str:
        return _escape(self._variables[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def pinned_variables(node: Node) -> dict[str, str]:
    """``VAR -> KEY`` for each ``KEY=$VAR`` check of a condition that is one event term
    (``stop_on = "tty-removed TTY=$TTY"``). An instance matches an event there only where
    its VAR equals the event's KEY, so whoever keeps many instances can go straight to the
    one an event is for instead of asking each. Empty for any other condition."""
    if not isinstance(node, EventTerm):
        return {}
    pins = {}
    for check in node.checks:
        if check.key is not None and not check.negate and len(check.globs) == 1:
            name = _sole_variable(check.globs[0])
            if name is not None:
                pins[name] = check.key
    return pins


#: One check's values with ``$VAR`` expanded, made quick to test against many instances:
#: (key, plain values as a set, the other values as globs, negated, ``*`` is among them).
_Patterns = tuple[str, frozenset[str], tuple[str, ...], bool, bool]


def _patterns(check: Check, variables: Mapping[str, str]) -> _Patterns:
    values = [_value(g, variables) for g in check.globs]
    globs = tuple(v for v in values if not _GLOB_CHARS.isdisjoint(v))
    plain = frozenset(v for v in values if _GLOB_CHARS.isdisjoint(v))
    return check.key or "", plain, globs, check.negate, "*" in globs


def _all_pass(checks: Sequence[_Patterns], env: Mapping[str, str]) -> bool:
    """Every check against one instance's variables: ``KEY!=...`` holds where the key is
    missing, ``KEY=...`` does not. (The inner loop of a thousand instances: kept flat.)"""
    for key, plain, globs, negate, anything in checks:
        value = env.get(key)
        hit = value is not None and (
            anything or value in plain or any(fnmatch.fnmatchcase(value, g) for g in globs)
        )
        if hit == negate:
            return False
    return True


def _passes(check: Check, value: str | None, variables: Mapping[str, str]) -> bool:
    """One check of an event against one value (None: the key is missing)."""
    if value is None:
        return check.negate
    for glob in check.globs:
        pattern = _value(glob, variables)
        plain = _GLOB_CHARS.isdisjoint(pattern)
        if value == pattern if plain else fnmatch.fnmatchcase(value, pattern):
            return not check.negate
    return check.negate


def checks_match(
    checks: Sequence[Check], env: Sequence[tuple[str, str]], variables: Mapping[str, str]
) -> bool:
    """Positional values match the environment's values in order; ``KEY!=GLOB`` holds
    when the key is missing (the value is certainly not GLOB)."""
    named = dict(env) if len(checks) > 1 else None
    position = 0
    for check in checks:
        if check.key is None:
            if position >= len(env) or not _passes(check, env[position][1], variables):
                return False
            position += 1
        elif not _passes(check, _lookup(named, env, check.key), variables):
            return False
    return True


def _lookup(
    named: Mapping[str, str] | None, env: Sequence[tuple[str, str]], key: str
) -> str | None:
    """A key's value in an event (a dict made only where several checks ask)."""
    if named is not None:
        return named.get(key)
    return next((value for k, value in reversed(env) if k == key), None)


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


@functools.lru_cache(maxsize=1024)
def _terms(node: Node) -> tuple[EventTerm, ...]:
    """The event terms in order (kept: a ``stop_on`` is asked once per instance)."""
    if isinstance(node, EventTerm):
        return (node,)
    if isinstance(node, StateTerm):
        return ()
    return _terms(node.left) + _terms(node.right)


def advance(
    node: Node, progress: Progress, event: Event, variables: Mapping[str, str] = {}
) -> tuple[Progress, dict[str, str] | None]:
    """Feed one event to an atomic condition. Returns the new progress and, if the
    condition fired, the environment of the events that made it true (in term order; a
    later term's value wins); firing resets the progress."""
    terms = (node,) if isinstance(node, EventTerm) else _terms(node)
    hits = [
        term.index
        for term in terms
        if term.name == event.name and checks_match(term.checks, event.env, variables)
    ]
    if not hits:
        return progress, None  # nothing new, so still not true: it would have fired
    matched = {**progress.matched, **dict.fromkeys(hits, event)}
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
#: One way a ``while`` condition holds: the values its ``KEY=*`` and ``KEY=a|b|c`` bind.
Binding = dict[str, str]


def _plain_bindings(term: StateTerm, lookup: Lookup, variables: Mapping[str, str]) -> list[Binding]:
    """The ways a plain state term holds: one binding per holding instance that passes its
    checks, binding each ``KEY=*`` and ``KEY=a|b|c`` to that instance's value; each once."""
    checks = [_patterns(c, variables) for c in term.checks]
    bound = [c.key for c in term.checks if c.key is not None and c.binds]
    holding = lookup(term.name)
    if len(bound) == 1:  # the usual ``KEY=*``: one value to a binding, kept cheap
        (key,) = bound
        each = dict.fromkeys(env[key] for _key, env in holding if _all_pass(checks, env))
        return [{key: value} for value in each]
    found: dict[tuple[str, ...], Binding] = {}
    for _key, env in holding:
        if _all_pass(checks, env):
            values = tuple(env[key] for key in bound)
            if values not in found:
                found[values] = dict(zip(bound, values, strict=True))
    return list(found.values())


def _counted_holds(term: StateTerm, lookup: Lookup, variables: Mapping[str, str]) -> bool:
    """``all``/``K of``: how many of the listed values (each counted once, after ``$VAR``
    expansion) some holding instance that passes the other checks has."""
    listed = term.counted
    assert listed is not None and listed.key is not None
    values = {_value(g, variables, literal=False) for g in listed.globs}
    need = term.need if isinstance(term.need, int) else len(values)
    others = [_patterns(c, variables) for c in term.checks if c is not listed]
    held: set[str] = set()
    for _key, env in lookup(term.name):
        value = env.get(listed.key)
        if value in values and value not in held and _all_pass(others, env):
            held.add(value)
            if len(held) >= need:
                return True
    return False


def bindings(node: Node, lookup: Lookup, variables: Mapping[str, str] = {}) -> list[Binding]:
    """Every distinct way a ``while`` condition holds, as the values it binds; ``$VAR`` in
    a value comes from ``variables`` (the job's own environment).

    ``[{}]`` means it holds with nothing bound (one plain instance); ``[]`` means it does
    not hold. ``and`` joins compatible bindings (all of), ``or`` unites them (any of), so
    ``getty`` with ``while = "tty(TTY=*)"`` runs once per holding tty instance. A counting
    term (``all``, ``K of``) binds nothing: it holds for its list as a whole.
    """
    if isinstance(node, StateTerm):
        if node.need is not None:
            return [{}] if _counted_holds(node, lookup, variables) else []
        return _plain_bindings(node, lookup, variables)
    if isinstance(node, EventTerm):
        raise TypeError("an event term in a state condition")
    left = bindings(node.left, lookup, variables)
    if isinstance(node, And) and not left:
        return []  # the right side cannot make it hold: not worth asking
    right = bindings(node.right, lookup, variables)
    if isinstance(node, Or):
        return _unique(left + right)
    joined = []
    for a in left:
        for b in right:
            if all(a[k] == b[k] for k in a.keys() & b.keys()):
                joined.append({**a, **b})
    return _unique(joined)


def _unique(items: list[Binding]) -> list[Binding]:
    """Each binding once, in the order first seen (a thousand ttys: no quadratic scan)."""
    seen: dict[tuple[tuple[str, str], ...], Binding] = {}
    for item in items:
        seen.setdefault(tuple(sorted(item.items())), item)
    return list(seen.values())


def holds(node: Node, lookup: Lookup, variables: Mapping[str, str] = {}) -> bool:
    return bool(bindings(node, lookup, variables))
