"""What a request's targets address: protocol targets as the supervisor's ``Target``, and
``all``, the word that addresses every service in start/stop/restart (supervisorctl's habit)
unless a service or alias of that name exists (then the name wins)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.core.states import Goal
from corral.daemon.runtime import Target
from corral.daemon.supervisor import Supervisor
from corral.errors import UsageError

ALL = "all"


def named(text: str) -> Target:
    """``NAME`` or ``NAME:INSTANCE`` as a target."""
    name, colon, key = text.partition(":")
    return Target(name, key if colon else None)


def targets_of(raw: list[dict[str, Any]]) -> list[Target]:
    targets = []
    for item in raw:
        if not item["name"]:
            raise UsageError("a service name cannot be empty")
        targets.append(Target(item["name"], item.get("instance"), item.get("env") or {}))
    return targets


def expand(sup: Supervisor, raw: list[dict[str, Any]], goal: Goal | None) -> list[Target]:
    """The targets, with ``all`` (when no service or alias is named so) replaced by what
    it means for the verb: for ``start`` every service ``corral up`` starts, for
    ``stop`` every instance, for ``restart`` (``goal`` None) every instance whose goal
    is start."""
    targets = targets_of(raw)
    if not any(t.name == ALL and t.instance is None and not t.env for t in targets):
        return targets
    if sup.graph.resolve(ALL) is not None:
        return targets  # a service named "all" is addressed by its name
    expanded: list[Target] = []
    for target in targets:
        if target.name == ALL and target.instance is None and not target.env:
            expanded.extend(_every(sup, goal))
        else:
            expanded.append(target)
    return expanded


def _every(sup: Supervisor, goal: Goal | None) -> Iterable[Target]:
    for name, job in sup.jobs.items():
        definition = job.definition
        if goal is Goal.STOP:
            yield Target(name)
        elif job.removed:
            continue  # it may not start again; a stop still reaches it
        elif goal is Goal.START:
            if definition.autostart and definition.instance is None:
                yield Target(name)
        else:
            for key, rt in job.instances.items():
                if rt.inst.goal is Goal.START:
                    yield Target(name, key if definition.instance is not None else None)
