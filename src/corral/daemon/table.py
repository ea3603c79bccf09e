"""The instance table: every job, its current definition and its instances, and how the
targets of a command (``web``, ``web:KEY``, ``web KEY=VALUE``) name them.

Instances are made here when a start needs them and forgotten here once at rest (Upstart's
rule: a stopped instance of an instantiated job goes away; a connection's instance of an
``accept = true`` service goes away failed too, once its failure is logged). What an instance
holds beyond its walk goes with its rest: a connection never handed over, its fd store. ``version`` counts every change
that a status row could show (an instance's record, its processes, its definition, which
instances exist); whoever shows instances may keep what it showed while it stands.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping

from corral.core.definition import Definition, graph_of
from corral.core.graph import Graph
from corral.core.instances import InstanceError, bad_key, env_for_key, instance_key
from corral.core.records import Instance
from corral.core.states import Goal, State
from corral.daemon.logs import ServiceLog
from corral.daemon.runtime import Job, Runtime, Target
from corral.errors import NoSuchService, UsageError

#: Says something about a job in its log (an event it could not act on, say).
Complain = Callable[[Job, str], None]


class InstanceTable:
    """Jobs by name, instances by key, and the dependency graph of the current jobs."""

    def __init__(
        self,
        definitions: Mapping[str, Definition],
        graph: Graph | None,
        log_dir: str,
        clock: Callable[[], float],
    ) -> None:
        self._log_dir = log_dir
        self._clock = clock
        self.version = 0
        self.shutting_down = False
        self.jobs: dict[str, Job] = {}
        self.graph: Graph = graph if graph is not None else graph_of(definitions)
        #: Instances that came to rest: maybe one to forget (``forget_if_idle``), looked at
        #: once no input is queued.
        self.idle: dict[Runtime, None] = {}
        #: Called after the graph was rebuilt (a reload, a removed service gone).
        self.on_rebuilt: list[Callable[[], None]] = []
        #: Called with each instance that came to rest, before it may be forgotten.
        self.on_rest: list[Callable[[Runtime], None]] = []
        for name, definition in definitions.items():
            job = Job(definition, log=ServiceLog(name, definition.log, log_dir), since=clock())
            if definition.instance is None:
                # A service that is not instantiated has its one instance from the start, so
                # status shows it (goal stop, state waiting) before anything started it.
                self.new_instance(job, "")
            self.jobs[name] = job

    def changed(self) -> None:
        """Something a status row shows changed, or which rows there are."""
        self.version += 1

    def runtimes(self) -> Iterator[Runtime]:
        for job in self.jobs.values():
            yield from job.instances.values()

    # -- addressing ----------------------------------------------------------------------

    def job(self, name: str, starting: bool = False) -> Job:
        """The job of a name or alias; ``starting``: refuse one removed from the config."""
        real = self.graph.resolve(name)
        job = self.jobs.get(real) if real is not None else None
        if job is None:
            raise NoSuchService(f"no such service: {name}")
        if starting and job.removed:
            raise NoSuchService(
                f"{job.definition.name} was removed from the configuration; "
                "what still runs of it keeps running until stopped"
            )
        return job

    def instances(self, target: Target, create: bool = False, every: bool = False) -> list[Runtime]:
        """The instances a target addresses; ``create`` makes the one a start needs and
        gives it the start's environment (when it is at rest). A bare name of an
        instantiated service means all its instances, except for a start (``every`` False)."""
        job = self.job(target.name)
        key, env = self.address(job, target, create and not every)
        if key is None:
            return list(job.instances.values())
        rt = job.instances.get(key)
        if rt is None:
            if not create:
                return []
            rt = self.new_instance(job, key)
        if create:
            self.prepare_start(rt, env)
        return [rt]

    def resolve(
        self, targets: Iterable[Target], create: bool, every: bool = False
    ) -> list[Runtime]:
        """The instances of several targets, in order, each once; every address is checked
        before anything is touched."""
        runtimes: dict[Runtime, None] = {}  # in order, each once (a dict: 10000 targets)
        targets = list(targets)
        for target in targets:
            self.address(self.job(target.name, starting=create), target, create and not every)
        for target in targets:
            runtimes.update(dict.fromkeys(self.instances(target, create=create, every=every)))
        return list(runtimes)

    def address(self, job: Job, target: Target, create: bool) -> tuple[str | None, dict[str, str]]:
        """The instance key a target names (None: every instance) and its environment."""
        d = job.definition
        if d.instance is None:
            if target.instance:
                raise UsageError(f"service {d.name} is not instantiated; address it as {d.name}")
            return "", dict(target.env)
        if target.instance is not None:
            return self._keyed(job, target, create)
        if target.env:
            try:
                return instance_key(d.name, d.instance, {**d.env, **target.env}), dict(target.env)
            except InstanceError as exc:
                raise UsageError(str(exc)) from None
        if create:
            raise UsageError(
                f"{d.name} has one instance per {d.instance}: say which, "
                f"as {d.name} VAR=VALUE or {d.name}:KEY"
            )
        return None, {}

    @staticmethod
    def _keyed(job: Job, target: Target, create: bool) -> tuple[str, dict[str, str]]:
        """``NAME:KEY``: an existing instance, or a new one whose key gives its variables."""
        d = job.definition
        assert target.instance is not None and d.instance is not None
        key = target.instance
        reason = bad_key(key)
        if reason is not None:
            raise UsageError(f"{d.name}: {reason}")
        existing = job.instances.get(key)
        env = {**(existing.env if existing else env_for_key(d.instance, key)), **target.env}
        try:
            derived = instance_key(d.name, d.instance, {**d.env, **env})
        except InstanceError:
            derived = None
        if create and existing is None and derived != key:
            raise UsageError(
                f"{d.name}:{key}: no such instance, and its key does not give "
                f"{d.instance}; start it as {d.name} VAR=VALUE..."
            )
        return key, env

    def key_of(self, target: Target) -> str | None:
        """The instance key a target names, whether or not that instance exists now."""
        return self.address(self.job(target.name), target, create=False)[0]

    # -- making, preparing and forgetting instances --------------------------------------

    def new_instance(self, job: Job, key: str) -> Runtime:
        name = job.definition.name
        rt = Runtime(job.definition, Instance(job=name, key=key, since=self._clock()))
        job.instances[key] = rt
        self.changed()
        return rt

    def instance_for(
        self, job: Job, env: Mapping[str, str], why: str, complain: Complain
    ) -> Runtime | None:
        """The instance an event or a state would start (made if new); None, said in the
        job's log, when the environment gives no valid key."""
        d = job.definition
        if d.instance is None:
            return job.instances[""]
        try:
            key = instance_key(d.name, d.instance, {**d.env, **env})
        except InstanceError as exc:
            complain(job, f"{why}: {exc}")
            return None
        return job.instances.get(key) or self.new_instance(job, key)

    def prepare_start(self, rt: Runtime, env: Mapping[str, str] | None = None) -> None:
        """A start from rest takes the service's current definition and the environment
        of what starts it (a command's KEY=VALUE, an event's environment)."""
        if rt.inst.state in (State.WAITING, State.FAILED):
            rt.definition = self.jobs[rt.inst.job].definition
            rt.env = dict(env or {})
            self.changed()

    def take_current(self, rt: Runtime) -> None:
        """A restart moves the instance to its service's current definition."""
        job = self.jobs.get(rt.inst.job)
        if job is not None and not job.removed:
            rt.definition = job.definition
            self.changed()

    def forget_if_idle(self, rt: Runtime) -> Job | None:
        """A stopped instance of an instantiated job goes away (Upstart's rule); a failed one
        stays visible until started again or the daemon ends. A service removed from the
        configuration goes away once none of its instances runs: returned, then."""
        job = self.jobs.get(rt.inst.job)
        if job is None or job.instances.get(rt.inst.key) is not rt:
            return None
        if at_rest(rt):
            _let_go(rt)
            for rested in self.on_rest:
                rested(rt)
        if job.removed:
            if all(at_rest(other) for other in job.instances.values()):
                self._drop_job(job)
                return job
            return None
        keyed = job.definition.instance is not None or rt.inst.key != ""
        gone = rt.inst.state is State.WAITING or rt.definition.accept
        if keyed and gone and at_rest(rt):
            del job.instances[rt.inst.key]
            self.changed()
        return None

    def _drop_job(self, job: Job) -> None:
        del self.jobs[job.definition.name]
        self.changed()
        if job.log is not None:
            job.log.close()
        self.rebuild()

    # -- the configuration ---------------------------------------------------------------

    def rebuild(self) -> None:
        """The graph from the jobs there are now (a removed service still running keeps its
        place until it stops); then whoever indexes the jobs does so again."""
        current = {n: j.definition for n, j in self.jobs.items() if not j.removed}
        removed = {n: j.definition for n, j in self.jobs.items() if j.removed}
        self.graph = graph_of({**current, **removed})
        for rebuilt in self.on_rebuilt:
            rebuilt()

    def add_job(self, definition: Definition) -> Job:
        name = definition.name
        job = Job(
            definition, log=ServiceLog(name, definition.log, self._log_dir), since=self._clock()
        )
        self.jobs[name] = job
        self.changed()
        return job

    def log_dir(self) -> str:
        return self._log_dir


def _let_go(rt: Runtime) -> None:
    """What an instance at rest no longer holds: a connection it never handed to a process,
    the fds its service stored (a stop drops them, as does a crash not respawned; a respawn
    or a restart never rests)."""
    if rt.connection is not None:
        with contextlib.suppress(OSError):
            os.close(rt.connection)
        rt.connection = None
    if rt.fd_store is not None:
        rt.fd_store.close()
        rt.fd_store = None


def at_rest(rt: Runtime) -> bool:
    """Nothing of it runs and nothing is under way."""
    return (
        rt.inst.state in (State.WAITING, State.FAILED)
        and rt.inst.goal is Goal.STOP
        and rt.held is None
        and not rt.oneoffs
        and not rt.holders
    )
