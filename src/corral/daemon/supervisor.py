"""The supervisor owns every instance and applies the state machine's decisions.

Happenings (a command, a child's exit, a timer) become inputs; ``feed`` steps the pure
machine and applies the effects it returns. Inputs caused while effects are being applied
(a spawn reporting back, a released event) wait in a FIFO queue until every effect of the
step before them is applied, so the machine always sees the world in order (as dinit's
"propagate, then execute"). Nothing here blocks: spawning is fork+exec, signals are
``killpg``, timers are loop callbacks armed only while an instance waits for something.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.config import Definition
from corral.core.machine import Instance, signal_name, step
from corral.core.states import REST_STATES, Goal, ProcessKind, State
from corral.daemon.logs import Capture, Console, LogLine, ServiceLog
from corral.daemon.reaper import Reaper
from corral.daemon.spawn import Child, SpawnError, process_env, spawn
from corral.errors import NoSuchService, UsageError

#: A waiter's predicate: True/False ends the wait with that outcome, None keeps waiting.
Predicate = Callable[[Instance], bool | None]


@dataclass(eq=False)
class Runtime:
    """One instance as the shell sees it: the machine's record plus pids, timer and waiters."""

    definition: Definition  # the definition this instance was started from
    inst: Instance
    env: dict[str, str] = field(default_factory=dict)  # what its start carried
    children: dict[ProcessKind, Child] = field(default_factory=dict)
    groups: dict[ProcessKind, int] = field(default_factory=dict)  # pgid of each kind's last child
    timer: asyncio.TimerHandle | None = None
    waiters: list[tuple[Predicate, asyncio.Future[bool]]] = field(default_factory=list)

    @property
    def main_pid(self) -> int | None:
        child = self.children.get(ProcessKind.MAIN)
        return child.pid if child is not None else None


@dataclass(eq=False)
class Job:
    """A service name with its current definition and its instances."""

    definition: Definition
    instances: dict[str, Runtime] = field(default_factory=dict)
    log: ServiceLog | None = None


@dataclass(frozen=True)
class Target:
    """What a command addresses: a service, maybe one instance, and env for a start."""

    name: str
    instance: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def settled(inst: Instance) -> bool | None:
    """Wait predicate of start/stop/restart: at rest where the goal points; True if running."""
    if inst.settled:
        return inst.state is State.RUNNING
    if inst.state in REST_STATES and inst.goal is Goal.STOP:
        return False
    return None


def stopped(inst: Instance) -> bool | None:
    return True if inst.state in (State.WAITING, State.FAILED) else None


