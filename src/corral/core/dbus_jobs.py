"""What the D-Bus bridge is to watch: the signals, names and bus names the current definitions
use, and what is wrong with how they use them. Pure.

The bridge adds match rules on the bus only for what the conditions ask (``bridge_jobs``
asks :func:`watched` for the bridge's ``watched`` answer):

- ``signals``: one match rule per ``dbus-signal`` term, as ``{"interface": ..., "member":
  ..., "path": ..., "sender": ...}`` with only the keys the term gives one plain value (no
  glob, no list, no ``$VAR`` that only an instance knows; never ``ARGn``, which a match
  rule compares only with string arguments). The daemon matches the events against the
  whole term anyway; a rule only keeps the rest of the bus away.
- ``names``: the ``NAME=`` values of ``dbus-name`` terms and every ``bus_name``; a glob
  (``org.mpris.MediaPlayer2.*``) is watched as one, and a term that names no value
  (``dbus-name(NAME=$X)`` with ``X`` the instance's) as ``*``.
- ``senders``: the well-known names ``SENDER=`` asks about: a signal's sender is a unique
  name (``:1.42``), so the bridge follows who owns these and reports them by name.
- ``services``: each ``bus_name`` and its service, for the bus-activation files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from corral.core.definition import Definition
from corral.core.expand import UnsetVariable, expand
from corral.core.expr import Check, EventTerm, StateTerm
from corral.core.graph import GraphProblem
from corral.core.states import ServiceType

SIGNAL = "dbus-signal"
NAME_STATE = "dbus-name"

#: A ``dbus-signal`` event's keys, in the order positional values match them.
SIGNAL_KEYS = ("INTERFACE", "MEMBER", "OBJECT_PATH", "SENDER")
#: ``ARG0``, ``ARG1``, ...: the signal's arguments.
ARG_KEY = re.compile(r"^ARG(0|[1-9][0-9]*)$")
#: Event keys and the match-rule keys they become.
RULE_KEYS = {"INTERFACE": "interface", "MEMBER": "member", "OBJECT_PATH": "path",
             "SENDER": "sender"}  # fmt: skip

_ELEMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_INTERFACE = re.compile(rf"^{_ELEMENT}(\.{_ELEMENT})+$")
_MEMBER = re.compile(rf"^{_ELEMENT}$")
_PATH = re.compile(r"^/$|^(/[A-Za-z0-9_]+)+$")
_WELL_KNOWN = re.compile(r"^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$")
_UNIQUE = re.compile(r"^:[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
_GLOB_CHARS = frozenset("*?[")


def _bus_name(value: str) -> bool:
    return len(value) <= 255 and bool(_WELL_KNOWN.match(value) or _UNIQUE.match(value))


#: What a plain value of each key must look like, and how to say so.
_SHAPES: dict[str, tuple[Callable[[str], object], str]] = {
    "INTERFACE": (_INTERFACE.match, 'an interface name such as "org.example.Power"'),
    "MEMBER": (_MEMBER.match, 'a member name such as "Critical"'),
    "OBJECT_PATH": (_PATH.match, 'an object path such as "/org/example/Power"'),
    "SENDER": (_bus_name, 'a bus name such as "org.example.Power" or ":1.42"'),
    "NAME": (_bus_name, 'a bus name such as "org.example.Foo"'),
}


def _terms(node: object) -> Iterator[EventTerm | StateTerm]:
    if isinstance(node, EventTerm | StateTerm):
        yield node
        return
    for field in getattr(node, "__struct_fields__", ()):
        yield from _terms(getattr(node, field))


#: A term of a condition, with its definition and the key it was written under.
_Use = tuple[Definition, str, EventTerm | StateTerm]


def _uses(definitions: Mapping[str, Definition]) -> Iterator[_Use]:
    """Each ``dbus-signal`` term of a ``start_on``/``stop_on``, each ``dbus-name`` term of a
    ``while`` (unless a service of that name shadows the world's state)."""
    services = set(definitions) | {alias for d in definitions.values() for alias in d.provides}
    for d in definitions.values():
        for key, condition in (("start_on", d.start_on), ("stop_on", d.stop_on)):
            for term in _terms(condition.node) if condition is not None else ():
                if isinstance(term, EventTerm) and term.name == SIGNAL:
                    yield d, key, term
        if d.while_ is not None and NAME_STATE not in services:
            for term in _terms(d.while_.node):
                if isinstance(term, StateTerm) and term.name == NAME_STATE:
                    yield d, "while", term


def _keyed(term: EventTerm | StateTerm) -> Iterator[tuple[str, Check]]:
    """Each check with its key; an event's positional values take the keys in order
    (``dbus-signal org.example.Power Critical`` is INTERFACE, then MEMBER)."""
    order = SIGNAL_KEYS if isinstance(term, EventTerm) else ()
    position = 0
    for check in term.checks:
        if check.key is not None:
            yield check.key, check
            continue
        yield (order[position] if position < len(order) else f"#{position + 1}"), check
        position += 1


def _plain(check: Check, env: Mapping[str, str]) -> str | None:
    """The one exact value a check asks for, or None (a glob, a list, ``!=``, a ``$VAR``
    only an instance knows)."""
    if check.negate or len(check.globs) != 1:
        return None
    try:
        value = expand(check.globs[0], env)
    except UnsetVariable:
        return None
    return None if _GLOB_CHARS & set(value) else value


def _rule(d: Definition, term: EventTerm) -> dict[str, str]:
    rule: dict[str, str] = {}
    for key, check in _keyed(term):
        value = _plain(check, d.env)
        if key in RULE_KEYS and value is not None:
            rule[RULE_KEYS[key]] = value
    return rule


def _name_patterns(d: Definition, term: StateTerm) -> list[str]:
    """The names a ``dbus-name`` term asks about: its values (globs kept), else ``*``."""
    found: list[str] = []
    for key, check in _keyed(term):
        if key != "NAME" or check.negate:
            continue
        for glob in check.globs:
            try:
                found.append(expand(glob, d.env))
            except UnsetVariable:
                found.append("*")
    return found or ["*"]


def watched(definitions: Mapping[str, Definition]) -> dict[str, Any]:
    """The D-Bus bridge's ``watched`` answer (see the module's docstring)."""
    rules: dict[tuple[tuple[str, str], ...], None] = {}
    names: set[str] = set()
    senders: set[str] = set()
    for d, _, term in _uses(definitions):
        if isinstance(term, EventTerm):
            rule = _rule(d, term)
            rules[tuple(sorted(rule.items()))] = None
            sender = rule.get("sender")
            if sender is not None and not sender.startswith(":"):
                senders.add(sender)
        else:
            names.update(_name_patterns(d, term))
    services = {d.bus_name: d.name for d in definitions.values() if d.bus_name is not None}
    names.update(services)
    return {
        "signals": [dict(rule) for rule in sorted(rules)],
        "names": sorted(names),
        "senders": sorted(senders),
        "services": dict(sorted(services.items())),
    }


# -- what config check says ------------------------------------------------------------------


def definition_problems(values: Mapping[str, Any], has_process: bool) -> list[tuple[str, str]]:
    """(message, key) for the D-Bus keys of one service's parsed values."""
    found: list[tuple[str, str]] = []
    if values.get("type") is ServiceType.DBUS and "bus_name" not in values:
        found.append(('type "dbus" needs bus_name: the name whose owner makes it ready', "type"))
    if "bus_name" in values:
        if not has_process:
            found.append(("a state (a service without exec or script) owns no bus name",
                          "bus_name"))  # fmt: skip
        elif "instance" in values or values.get("accept"):
            found.append(("a bus name has one owner at a time: bus_name is not for an "
                          "instantiated service", "bus_name"))  # fmt: skip
    return found


def problems(definitions: Mapping[str, Definition]) -> list[GraphProblem]:
    """A ``bus_name`` taken twice; a ``dbus-signal``/``dbus-name`` key that neither has,
    or a value that no signal or name could ever have."""
    found: list[GraphProblem] = []
    owners: dict[str, str] = {}
    for d in definitions.values():
        if d.bus_name is None:
            continue
        first = owners.setdefault(d.bus_name, d.name)
        if first != d.name:
            found.append(GraphProblem(d.name, "bus_name", f"{d.bus_name} is the bus_name of "
                                      f"{first} already; a name has one owner"))  # fmt: skip
    for d, key, term in _uses(definitions):
        for name, check in _keyed(term):
            message = _check_problem(term, name, check, d.env)
            problem = GraphProblem(d.name, key, message) if message else None
            if problem is not None and problem not in found:
                found.append(problem)
    return found


def _check_problem(
    term: EventTerm | StateTerm, key: str, check: Check, env: Mapping[str, str]
) -> str | None:
    signal = isinstance(term, EventTerm)
    if key.startswith("#"):
        keys = ", ".join(SIGNAL_KEYS)
        return f"{term.name} takes at most {len(SIGNAL_KEYS)} positional values ({keys})"
    known = (key in SIGNAL_KEYS or bool(ARG_KEY.match(key))) if signal else key == "NAME"
    if not known:
        keys = "INTERFACE, MEMBER, OBJECT_PATH, SENDER, ARG0, ARG1, ..." if signal else "NAME"
        return f"{term.name} has no {key}; its keys are {keys}"
    shape = _SHAPES.get(key)
    if shape is None:
        return None
    matches, expected = shape
    for glob in check.globs:
        try:
            value = expand(glob, env)
        except UnsetVariable:
            continue
        if not (_GLOB_CHARS & set(value)) and not matches(value):
            return f"{key}={value}: expected {expected}"
    return None
