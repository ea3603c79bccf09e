"""The activation-source seam: everything that produces events or states reaches activation
through here, and only through here.

Sources are corral's own lifecycle (``starting``, ``started``, ... from the machine, and
``startup``), ``corral emit``, and the bridges: each bridge (devices, network, files, timers,
D-Bus) is a child process of corral's that speaks the control protocol (``emit`` for its
events, ``state`` for the states it knows), so a crashing bridge never takes the daemon down.
A bridge names itself; its states are kept per bridge, and the full list it sends when it
(re)connects replaces what it said before, so a bridge that restarts can't leave a stale
state behind.

An event is recorded (``corral events``), shown to followers, and fed to every condition; a
state change marks the ``while`` jobs that mention it, which the driver looks at once no
input is queued.

A bridge that watches only what the conditions name (the files bridge: their ``FILE=``
values) asks here what that is (``watched``), and follows it: each of ``watchers`` is told
after a reload, and sends the bridge the new list if it changed.

What a bridge reports is also told, as it comes, to each of ``reports`` (name, variables,
holds): readiness that the world decides (``type = "dbus"``: its ``bus_name`` got an owner,
``ready_watch.py``) hears each report, not only changes of what holds, so that a name taken
by a new owner counts even where the old owner's release was never seen.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from corral.core import bridge_jobs
from corral.core.evaluate import Event
from corral.core.expr import EVENT_NAME
from corral.core.values import ENV_NAME
from corral.daemon.activation import Activation, Changes
from corral.errors import UsageError

#: Events kept for ``corral events`` (the stream itself has no limit).
EVENT_HISTORY = 1000

#: An event as recorded and streamed: ``{"time", "name", "env"}``.
Record = dict[str, object]

#: Told of each state a bridge reports: its name, its variables, and whether it holds.
Report = Callable[[str, Mapping[str, str], bool], None]


def checked_states(
    source: str, states: Iterable[Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, str], bool]]:
    """A ``state`` request's states as (name, variables, holds); UsageError for a name or a
    variable that could not be written in a condition."""
    if not source:
        raise UsageError("a state's source (the bridge's name) cannot be empty")
    checked = []
    for state in states:
        name, env = state["name"], state.get("env") or {}
        if not EVENT_NAME.match(name):
            raise UsageError(f"{name!r} is not a valid state name")
        for key in env:
            if not ENV_NAME.match(key):
                raise UsageError(f"{key!r} is not a valid variable name")
        checked.append((name, env, state.get("holds", True)))
    return checked


def state_key(env: Mapping[str, str]) -> str:
    """One state's identity among others of its name: its variables, in order."""
    return ",".join(f"{key}={env[key]}" for key in sorted(env))


class World:
    def __init__(
        self,
        activation: Activation,
        apply: Callable[[Changes], None],
        settle: Callable[[], None],
    ) -> None:
        self._activation = activation
        self._apply = apply
        self._settle = settle  # has the driver look at the ``while`` jobs a state marked
        self.history: deque[Record] = deque(maxlen=EVENT_HISTORY)
        self.followers: dict[Callable[[Record], None], None] = {}
        #: source -> state name -> key -> variables
        self._states: dict[str, dict[str, dict[str, Mapping[str, str]]]] = {}
        #: Told after each reload (``watched`` streams to the bridges).
        self.watchers: dict[Callable[[], None], None] = {}
        #: Told of each state a bridge reports (see the module's docstring).
        self.reports: dict[Report, None] = {}
        activation.on_index.append(self._reindexed)

    def emit(self, name: str, env: Mapping[str, str]) -> Changes:
        """An event: recorded, shown to followers, and fed to every condition; what it
        started and stopped is applied, and returned."""
        record: Record = {"time": time.time(), "name": name, "env": dict(env)}
        self.history.append(record)
        for follower in list(self.followers):
            follower(record)
        changes = self._activation.event(Event(name, tuple(env.items())))
        self._apply(changes)
        return changes

    def hold(self, source: str, name: str, env: Mapping[str, str], holds: bool) -> None:
        """``source`` says state ``name`` with these variables holds now, or no longer."""
        states = self._states.setdefault(source, {}).setdefault(name, {})
        key = state_key(env)
        if holds:
            states[key] = dict(env)
        else:
            states.pop(key, None)
        self._tell(name, env, holds)
        self._publish([name])

    def replace(self, source: str, states: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        """Everything ``source`` holds now (a bridge's first word after it connects)."""
        before = self._states.pop(source, {})
        fresh: dict[str, dict[str, Mapping[str, str]]] = {}
        for name, env in states:
            fresh.setdefault(name, {})[state_key(env)] = dict(env)
        self._states[source] = fresh
        if self.reports:
            for name, old in before.items():
                for key, env in old.items():
                    if key not in fresh.get(name, {}):
                        self._tell(name, env, False)
            for name, new in fresh.items():
                for env in new.values():
                    self._tell(name, env, True)
        self._publish({*before, *fresh})

    def holding(self, name: str) -> dict[str, Mapping[str, str]]:
        """Where the world's state ``name`` holds, from every source: key -> variables."""
        merged: dict[str, Mapping[str, str]] = {}
        for states in self._states.values():
            merged.update(states.get(name, {}))
        return merged

    def watched(self, bridge: str) -> dict[str, list[str]]:
        """What ``bridge`` is to watch, from the current definitions (``bridge_jobs``)."""
        return bridge_jobs.watched(self._activation.definitions(), bridge)

    def follower(
        self, bridge: str, send: Callable[[object], object]
    ) -> tuple[dict[str, list[str]], Callable[[], None]]:
        """What ``bridge`` is to watch now, and a watcher that sends ``{"watched": ...}``
        whenever a reload changes it."""
        sent = [self.watched(bridge)]

        def watcher() -> None:
            fresh = self.watched(bridge)
            if fresh != sent[0]:
                sent[0] = fresh
                send({"watched": fresh})

        return sent[0], watcher

    def _tell(self, name: str, env: Mapping[str, str], holds: bool) -> None:
        for report in list(self.reports):
            report(name, env, holds)

    def _reindexed(self) -> None:
        for watcher in list(self.watchers):
            watcher()

    def _publish(self, names: Iterable[str]) -> None:
        for name in names:
            self._activation.outside(name, self.holding(name))
        self._settle()
