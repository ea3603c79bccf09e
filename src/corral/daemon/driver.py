"""The driver steps the pure machine and applies what it decides.

Happenings (a command, a child's exit, a timer) become inputs; ``feed`` steps the machine for
one instance and applies the effects it returns through the rooms that own them: processes
(spawn, signal), ordering (the holds of ``starting``/``stopping``), the world (lifecycle
events), the journal (notes). Inputs caused while effects are being applied (a spawn
reporting back, a released event) wait in a FIFO queue until every effect of the step before
them is applied, so the machine always sees the world in order (dinit's "propagate, then
execute"). Work that must see a settled world (a hold's gate, a ``while`` condition,
forgetting a stopped instance) is done only once no input is queued. Nothing here blocks:
timers are loop callbacks armed only while an instance waits for something.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.evaluate import Progress
from corral.core.machine import step
from corral.core.records import Instance
from corral.core.states import Goal, ProcessKind, ServiceType, State
from corral.daemon.activation import Activation, Changes, done
from corral.daemon.journal import Journal
from corral.daemon.ordering import Ordering
from corral.daemon.runtime import Predicate, Runtime
from corral.daemon.table import InstanceTable


class ProcessPort(Protocol):
    """What the machine's process effects are applied to (``daemon/processes.py``)."""

    def spawn(self, rt: Runtime, kind: ProcessKind) -> None: ...
    def signal(self, rt: Runtime, kind: ProcessKind, number: int) -> None: ...


#: Emits an event to every condition: what it started and what it stopped.
Emitter = Callable[[str, Mapping[str, str]], Changes]
#: Told when an instance comes to rest (waiting or failed): its cgroup may go.
AtRest = Callable[[Runtime], None]


