"""``start_on``, ``stop_on`` and ``while``: which instances an event or a change of state
starts or stops.

The conditions themselves are pure (:mod:`corral.core.expr`); this keeps what they need
between events: an index from event and state names to the jobs that mention them (so an
event nobody listens for costs one dict lookup), each job's ``start_on`` progress, and for
each ``while`` job the instance keys it last asked to run. ``while`` is edge-triggered: a job
starts when its condition becomes true and stops when it becomes false; a manual ``stop`` or
``start`` in between holds until the condition next changes.

A state is either a service (it holds for each instance that is running and ready) or one
the world reports (:mod:`corral.daemon.world`: a device, a D-Bus name, the network), which
holds for each set of variables the world said holds.

corral's own bridges (``core/bridge_jobs.py``) are services the configuration makes for
itself: one that a reload removed (no definition uses it any more) is stopped here, where
a user's removed service would be left to run until stopped.

A timer's firing is the event ``timer JOB=NAME`` (from the timers bridge, ``corral trigger``
or ``corral emit``): it starts NAME, a timer job, whatever its ``autostart``. A oneshot that
is done (running with no process) runs again: it is stopped, and started once the stop has
been applied (``reconcile``), which the machine makes one restart of it. A job still running
from its last start is left alone, and that said in its log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from corral.core.bridge_jobs import bridge_of
from corral.core.definition import Definition
from corral.core.evaluate import Event, Holding, Progress, advance, bindings, pinned_variables
from corral.core.gates import is_up
from corral.core.instances import InstanceError, instance_key, variables_of
from corral.core.records import Instance
from corral.core.states import Goal, ServiceType, State
from corral.daemon.runtime import Job, Runtime
from corral.daemon.table import Complain, InstanceTable
from corral.errors import OperationFailed

#: The lifecycle events that hold their instance until what they start or stop settles.
HOLDING_EVENTS = ("starting", "stopping")

#: A timer's firing: ``timer JOB=NAME`` starts NAME (DESIGN.md, "Timers").
TIMER_EVENT = "timer"

#: Instances to start (with the environment that starts them) and instances to stop.
Changes = tuple[list[tuple[Runtime, dict[str, str]]], list[Runtime]]


class Activation:
    """The condition side of the daemon: it decides, the driver feeds the machine."""

    def __init__(self, table: InstanceTable, complain: Complain) -> None:
        self._table = table
        self._complain = complain
        self._start_on: dict[str, list[str]] = {}  # event name -> jobs whose start_on has it
        self._stop_on: dict[str, list[str]] = {}
        self._while_on: dict[str, list[str]] = {}  # state name -> jobs whose while mentions it
        self._progress: dict[str, Progress] = {}
        self._uniform: set[str] = set()
        #: Where each service holds (``_holding``), kept until one of its instances goes up
        #: or down: the ``while`` jobs a change marks all read one list.
        self._held: dict[str, list[Holding]] = {}
        #: while job -> its bindings (as sorted items) -> the instance key they give
        self._keys: dict[str, dict[tuple[tuple[str, str], ...], str]] = {}
        self._asked: dict[str, dict[str, None]] = {}  # while job -> keys it asked to run
        #: States the world holds: name -> key -> variables (``world.py`` keeps them).
        self._outside: dict[str, dict[str, Mapping[str, str]]] = {}
        self.dirty: dict[str, None] = {}  # while jobs to look at once no input is queued
        self._timers: frozenset[str] = frozenset()  # the jobs with a timer
        #: Done oneshots a firing stopped, to start again once the stop is applied.
        self._reruns: dict[str, Runtime] = {}
        #: Whether any ``start_on``/``stop_on`` mentions a holding lifecycle event (``starting``,
        #: ``stopping``); if none does, those events hold nobody but by dependencies.
        self.holds_heard = False
        #: Told after every ``index`` (a reload): the bridges' ``watched`` streams.
        self.on_index: list[Callable[[], None]] = []
        self.index()
        table.on_rebuilt.append(self.index)

    def index(self) -> None:
        """Build the lookups from the jobs' current definitions."""
        self._start_on.clear()
        self._held.clear()
        self._keys.clear()
        self._stop_on.clear()
        self._while_on.clear()
        graph = self._table.graph
        for name, job in self._table.jobs.items():
            d = job.definition
            if job.removed and bridge_of(name) is not None:
                self.dirty[name] = None  # no definition uses it any more: stopped
            for condition, index in ((d.start_on, self._start_on), (d.stop_on, self._stop_on)):
                for event in condition.names if condition is not None else ():
                    index.setdefault(event, []).append(name)
            if d.while_ is not None:
                for state in d.while_.names:
                    real = graph.resolve(state) or state
                    self._while_on.setdefault(real, []).append(name)
                self.dirty[name] = None
        self._uniform = {
            name
            for name, job in self._table.jobs.items()
            if all(_same_stop(rt.definition, job.definition) for rt in job.instances.values())
        }
        self.holds_heard = any(
            event in index for event in HOLDING_EVENTS for index in (self._start_on, self._stop_on)
        )
        self._timers = frozenset(
            name
            for name, job in self._table.jobs.items()
            if job.definition.timer and not job.removed
        )
        for told in self.on_index:
            told()

    def definitions(self) -> dict[str, Definition]:
        """The current definitions (of the services still in the configuration)."""
        return {name: job.definition for name, job in self._table.jobs.items() if not job.removed}

    def forget(self, name: str) -> None:
        """A job's definition changed: its ``start_on`` counts from scratch."""
        self._progress.pop(name, None)

    def mentions_state(self, name: str) -> bool:
        """Whether some ``while`` asks about this state."""
        return name in self._while_on

    def event(self, event: Event) -> Changes:
        """Feed one event to every condition that mentions it."""
        starts: list[tuple[Runtime, dict[str, str]]] = []
        stops: list[Runtime] = []
        table = self._table
        for name in self._start_on.get(event.name, ()):
            job = table.jobs[name]
            condition = job.definition.start_on
            assert condition is not None
            progress = self._progress.get(name, Progress())
            progress, fired = advance(condition.node, progress, event, job.definition.env)
            self._progress[name] = progress
            if fired is None or table.shutting_down:
                continue
            why = f'start_on "{condition.text}"'
            rt = table.instance_for(job, fired, why, self._complain)
            if rt is not None and (rt.inst.goal is Goal.STOP or done(rt)):
                starts.append((rt, fired))  # a done oneshot runs again (DESIGN.md "Oneshot")
        for name in self._stop_on.get(event.name, ()):
            for rt in self._stop_candidates(table.jobs[name], event):
                condition = rt.definition.stop_on
                if condition is None or rt.inst.goal is not Goal.START:
                    continue
                rt.stop_progress, fired = advance(
                    condition.node, rt.stop_progress, event, rt.variables
                )
                if fired is not None:
                    stops.append(rt)
        if event.name == TIMER_EVENT:
            self._timer_fired(dict(event.env).get("JOB", ""), starts, stops)
        return starts, stops

    def _timer_fired(
        self, name: str, starts: list[tuple[Runtime, dict[str, str]]], stops: list[Runtime]
    ) -> None:
        """Start a timer's job, or run it again if it is a done oneshot."""
        table = self._table
        if name not in self._timers or table.shutting_down:
            return
        job = table.jobs[name]
        rt = job.instances[""]
        if rt.inst.goal is Goal.STOP:
            starts.append((rt, {}))
        elif done(rt):
            stops.append(rt)
            self._reruns[name] = rt
            self.dirty[name] = None
        else:
            self._complain(job, "its timer fired while it still runs: this firing is skipped")

    def timer_job(self, job: Job) -> Runtime:
        """The instance a firing of ``job``'s timer would run now (``corral trigger``);
        OperationFailed where it would run nothing."""
        name = job.definition.name
        if name not in self._timers:
            raise OperationFailed(
                f"{name} has no timer (every or on_calendar); start it with corral start"
            )
        rt = job.instances[""]
        if rt.inst.goal is Goal.START and not done(rt):
            raise OperationFailed(f"{name} still runs from its last start; not run again")
        return rt

    def _stop_candidates(self, job: Job, event: Event) -> Iterable[Runtime]:
        """The instances an event may stop: where the job's ``stop_on`` pins the instance's
        variables to the event's (``stop_on = "tty-removed TTY=$TTY"``, ``instance =
        "${TTY}"``), the one instance whose key the event gives; else every instance."""
        d = job.definition
        condition = d.stop_on
        pins = pinned_variables(condition.node) if condition is not None else {}
        template = d.instance
        if (
            not pins
            or template is None
            or d.name not in self._uniform
            or not set(variables_of(template)) <= pins.keys()
        ):
            return job.instances.values()
        env = dict(event.env)
        if any(key not in env for key in pins.values()):
            return ()
        try:
            key = instance_key(d.name, template, {**d.env, **{v: env[k] for v, k in pins.items()}})
        except InstanceError:
            return ()
        rt = job.instances.get(key)
        return (rt,) if rt is not None else ()

    def changed(self, rt: Runtime, before: Instance) -> None:
        """An instance changed: the ``while`` jobs that mention it are looked at again."""
        if is_up(before) != is_up(rt.inst):
            self._held.pop(rt.inst.job, None)
            for name in self._while_on.get(rt.inst.job, ()):
                self.dirty[name] = None

    def outside(self, name: str, holding: dict[str, Mapping[str, str]]) -> None:
        """The world's state ``name`` now holds for exactly these (key -> variables)."""
        if holding:
            self._outside[name] = holding
        else:
            self._outside.pop(name, None)
        for job in self._while_on.get(name, ()):
            self.dirty[job] = None

    def reconcile(self, name: str) -> Changes:
        """Compare where a ``while`` job's condition holds now with where it held before;
        start again a done oneshot that its timer's firing stopped."""
        starts, stops = self._reconcile_while(name)
        rerun = self._reruns.pop(name, None)
        job = self._table.jobs.get(name)
        if (
            rerun is not None
            and job is not None
            and job.instances.get("") is rerun
            and rerun.inst.goal is Goal.STOP
            and not self._table.shutting_down
        ):
            starts.append((rerun, {}))
        return starts, stops

    def _reconcile_while(self, name: str) -> Changes:
        table = self._table
        job = table.jobs.get(name)
        if job is not None and job.removed and bridge_of(name) is not None:
            return [], [rt for rt in job.instances.values() if rt.inst.goal is Goal.START]
        condition = job.definition.while_ if job is not None else None
        if job is None or condition is None:
            return [], []
        definition = job.definition
        why = f'while "{condition.text}"'
        wanted: dict[str, dict[str, str]] = {}
        known = self._keys.get(name, {})
        keys: dict[tuple[tuple[str, str], ...], str] = {}
        for binding in bindings(condition.node, self._holding, definition.env):
            if definition.instance is None:
                wanted.setdefault("", binding)
                continue
            ident = tuple(sorted(binding.items()))
            key = known.get(ident)
            if key is None:
                try:
                    key = instance_key(name, definition.instance, {**definition.env, **binding})
                except InstanceError as exc:
                    self._complain(job, f"{why}: {exc}")
                    continue
            keys[ident] = key
            wanted.setdefault(key, binding)
        self._keys[name] = keys
        before = self._asked.get(name, {})
        self._asked[name] = dict.fromkeys(wanted)
        starts: list[tuple[Runtime, dict[str, str]]] = []
        stops: list[Runtime] = []
        for key, env in wanted.items():
            if key in before or table.shutting_down:
                continue
            rt = table.instance_for(job, env, why, self._complain)
            if rt is not None and rt.inst.goal is Goal.STOP:
                starts.append((rt, env))
        for key in before:
            rt = job.instances.get(key)
            if key not in wanted and rt is not None and rt.inst.goal is Goal.START:
                stops.append(rt)
        return starts, stops

    def _holding(self, name: str) -> Sequence[Holding]:
        """Where ``name`` holds: each instance of that service that is running and ready,
        or each set of variables for which the world says that state holds."""
        table = self._table
        real = table.graph.resolve(name)
        job = table.jobs.get(real) if real is not None else None
        if job is None:
            return list(self._outside.get(name, {}).items())
        held = self._held.get(job.definition.name)
        if held is None:
            held = [(key, rt.variables) for key, rt in job.instances.items() if is_up(rt.inst)]
            self._held[job.definition.name] = held
        return held


def done(rt: Runtime) -> bool:
    """A oneshot whose process exited 0: running, with no process (DESIGN.md, "Oneshot")."""
    inst = rt.inst
    return (
        rt.definition.type is ServiceType.ONESHOT
        and inst.state is State.RUNNING
        and not inst.main_alive
    )


def _same_stop(a: Definition, b: Definition) -> bool:
    return a.stop_on == b.stop_on and a.instance == b.instance and a.env == b.env
