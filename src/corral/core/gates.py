"""When a held ``starting`` or ``stopping`` may go on: the dependency side of Upstart's holds.

Pure. An instance entering ``starting`` is held until everything it needs first has settled;
one entering ``stopping`` is held until every dependent that is going down is down. The
supervisor asks again whenever a related instance changes, and releases the hold (or fails
the start) on the answer. ``view`` gives the instance record of a service, or None.
"""

from __future__ import annotations

from collections.abc import Callable

from corral.core.graph import Edge, Graph
from corral.core.records import Instance
from corral.core.states import Goal, State

View = Callable[[str], Instance | None]
#: Whether a service is socket-activated: its sockets accept for it before it runs.
Lazy = Callable[[str], bool]

#: States in which nothing of an instance runs: a dependent here no longer uses its needs.
DOWN_STATES = frozenset({State.WAITING, State.FAILED, State.STARTING})


def is_up(inst: Instance) -> bool:
    """Running, ready, and not on its way down for a restart."""
    return inst.state is State.RUNNING and inst.ready and not inst.restarting


def gave_up(inst: Instance) -> bool:
    """At rest with goal stop: it will not come up unless someone starts it again."""
    return inst.goal is Goal.STOP and inst.state in (State.WAITING, State.FAILED)


def _never(name: str) -> bool:
    return False


def start_gate(name: str, graph: Graph, view: View, lazy: Lazy = _never) -> bool | str | None:
    """True: go on. A string: the start must fail, for that reason. None: keep waiting.

    ``requires`` must be up (a requirement at rest with goal stop fails the start);
    ``wants`` and ``after`` only order: wait while they are on their way up. A ``lazy``
    (socket-activated) service counts as up whatever its state: its sockets accept for it,
    and a connection starts it.
    """
    for need in graph.needs(name, Edge.REQUIRES):
        inst = view(need)
        if inst is None or is_up(inst) or lazy(need):
            continue
        if gave_up(inst):
            why = f": {inst.error}" if inst.error else ""
            verb = "failed" if inst.state is State.FAILED else "is stopped"
            return f"requirement {need} {verb}{why}"
        return None
    for need in (*graph.needs(name, Edge.WANTS), *graph.needs(name, Edge.AFTER)):
        inst = view(need)
        if inst is not None and inst.goal is Goal.START and not is_up(inst) and not lazy(need):
            return None
    return True


def stop_gate(name: str, graph: Graph, view: View) -> bool:
    """True once every dependent that is going down is down (dependents stop first)."""
    for dependent in graph.dependents_of(name):
        inst = view(dependent)
        if inst is not None and inst.wants_down and inst.state not in DOWN_STATES:
            return False
    return True


def hold_waits_on(held: str, name: str, other: str, graph: Graph) -> bool:
    """Whether an instance of ``name`` held in ``held`` waits, through its dependencies, for
    ``other``. A held event must not wait for an instance that waits for it: with
    ``start_on = "starting db"`` and ``requires = ["db"]``, db's ``starting`` would wait for
    the job and the job for db. Such a blocker counts as settled (Upstart deadlocked here)."""
    if held == "starting":
        return other in (
            *graph.needs(name, Edge.REQUIRES),
            *graph.needs(name, Edge.WANTS),
            *graph.needs(name, Edge.AFTER),
        )
    return other in graph.dependents_of(name)
