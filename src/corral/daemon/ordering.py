"""Start and stop ordering: Upstart's holds on ``starting`` and ``stopping``, and the
dependency gates of ``requires``, ``wants`` and ``after``.

A ``starting`` event holds its instance until every job it started has settled and the
start gate opens (requirements ready; ``after`` targets not still starting); a ``stopping``
event holds until what it stopped has settled and no dependent is still up. The gates
themselves are pure (:mod:`corral.core.gates`); this keeps who holds whom, pulls in
requirements when a start begins, pushes dependents down when a stop begins, and looks at a
hold again whenever something it may wait on changed. Holds are looked at only once no
input is queued (``pending``, drained by the driver), so a gate never decides on a world that
queued inputs are about to change.

A socket-activated service (``activate = "on-connection"``) is what its sockets promise: a
start neither pulls it in nor waits for it, and its own stop or restart leaves what requires
it alone (they need its sockets, which stay open).
"""

from __future__ import annotations

from collections.abc import Callable

from corral.core import inputs as ins
from corral.core.gates import hold_waits_on, start_gate, stop_gate
from corral.core.graph import Edge
from corral.core.records import Instance
from corral.core.states import Goal, State
from corral.daemon.runtime import Runtime, settled
from corral.daemon.table import InstanceTable

Feed = Callable[[Runtime, ins.Input], None]


class Ordering:
    def __init__(self, table: InstanceTable, feed: Feed) -> None:
        self._table = table
        self._feed = feed
        #: Instances whose hold to look at, in order, once no input is queued.
        self.pending: dict[Runtime, None] = {}
        #: Each service and those whose holds its changes may decide (from the graph).
        self._related: dict[str, tuple[str, ...]] = {}
        table.on_rebuilt.append(self._related.clear)

    def held(self, rt: Runtime, event: str, blockers: list[Runtime]) -> None:
        """``event`` (starting or stopping) now holds ``rt`` until ``blockers`` settle and
        its gate opens; a start pulls in what it needs, a stop pushes dependents down."""
        rt.held = event
        rt.blockers = [b for b in blockers if b is not rt]
        for blocker in rt.blockers:
            blocker.holders[rt] = None
        if event == "starting":
            self._pull_in(rt)
        else:
            self._push_down(rt)
        self.pending[rt] = None  # looked at once the pulls are applied

    def _pull_in(self, rt: Runtime) -> None:
        """A start pulls in what it requires or wants, each once however many ask."""
        table = self._table
        name = rt.inst.job
        graph = table.graph
        for need in (*graph.needs(name, Edge.REQUIRES), *graph.needs(name, Edge.WANTS)):
            if self._lazy(need):
                continue
            for dep in table.jobs[need].instances.values():
                if dep.inst.goal is Goal.STOP:
                    table.prepare_start(dep)
                    self._feed(dep, ins.SetGoal(Goal.START))

    def _push_down(self, rt: Runtime) -> None:
        """A stop takes down what requires it first; a restart of it restarts them too."""
        inst = rt.inst
        coming_back = inst.goal is Goal.START
        table = self._table
        if self._lazy(inst.job):
            return
        for name in table.graph.dependents_of(inst.job, Edge.REQUIRES):
            for dep in table.jobs[name].instances.values():
                if dep.inst.goal is not Goal.START:
                    continue
                if coming_back:
                    self._feed(dep, ins.Restart())
                elif inst.give_up and dep.inst.state is State.STARTING:
                    why = f": {inst.error}" if inst.error else ""
                    self._feed(dep, ins.RequirementFailed(f"requirement {inst.job} failed{why}"))
                else:
                    self._feed(dep, ins.SetGoal(Goal.STOP))

    def check(self, rt: Runtime) -> None:
        """Release the hold on ``rt`` if what it waits for has settled and its gate opens."""
        held = rt.held
        if held is None:
            return
        name = rt.inst.job
        starting = held == "starting"
        if rt.inst.state is not (State.STARTING if starting else State.STOPPING):
            self._unhold(rt)
            return
        if not (starting and rt.inst.wants_down):  # a start turned back waits for nothing
            for blocker in [b for b in rt.blockers if self._blocker_done(rt, b)]:
                rt.blockers.remove(blocker)
                blocker.holders.pop(rt, None)
            if rt.blockers:
                return
            graph = self._table.graph
            if starting:
                verdict = start_gate(name, graph, self._view, self._lazy)
                if isinstance(verdict, str):
                    self._feed(rt, ins.RequirementFailed(verdict))  # then released: goal stop
                    self.pending[rt] = None
                    return
                if verdict is None:
                    return
            elif not stop_gate(name, graph, self._view):
                return
        self._unhold(rt)
        self._feed(rt, ins.Released())

    def changed(self, rt: Runtime) -> None:
        """Look again at the holds this instance's change may decide."""
        for holder in rt.holders:
            self.pending[holder] = None
        table = self._table
        name = rt.inst.job
        related = self._related.get(name)
        if related is None:
            graph = table.graph
            related = (name, *graph.dependents_of(name), *graph.before(name))
            self._related[name] = related
        for other in related:
            job = table.jobs.get(other)
            if job is None:
                continue
            for candidate in job.instances.values():
                if candidate.held is not None:
                    self.pending[candidate] = None

    def _unhold(self, rt: Runtime) -> None:
        rt.held = None
        for blocker in rt.blockers:
            blocker.holders.pop(rt, None)
        rt.blockers = []

    def _lazy(self, name: str) -> bool:
        job = self._table.jobs.get(name)
        return job is not None and job.definition.socket_activated

    def _view(self, name: str) -> Instance | None:
        job = self._table.jobs.get(name)
        if job is None:
            return None
        rt = job.instances.get("")
        return rt.inst if rt is not None else None

    def _blocker_done(self, holder: Runtime, blocker: Runtime) -> bool:
        """Settled, or itself waiting for the holder (a wait that would never end)."""
        return settled(blocker.inst) is not None or self._waits_for(blocker, holder, set())

    def _waits_for(self, rt: Runtime, target: Runtime, seen: set[Runtime]) -> bool:
        if rt.held is None or rt in seen:
            return False
        seen.add(rt)
        if hold_waits_on(rt.held, rt.inst.job, target.inst.job, self._table.graph):
            return True
        return any(b is target or self._waits_for(b, target, seen) for b in rt.blockers)
