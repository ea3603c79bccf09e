"""corral's own bridges as definitions: which ones a configuration needs, and what each watches.

Pure. A bridge (devices, network, files) is a child process of corral's that turns the world
into events and states (DESIGN.md, "Events and states from the bridges"). corral runs one
exactly while some definition uses what it reports, as a service of its own named
``corral-bridge-NAME``: ``registry.build`` adds its definition beside the user's, so
``config check``, ``config show``, ``status`` and a reload see it like any other service, and
no user service may take a name with that prefix. A bridge that watches only some things
(the files bridge: the ``FILE=`` values the conditions mention) asks the daemon for them with
the ``watched`` request, answered by :func:`watched`.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from msgspec import Struct

from corral.core import dbus_jobs, timer_jobs
from corral.core.definition import Definition
from corral.core.expand import UnsetVariable, expand
from corral.core.expr import Check, EventTerm, StateTerm
from corral.core.graph import GraphProblem

#: The names of corral's bridges; a user service may not take one.
PREFIX = "corral-bridge-"

#: Where the definitions of the bridges come from, for ``config show`` and messages.
BUILT_IN = "<built-in>"


class BridgeSpec(Struct, frozen=True):
    """One bridge: what it reports, and the keys whose values it must be told to watch."""

    name: str
    description: str
    events: frozenset[str]
    states: frozenset[str]
    watches: tuple[str, ...] = ()  # keys whose values in the conditions say what to watch
    #: Definition fields that, set on any service, make this bridge needed (``bus_name``,
    #: the timers' ``every``/``on_calendar``).
    fields: tuple[str, ...] = ()

    @property
    def service(self) -> str:
        return PREFIX + self.name


BRIDGES: dict[str, BridgeSpec] = {
    spec.name: spec
    for spec in (
        BridgeSpec(
            "devices",
            "corral's bridge of kernel uevents: device-added, device-removed, device(...)",
            frozenset({"device-added", "device-removed"}),
            frozenset({"device"}),
        ),
        BridgeSpec(
            "network",
            "corral's bridge of rtnetlink: net-address-added, net-address-removed, net-online",
            frozenset({"net-address-added", "net-address-removed"}),
            frozenset({"net-online"}),
        ),
        BridgeSpec(
            "files",
            "corral's bridge of inotify: path-changed, path-exists(...)",
            frozenset({"path-changed"}),
            frozenset({"path-exists"}),
            watches=("FILE",),
        ),
        BridgeSpec(
            "timers",
            "corral's bridge of timers: timer JOB=... at each firing",
            frozenset({"timer"}),
            frozenset(),
            fields=("every", "on_calendar"),
        ),
        BridgeSpec(
            "dbus",
            "corral's bridge of D-Bus: dbus-signal, dbus-name(...), org.corral.Manager1",
            frozenset({"dbus-signal"}),
            frozenset({"dbus-name"}),
            fields=("bus_name",),
        ),
    )
}


def bridge_of(service: str) -> BridgeSpec | None:
    """The bridge a service name is, if it is one."""
    return BRIDGES.get(service[len(PREFIX) :]) if service.startswith(PREFIX) else None


def bridge_table(spec: BridgeSpec, python: str = sys.executable) -> dict[str, Any]:
    """A bridge's ``[service.corral-bridge-NAME]`` table, as if a user had written it: a
    ``notify`` service (ready once it has told the daemon all it holds), always restarted."""
    return {
        "description": spec.description,
        "exec": [python, "-m", "corral.bridges", spec.name],
        "type": "notify",
        "restart": "always",
        "restart_delay": "500ms",
    }


# -- what the conditions use ----------------------------------------------------------------

#: A term of a condition, with the definition it is in and the key it was written under.
_Use = tuple[Definition, str, EventTerm | StateTerm]


def _terms(node: object) -> Iterator[EventTerm | StateTerm]:
    """Every term of a parsed condition, whatever operators join them."""
    if isinstance(node, EventTerm | StateTerm):
        yield node
        return
    for field in getattr(node, "__struct_fields__", ()):
        yield from _terms(getattr(node, field))


def _uses(definitions: Mapping[str, Definition]) -> Iterator[_Use]:
    """Each event term of a ``start_on``/``stop_on`` and each state term of a ``while``
    that names no service or alias (those are the world's states)."""
    services = set(definitions) | {alias for d in definitions.values() for alias in d.provides}
    for d in definitions.values():
        for key, condition in (("start_on", d.start_on), ("stop_on", d.stop_on)):
            if condition is not None:
                for term in _terms(condition.node):
                    yield d, key, term
        if d.while_ is not None:
            for term in _terms(d.while_.node):
                if term.name not in services:
                    yield d, "while", term


def _serves(spec: BridgeSpec, term: EventTerm | StateTerm) -> bool:
    names = spec.events if isinstance(term, EventTerm) else spec.states
    return term.name in names


def needed(definitions: Mapping[str, Definition]) -> list[BridgeSpec]:
    """The bridges some definition uses, in a fixed order: by its conditions, or by a
    field of its own that the bridge serves."""
    used = {spec.name for d, _, term in _uses(definitions) for spec in BRIDGES.values()
            if _serves(spec, term)}  # fmt: skip
    used |= {
        spec.name
        for spec in BRIDGES.values()
        for d in definitions.values()
        if any(getattr(d, field) is not None for field in spec.fields)
    }
    return [spec for name, spec in BRIDGES.items() if name in used]


def _values(check: Check) -> tuple[str, ...]:
    """The values a check asks for: each of ``KEY=a|b|c`` in a state term, one otherwise."""
    return () if check.key is None or check.negate else tuple(check.globs)


def _watched_values(spec: BridgeSpec, definitions: Mapping[str, Definition]) -> Iterator[
    tuple[Definition, str, str, str | None]
]:  # fmt: skip
    """(definition, config key, watched key, value with ``$VAR`` expanded from the
    definition's env, or None where the variable is the instance's and unknown here)."""
    for d, key, term in _uses(definitions):
        if not _serves(spec, term):
            continue
        for check in term.checks:
            if check.key not in spec.watches:
                continue
            for value in _values(check):
                try:
                    yield d, key, check.key, expand(value, d.env)
                except UnsetVariable:
                    yield d, key, check.key, None


def watched(definitions: Mapping[str, Definition], bridge: str) -> dict[str, Any]:
    """What a bridge is to watch. The timers and D-Bus bridges have answers of their own
    (``timer_jobs``, ``dbus_jobs``); for the others, for each of their keys, the values the
    conditions give it (absolute paths, a glob allowed in the last part), sorted; ``{}`` for
    a bridge that reports everything it sees."""
    own = _OWN_ANSWERS.get(bridge)
    if own is not None:
        return own(definitions)
    spec = BRIDGES.get(bridge)
    if spec is None:
        return {}
    found: dict[str, set[str]] = {key: set() for key in spec.watches}
    for _, _, key, value in _watched_values(spec, definitions):
        if value is not None and value != "*" and _path_problem(value) is None:
            found[key].add(value)
    return {key: sorted(values) for key, values in found.items()}


#: Bridges whose ``watched`` answer is their own module's.
_OWN_ANSWERS: dict[str, Callable[[Mapping[str, Definition]], dict[str, Any]]] = {
    "timers": timer_jobs.watched,
    "dbus": dbus_jobs.watched,
}

_GLOB_CHARS = frozenset("*?[")


def _path_problem(value: str) -> str | None:
    """Why a ``FILE=`` value cannot be watched, or None. ``*`` alone is fine: it asks about
    any file watched for another reason, and adds none."""
    if value == "*":
        return None
    if not value.startswith("/"):
        return "expected an absolute path"
    directory = posixpath.dirname(value)
    if _GLOB_CHARS & set(directory):
        return "a glob (* ? [) may only be in the last part of the path"
    return None


def problems(definitions: Mapping[str, Definition]) -> list[GraphProblem]:
    """``FILE=`` values the files bridge could not watch, each where it was written."""
    found: list[GraphProblem] = []
    spec = BRIDGES["files"]
    for d, key, name, value in _watched_values(spec, definitions):
        reason = None if value is None else _path_problem(value)
        if reason is not None:
            message = f"{name}={value}: {reason}; the files bridge watches what this names"
            problem = GraphProblem(d.name, key, message)
            if problem not in found:
                found.append(problem)
    return found


def reserved(name: str) -> str | None:
    """Why a user service may not be named ``name``, or None."""
    if name.startswith(PREFIX):
        return f'names starting with "{PREFIX}" are corral\'s own bridges; choose another name'
    return None