class Driver:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        table: InstanceTable,
        journal: Journal,
        activation: Activation,
        clock: Callable[[], float],
    ) -> None:
        self._loop = loop
        self._table = table
        self._journal = journal
        self._activation = activation
        self._clock = clock
        self._queue: deque[tuple[Runtime, ins.Input]] = deque()
        self.draining = False
        self.ordering = Ordering(table, self.feed)
        #: Told of every change of an instance's state, after the driver's own work: (the
        #: instance, its record before). Metrics, say; none by default, so none is paid for.
        self.observers: list[Callable[[Runtime, Instance], None]] = []
        # Set by ``connect`` once the rooms that need ``feed`` exist.
        self._processes: ProcessPort | None = None
        self._emit: Emitter | None = None
        self._at_rest: AtRest | None = None

    def connect(self, processes: ProcessPort, emit: Emitter, at_rest: AtRest) -> None:
        self._processes = processes
        self._emit = emit
        self._at_rest = at_rest

    # -- feeding the machine -------------------------------------------------------------

    def feed(self, runtime: Runtime, event: ins.Input) -> None:
        """Step the machine for one instance, applying effects; re-entrant calls queue."""
        self.feed_all([(runtime, event)])

    def feed_all(self, items: Iterable[tuple[Runtime, ins.Input]]) -> None:
        """Queue inputs and apply them in order. Holds are looked at only once no input is
        left, so a gate never decides on a world that queued inputs are about to change
        (a batch of stops, say, is all seen before any stop gate opens)."""
        self._queue.extend(items)
        if self.draining:
            return
        self.draining = True
        activation = self._activation
        ordering = self.ordering
        table = self._table
        try:
            while self._queue or ordering.pending or activation.dirty or table.idle:
                if not self._queue:
                    self._when_quiet()
                    continue
                rt, item = self._queue.popleft()
                before = rt.inst
                rt.inst, effects = step(rt.inst, rt.definition.policy, item, self._clock())
                table.changed()
                for effect in effects:
                    self._apply(rt, effect)
                after = rt.inst
                if after.state is not before.state:
                    self._state_changed(rt, before)
                    for observer in self.observers:
                        observer(rt, before)
                if (
                    after.state is not before.state
                    or after.goal is not before.goal
                    or after.restarting != before.restarting
                    or after.ready != before.ready
                ):
                    ordering.changed(rt)
                    activation.changed(rt, before)
                if rt.waiters:
                    _check_waiters(rt)
        finally:
            self.draining = False

    def _when_quiet(self) -> None:
        """One piece of the work that must see a settled world: a hold, a ``while``, or
        forgetting a stopped instance."""
        ordering = self.ordering
        if ordering.pending:
            rt = next(iter(ordering.pending))
            del ordering.pending[rt]
            ordering.check(rt)
        elif self._activation.dirty:
            name = next(iter(self._activation.dirty))
            del self._activation.dirty[name]
            self.apply_changes(self._activation.reconcile(name))
        else:
            rt = next(iter(self._table.idle))
            del self._table.idle[rt]
            gone = self._table.forget_if_idle(rt)
            if gone is not None:
                name = gone.definition.name
                self._journal.say_corral(
                    f"{name}: removed from the configuration, and now stopped: gone"
                )

    def apply_changes(self, changes: Changes) -> None:
        """Start and stop what an event or a ``while`` decided."""
        starts, stops = changes
        if not starts and not stops:
            return  # the usual case: no condition mentions the event
        for rt, env in starts:
            self._table.prepare_start(rt, env)
        self.feed_all(
            [(rt, ins.Restart() if done(rt) else ins.SetGoal(Goal.START)) for rt, _ in starts]
            + [(rt, ins.SetGoal(Goal.STOP)) for rt in stops]
        )

    def _apply(self, rt: Runtime, effect: fx.Effect) -> None:
        assert self._processes is not None and self._emit is not None
        match effect:
            case fx.Spawn(process=kind):
                self._processes.spawn(rt, kind)
            case fx.Signal(process=kind, signal=number):
                self._processes.signal(rt, kind, number)
            case fx.SetTimer(timer=kind, seconds=seconds):
                if rt.timer is not None:
                    rt.timer.cancel()
                rt.timer = self._loop.call_later(seconds, self.feed, rt, ins.TimerFired(kind))
            case fx.CancelTimer():
                if rt.timer is not None:
                    rt.timer.cancel()
                    rt.timer = None
            case fx.Emit(name=name, env=env, hold=hold):
                starts, stops = self._emit(name, env)
                if hold:
                    self.ordering.held(rt, name, [*(b for b, _ in starts), *stops])
            case fx.Note(text=text):
                self._journal.say(rt, text)

    def _state_changed(self, rt: Runtime, before: Instance) -> None:
        inst = rt.inst
        if before.state is State.SPAWNED and rt.readiness is not None:
            rt.readiness.stop_waiting()
        if inst.state in (State.WAITING, State.FAILED) and rt.readiness is not None:
            rt.readiness.close()
            rt.readiness = None
        say = self._journal.say
        if inst.state is State.RUNNING:
            pid = rt.main_pid
            if pid is None and rt.definition.type is ServiceType.ONESHOT:
                say(rt, "done")  # it exited 0: what requires it may go on
            else:
                say(rt, "running" + (f" (pid {pid})" if pid else ""))
        elif inst.state is State.FAILED:
            say(rt, f"failed: {inst.error}" if inst.error else "failed")
        elif inst.state is State.WAITING and before.state is not State.WAITING:
            say(rt, "stopped")
        if inst.state is State.STARTING:
            rt.stop_progress = Progress()  # stop_on counts from this start on
            if rt.renew:
                rt.renew = False
                self._table.take_current(rt)
        if inst.state in (State.WAITING, State.FAILED):
            self._table.idle[rt] = None  # maybe an instance or a removed service to forget
            rt.status_text = ""
            self._table.changed()
            if self._at_rest is not None:
                self._at_rest(rt)

    # -- waiting -------------------------------------------------------------------------

    def until(self, rt: Runtime, predicate: Predicate) -> asyncio.Future[bool]:
        """A future that resolves once ``predicate`` gives an outcome for this instance; the
        predicate is asked at once and after every step of the instance's machine."""
        future: asyncio.Future[bool] = self._loop.create_future()
        outcome = predicate(rt.inst)
        if outcome is not None:
            future.set_result(outcome)
        else:
            rt.waiters.append((predicate, future))
        return future


def _check_waiters(rt: Runtime) -> None:
    keep = []
    for predicate, future in rt.waiters:
        if future.done():
            continue
        outcome = predicate(rt.inst)
        if outcome is None:
            keep.append((predicate, future))
        else:
            future.set_result(outcome)
    rt.waiters = keep