class Supervisor:
    """All jobs and their instances; the daemon's single owner of processes."""

    def __init__(
        self,
        definitions: Mapping[str, Definition],
        *,
        reaper: Reaper,
        console: Console | None,
        log_dir: str,
        base_env: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._reaper = reaper
        self._console = console
        self._log_dir = log_dir
        self._base_env = dict(base_env)
        self._clock = clock
        self._queue: deque[tuple[Runtime, ins.Input]] = deque()
        self._draining = False
        self.jobs: dict[str, Job] = {}
        self.events: deque[dict[str, object]] = deque(maxlen=1000)
        self.shutting_down = False
        for name, definition in definitions.items():
            job = Job(definition, log=ServiceLog(name, definition.log, log_dir))
            # A service that is not instantiated has its one instance from the start, so that
            # status shows it (goal stop, state waiting) before anything ever started it.
            job.instances[""] = Runtime(definition, Instance(job=name, since=self._clock()))
            self.jobs[name] = job

    # -- the machine ---------------------------------------------------------------------

    def feed(self, runtime: Runtime, event: ins.Input) -> None:
        """Step the machine for one instance, applying effects; re-entrant calls queue."""
        self._queue.append((runtime, event))
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue:
                rt, item = self._queue.popleft()
                before = rt.inst
                rt.inst, effects = step(rt.inst, rt.definition.policy, item, self._clock())
                for effect in effects:
                    self._apply(rt, effect)
                if rt.inst.state is not before.state:
                    self._state_changed(rt, before)
                if rt.waiters:
                    self._check_waiters(rt)
        finally:
            self._draining = False

    def _apply(self, rt: Runtime, effect: fx.Effect) -> None:
        match effect:
            case fx.Spawn(process=kind):
                self._spawn(rt, kind)
            case fx.Signal(process=kind, signal=number):
                self._signal(rt, kind, number)
            case fx.SetTimer(timer=kind, seconds=seconds):
                if rt.timer is not None:
                    rt.timer.cancel()
                rt.timer = self._loop.call_later(seconds, self.feed, rt, ins.TimerFired(kind))
            case fx.CancelTimer():
                if rt.timer is not None:
                    rt.timer.cancel()
                    rt.timer = None
            case fx.Emit(name=name, env=env, hold=hold):
                self.events.append({"time": time.time(), "name": name, "env": env})
                if hold:
                    # Nothing consumes events yet, so every hold is released at once.
                    self.feed(rt, ins.Released())
            case fx.Note(text=text):
                self._say(rt, text)

    def _spawn(self, rt: Runtime, kind: ProcessKind) -> None:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            env = process_env(rt.definition, self._base_env, self._corral_env(rt))
            child = spawn(rt.definition, kind, env, write_end)
        except SpawnError as exc:
            os.close(read_end)
            self.feed(rt, ins.SpawnFailed(kind, str(exc)))
            return
        finally:
            os.close(write_end)
        rt.children[kind] = child
        rt.groups[kind] = child.pgid
        self._reaper.watch(
            child.pid, lambda status, sig: self._exited(rt, kind, child, status, sig)
        )
        Capture(self._loop, read_end, lambda texts: self._output(rt, str(kind), texts))
        self.feed(rt, ins.Spawned(kind))

    def _corral_env(self, rt: Runtime) -> dict[str, str]:
        env = dict(rt.env)
        env["CORRAL_JOB"] = rt.inst.job
        env["CORRAL_INSTANCE"] = rt.inst.key
        if rt.main_pid is not None:
            env["MAINPID"] = str(rt.main_pid)
        return env

    def _exited(
        self, rt: Runtime, kind: ProcessKind, child: Child, status: int | None, sig: int | None
    ) -> None:
        child.popen.returncode = status if status is not None else -(sig or 0)
        if rt.children.get(kind) is child:
            del rt.children[kind]
        self.feed(rt, ins.Exited(kind, status, sig))

    def _signal(self, rt: Runtime, kind: ProcessKind, number: int) -> None:
        pgid = rt.groups.get(kind)
        if pgid is None:
            return
        try:
            os.killpg(pgid, number)
        except (ProcessLookupError, PermissionError):
            pass
        if kind not in rt.children and number == signal.SIGKILL:
            del rt.groups[kind]  # the sweep after the leader's exit: the group is done

    # -- output and messages -------------------------------------------------------------

    def _output(self, rt: Runtime, process: str, texts: list[str]) -> None:
        """Lines a process printed: into the service's log, and to the foreground console."""
        self._record(rt, process, texts, label(rt), texts)

    def _say(self, rt: Runtime, text: str) -> None:
        """corral's own word about an instance, logged beside its output."""
        self._record(rt, "corral", [text], "corral", [f"{label(rt)}: {text}"])

    def _record(
        self, rt: Runtime, process: str, texts: list[str], console_name: str, shown: list[str]
    ) -> None:
        now = time.time()
        job = self.jobs.get(rt.inst.job)
        if job is not None and job.log is not None:
            job.log.add([LogLine(now, rt.inst.job, rt.inst.key, process, t) for t in texts])
        if self._console is not None:
            self._console.lines(console_name, shown, now)

    def _state_changed(self, rt: Runtime, before: Instance) -> None:
        inst = rt.inst
        if inst.state is State.RUNNING:
            pid = rt.main_pid
            self._say(rt, "running" + (f" (pid {pid})" if pid else ""))
        elif inst.state is State.FAILED:
            self._say(rt, f"failed: {inst.error}" if inst.error else "failed")
        elif inst.state is State.WAITING and before.state is not State.WAITING:
            self._say(rt, "stopped")

    # -- waiting -------------------------------------------------------------------------

    def _check_waiters(self, rt: Runtime) -> None:
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

    def until(self, rt: Runtime, predicate: Predicate) -> asyncio.Future[bool]:
        """A future that resolves once ``predicate`` gives an outcome for this instance."""
        future: asyncio.Future[bool] = self._loop.create_future()
        outcome = predicate(rt.inst)
        if outcome is not None:
            future.set_result(outcome)
        else:
            rt.waiters.append((predicate, future))
        return future

    # -- commands ------------------------------------------------------------------------

    def job(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            raise NoSuchService(f"no such service: {name}")
        return job

    def instances(self, target: Target, create: bool = False) -> list[Runtime]:
        """The instances a target addresses; ``create`` makes the one a start needs."""
        job = self.job(target.name)
        key = target.instance or ""
        if key:
            raise UsageError(f"service {target.name} is not instantiated (no instance key)")
        runtime = job.instances.get(key)
        if runtime is None:
            if not create:
                return []
            runtime = Runtime(
                job.definition, Instance(job=target.name, key=key, since=self._clock())
            )
            job.instances[key] = runtime
        if create and target.env:
            runtime.env = dict(target.env)
        return [runtime]

    def set_goal(self, targets: Iterable[Target], goal: Goal) -> list[Runtime]:
        runtimes = self._resolve(targets, create=goal is Goal.START)
        for rt in runtimes:
            if goal is Goal.START and rt.inst.state in (State.WAITING, State.FAILED):
                rt.definition = self.jobs[
                    rt.inst.job
                ].definition  # a fresh start takes the current one
            self.feed(rt, ins.SetGoal(goal))
        return runtimes

    def restart(self, targets: Iterable[Target]) -> list[Runtime]:
        runtimes = self._resolve(targets, create=True)
        for rt in runtimes:
            self.feed(rt, ins.Restart())
        return runtimes

    def reload(self, targets: Iterable[Target]) -> list[str]:
        """Send each main process its reload_signal; returns the names of those not running."""
        idle = []
        for rt in self._resolve(targets, create=False) or []:
            pid = rt.main_pid
            if pid is None:
                idle.append(label(rt))
                continue
            try:
                os.kill(pid, rt.definition.reload_signal)
            except ProcessLookupError:
                idle.append(label(rt))
        return idle

    def _resolve(self, targets: Iterable[Target], create: bool) -> list[Runtime]:
        runtimes: list[Runtime] = []
        targets = list(targets)
        for target in targets:  # check every name before touching anything
            self.job(target.name)
        for target in targets:
            runtimes.extend(self.instances(target, create=create))
        return runtimes

    def status(self, names: Iterable[str] = ()) -> list[dict[str, object]]:
        wanted = list(names) or list(self.jobs)
        for name in wanted:
            self.job(name)
        rows = []
        offset = time.time() - self._clock()
        for name in wanted:
            job = self.jobs[name]
            for rt in job.instances.values():
                rows.append(_status_row(rt, offset, stale=rt.definition is not job.definition))
        return rows

    def log_of(self, name: str) -> ServiceLog:
        job = self.job(name)
        assert job.log is not None
        return job.log

    def startup(self) -> None:
        """Start every autostart service, as ``corral up`` does."""
        self.events.append({"time": time.time(), "name": "startup", "env": {}})
        autostart = [Target(name) for name, job in self.jobs.items() if job.definition.autostart]
        self.set_goal(autostart, Goal.START)

    async def shutdown(self) -> None:
        """Stop every instance and wait until all are down (``corral down``, SIGTERM)."""
        self.shutting_down = True
        runtimes = [rt for job in self.jobs.values() for rt in job.instances.values()]
        for rt in runtimes:
            self.feed(rt, ins.SetGoal(Goal.STOP))
        await asyncio.gather(*(self.until(rt, stopped) for rt in runtimes))
        for job in self.jobs.values():
            if job.log is not None:
                job.log.close()


def label(rt: Runtime) -> str:
    """``name`` or ``name:instance``, as users address it."""
    return f"{rt.inst.job}:{rt.inst.key}" if rt.inst.key else rt.inst.job


def _status_row(rt: Runtime, offset: float, stale: bool) -> dict[str, object]:
    inst = rt.inst
    return {
        "name": inst.job,
        "instance": inst.key,
        "goal": str(inst.goal),
        "state": str(inst.state),
        "pid": rt.main_pid,
        "ready": inst.ready and inst.state is State.RUNNING,
        "restarts": inst.restarts,
        "exit_status": inst.exit_status,
        "exit_signal": signal_name(inst.exit_signal) if inst.exit_signal is not None else None,
        "since": round(inst.since + offset, 3),
        "stale": stale,
        "description": rt.definition.description,
        "error": inst.error or None,
    }
