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
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from corral.control.protocol import StatusRow
from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.config import (
    POLICY_FIELDS,
    Command,
    Definition,
    changed_fields,
    graph_of,
    keys_of,
)
from corral.core.expr import Event, Progress
from corral.core.gates import hold_waits_on, start_gate, stop_gate
from corral.core.graph import Edge, Graph
from corral.core.instances import InstanceError, bad_key, env_for_key, instance_key
from corral.core.machine import Instance, respawns_at_once, signal_name, step
from corral.core.states import Goal, ProcessKind, ServiceType, State
from corral.daemon.activation import Activation, Changes
from corral.daemon.logs import Capture, Console, LogLine, ServiceLog
from corral.daemon.oneoff import OneOff, Outcome
from corral.daemon.readiness import NotifyChannel, PidFileWatch, ProbeRunner, ReadyPipe
from corral.daemon.reaper import Reaper
from corral.daemon.runtime import (
    Job,
    Predicate,
    Readiness,
    Runtime,
    Target,
    label,
    settled,
    stopped,
)
from corral.daemon.spawn import Child, SpawnError, process_env, spawn
from corral.daemon.tree import Cgroups, kill_all, scan_tree
from corral.errors import NoSuchService, OperationFailed, UsageError

#: Events kept for ``corral events`` (the stream itself has no limit).
EVENT_HISTORY = 1000


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
        cgroups: Cgroups | None = None,
        wakeup_fd: int | None = None,
        graph: Graph | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._reaper = reaper
        self._console = console
        self._log_dir = log_dir
        self._base_env = dict(base_env)
        self._clock = clock
        self._offset = time.time() - clock()  # see _wall_offset
        self._cgroups = cgroups
        self._wakeup_fd = wakeup_fd  # the signal wakeup fd, which a ready_fd may displace
        self._queue: deque[tuple[Runtime, ins.Input]] = deque()
        self._checks: dict[Runtime, None] = {}  # instances whose hold to look at, in order
        self._idle: dict[Runtime, None] = {}  # came to rest: maybe something to forget
        self._draining = False
        # Bumped wherever anything a status row shows changes, or which rows there are:
        # while it stands, a status of every service is the list kept last time
        # (``status``), which spares a cold daemon touching a thousand instances.
        self._shown_epoch = 0
        self._shown_kept: tuple[int, float, list[StatusRow]] | None = None
        self.jobs: dict[str, Job] = {}
        self.graph: Graph = graph if graph is not None else graph_of(definitions)
        #: Each service and those whose holds its changes may decide (from ``graph``).
        self._related: dict[str, tuple[str, ...]] = {}
        self.events: deque[dict[str, object]] = deque(maxlen=EVENT_HISTORY)
        self.event_followers: dict[Callable[[dict[str, object]], None], None] = {}
        self.shutting_down = False
        for name, definition in definitions.items():
            job = Job(definition, log=ServiceLog(name, definition.log, log_dir), since=clock())
            if definition.instance is None:
                # A service that is not instantiated has its one instance from the start, so
                # status shows it (goal stop, state waiting) before anything started it.
                self._new_instance(job, "")
            self.jobs[name] = job
        self.activation = Activation(self)

    # -- the machine ---------------------------------------------------------------------

    def feed(self, runtime: Runtime, event: ins.Input) -> None:
        """Step the machine for one instance, applying effects; re-entrant calls queue."""
        self.feed_all([(runtime, event)])

    def feed_all(self, items: Iterable[tuple[Runtime, ins.Input]]) -> None:
        """Queue inputs and apply them in order. Holds are looked at only once no input is
        left, so a gate never decides on a world that queued inputs are about to change
        (a batch of stops, say, is all seen before any stop gate opens)."""
        self._queue.extend(items)
        if self._draining:
            return
        self._draining = True
        activation = self.activation
        try:
            while self._queue or self._checks or activation.dirty or self._idle:
                if not self._queue:
                    self._when_quiet()
                    continue
                rt, item = self._queue.popleft()
                before = rt.inst
                rt.inst, effects = step(rt.inst, rt.definition.policy, item, self._clock())
                self._shown_epoch += 1
                for effect in effects:
                    self._apply(rt, effect)
                after = rt.inst
                if after.state is not before.state:
                    self._state_changed(rt, before)
                if (
                    after.state is not before.state
                    or after.goal is not before.goal
                    or after.restarting != before.restarting
                    or after.ready != before.ready
                ):
                    self._neighbours_changed(rt)
                    activation.changed(rt, before)
                if rt.waiters:
                    self._check_waiters(rt)
        finally:
            self._draining = False

    def _when_quiet(self) -> None:
        """One piece of the work that must see a settled world: a hold, a ``while``, or
        forgetting a stopped instance."""
        if self._checks:
            rt = next(iter(self._checks))
            del self._checks[rt]
            self._check_hold(rt)
        elif self.activation.dirty:
            name = next(iter(self.activation.dirty))
            del self.activation.dirty[name]
            self._apply_changes(self.activation.reconcile(name))
        else:
            rt = next(iter(self._idle))
            del self._idle[rt]
            self._forget_if_idle(rt)

    def _apply_changes(self, changes: Changes) -> None:
        starts, stops = changes
        if not starts and not stops:
            return  # the usual case: no condition mentions the event
        for rt, env in starts:
            self._prepare_start(rt, env)
        self.feed_all(
            [(rt, ins.SetGoal(Goal.START)) for rt, _ in starts]
            + [(rt, ins.SetGoal(Goal.STOP)) for rt in stops]
        )

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
                starts, stops = self.emit(name, env)
                if hold:
                    rt.held = name
                    self._hold_for(rt, [*(b for b, _ in starts), *stops])
                    if name == "starting":
                        self._pull_in(rt)
                    else:
                        self._push_down(rt)
                    self._checks[rt] = None  # looked at once the pulls are applied
            case fx.Note(text=text):
                self._say(rt, text)

    # -- dependencies: Upstart's holds on starting/stopping -------------------------------

    def _view(self, name: str) -> Instance | None:
        job = self.jobs.get(name)
        if job is None:
            return None
        rt = job.instances.get("")
        return rt.inst if rt is not None else None

    def _pull_in(self, rt: Runtime) -> None:
        """A start pulls in what it requires or wants, each once however many ask."""
        name = rt.inst.job
        for need in (*self.graph.needs(name, Edge.REQUIRES), *self.graph.needs(name, Edge.WANTS)):
            for dep in self.jobs[need].instances.values():
                if dep.inst.goal is Goal.STOP:
                    self._prepare_start(dep)
                    self.feed(dep, ins.SetGoal(Goal.START))

    def _push_down(self, rt: Runtime) -> None:
        """A stop takes down what requires it first; a restart of it restarts them too."""
        inst = rt.inst
        coming_back = inst.goal is Goal.START
        for name in self.graph.dependents_of(inst.job, Edge.REQUIRES):
            for dep in self.jobs[name].instances.values():
                if dep.inst.goal is not Goal.START:
                    continue
                if coming_back:
                    self.feed(dep, ins.Restart())
                elif inst.give_up and dep.inst.state is State.STARTING:
                    why = f": {inst.error}" if inst.error else ""
                    self.feed(dep, ins.RequirementFailed(f"requirement {inst.job} failed{why}"))
                else:
                    self.feed(dep, ins.SetGoal(Goal.STOP))

    def _hold_for(self, rt: Runtime, blockers: list[Runtime]) -> None:
        """The held event started or stopped these: it waits until they have settled."""
        rt.blockers = [b for b in blockers if b is not rt]
        for blocker in rt.blockers:
            blocker.holders[rt] = None

    def _unhold(self, rt: Runtime) -> None:
        rt.held = None
        for blocker in rt.blockers:
            blocker.holders.pop(rt, None)
        rt.blockers = []

    def _blocker_done(self, holder: Runtime, blocker: Runtime) -> bool:
        """Settled, or itself waiting for the holder (a wait that would never end)."""
        return settled(blocker.inst) is not None or self._waits_for(blocker, holder, set())

    def _waits_for(self, rt: Runtime, target: Runtime, seen: set[Runtime]) -> bool:
        if rt.held is None or rt in seen:
            return False
        seen.add(rt)
        if hold_waits_on(rt.held, rt.inst.job, target.inst.job, self.graph):
            return True
        return any(b is target or self._waits_for(b, target, seen) for b in rt.blockers)

    def _check_hold(self, rt: Runtime) -> None:
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
            if starting:
                verdict = start_gate(name, self.graph, self._view)
                if isinstance(verdict, str):
                    self.feed(rt, ins.RequirementFailed(verdict))  # then released: goal is stop
                    self._checks[rt] = None
                    return
                if verdict is None:
                    return
            elif not stop_gate(name, self.graph, self._view):
                return
        self._unhold(rt)
        self.feed(rt, ins.Released())

    def _neighbours_changed(self, rt: Runtime) -> None:
        """Look again at the holds this instance's change may decide."""
        for holder in rt.holders:
            self._checks[holder] = None
        name = rt.inst.job
        related = self._related.get(name)
        if related is None:
            related = (name, *self.graph.dependents_of(name), *self.graph.before(name))
            self._related[name] = related
        for other in related:
            job = self.jobs.get(other)
            if job is None:
                continue
            for candidate in job.instances.values():
                if candidate.held is not None:
                    self._checks[candidate] = None

    # -- processes -----------------------------------------------------------------------

    def _spawn(self, rt: Runtime, kind: ProcessKind) -> None:
        command = rt.definition.command(kind)
        if command is None:
            self.feed(rt, ins.SpawnFailed(kind, f"no command for {kind}"))
            return
        launched, rt.launched = (rt.launched, None) if kind is ProcessKind.MAIN else (None, None)
        if launched is None:
            try:
                launched = self._launch(rt, kind, command)
            except SpawnError as exc:
                self.feed(rt, ins.SpawnFailed(kind, str(exc)))
                return
        child, read_end = launched
        if self._cgroups is not None:  # after the sweep of the last one's cgroup, if any
            self._cgroups.place(child.pid, label(rt))
        rt.children[kind] = child
        rt.groups[kind] = child.pgid
        self._shown_epoch += 1
        output = Capture(
            self._loop,
            read_end,
            lambda texts: self._output(rt, str(kind), texts),
            on_close=lambda: self._reaper.poll(child.pid),
        )

        def exited(status: int | None, sig: int | None) -> None:
            output.drain()  # its last words are logged before its exit is
            self._exited(rt, kind, child, status, sig)

        self._reaper.watch(child.pid, exited)
        self.feed(rt, ins.Spawned(kind))
        simple = kind is ProcessKind.MAIN and rt.definition.type is ServiceType.SIMPLE
        if simple and rt.definition.ready is not None and rt.definition.ready_fd is None:
            self._protocol_ready(rt)  # a simple service's probe starts at once

    def _launch(self, rt: Runtime, kind: ProcessKind, command: Command) -> tuple[Child, int]:
        """Fork and exec one process of an instance (with its readiness channel, for the
        main one); the child and the read end of its output pipe. Raises SpawnError."""
        definition = rt.definition
        extra = self._corral_env(rt)
        extra_fd = None
        if kind is ProcessKind.MAIN:
            if rt.readiness is not None:
                rt.readiness.close()
            rt.readiness = self._readiness_for(rt)
            if rt.readiness.notify is not None:
                extra["NOTIFY_SOCKET"] = rt.readiness.notify.address
            if rt.readiness.pipe is not None and definition.ready_fd is not None:
                extra_fd = (definition.ready_fd, rt.readiness.pipe.write_fd)
        try:
            return self._start_child(
                rt, command, extra, main_script=kind is ProcessKind.MAIN and definition.shell_script,
                extra_fd=extra_fd,
            )  # fmt: skip
        finally:
            if rt.readiness is not None and rt.readiness.pipe is not None:
                rt.readiness.pipe.close_write_end()

    def _start_child(
        self,
        rt: Runtime,
        command: Command,
        extra_env: Mapping[str, str],
        *,
        main_script: bool = False,
        extra_fd: tuple[int, int] | None = None,
    ) -> tuple[Child, int]:
        """Fork and exec one process of an instance. Returns the child and the read end of
        its output pipe; raises SpawnError."""
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            env = process_env(rt.definition, self._base_env, extra_env)
            child = spawn(
                rt.definition,
                command,
                env,
                write_end,
                main_script=main_script,
                extra_fd=extra_fd,
                wakeup_fd=self._wakeup_fd,
            )
        except SpawnError:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return child, read_end

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
        if rt.children.get(kind) is not child:
            return  # a launcher that handed over its main role (MAINPID=) is no one now
        del rt.children[kind]
        self._shown_epoch += 1
        if kind is ProcessKind.MAIN and rt.readiness is not None:
            forking = rt.definition.type is ServiceType.FORKING
            if forking and status == 0 and rt.inst.state is State.SPAWNED:
                self._watch_pid_file(rt)
            else:
                rt.readiness.close()
                rt.readiness = None
        exit_input = ins.Exited(kind, status, sig)
        if self._respawns_early(rt, exit_input):
            command = rt.definition.command(ProcessKind.MAIN)
            if command is not None:
                with contextlib.suppress(SpawnError):  # the walk's own spawn will say why
                    rt.launched = self._launch(rt, ProcessKind.MAIN, command)
        self.feed(rt, exit_input)
        if rt.launched is not None:
            self._discard_launched(rt)

    def _respawns_early(self, rt: Runtime, exited: ins.Exited) -> bool:
        """Whether the next main process may start before the machine walks to it, as in a
        supervisor without holds: the machine says its walk goes straight there (no delay,
        no hook), nothing can hold or turn that walk (no dependency on or of the service, no
        ``while`` or ``stop_on`` of its own, nobody listening for ``starting``/``stopping``),
        and its exec is its readiness. The walk then runs in this same turn, so nothing
        outside sees a difference but the new process's earlier exec: a quarter of a
        millisecond of cold Python sooner, at a thousand services (docs/states.md)."""
        definition = rt.definition
        name = rt.inst.job
        return (
            not self._draining
            and not rt.renew
            and definition.policy.ready_on_spawn
            and definition.stop_on is None
            and definition.while_ is None
            and not self.activation.holds_heard
            and not self.graph.before(name)
            and not self.graph.dependents_of(name)
            and respawns_at_once(rt.inst, definition.policy, exited, self._clock())
        )

    def _discard_launched(self, rt: Runtime) -> None:
        """A guard: the walk did not take the process started early (``respawns_at_once``
        and ``_respawns_early`` say it always does), so it goes before anyone relies on it."""
        assert rt.launched is not None
        child, read_end = rt.launched
        rt.launched = None
        self._reaper.watch(child.pid, lambda status, sig: None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pgid, signal.SIGKILL)
        os.close(read_end)
        self._say(rt, f"killed pid {child.pid}, started early for a respawn that did not come")

    def _signal(self, rt: Runtime, kind: ProcessKind, number: int) -> None:
        groups = {rt.groups[kind]} if kind in rt.groups else set()
        child = rt.children.get(kind)
        if child is not None:
            groups.add(child.pgid)
        for pgid in groups:
            try:
                os.killpg(pgid, number)
            except (ProcessLookupError, PermissionError):
                pass
        if child is not None and not child.ours:
            try:  # an adopted main may lead no group of its own
                os.kill(child.pid, number)
            except (ProcessLookupError, PermissionError):
                pass
        if kind not in rt.children and number == signal.SIGKILL:
            rt.groups.pop(kind, None)  # the sweep after the leader's exit: the group is done
            if kind is ProcessKind.MAIN and self._cgroups is not None:
                self._cgroups.kill_soon(label(rt))

    # -- readiness -----------------------------------------------------------------------

    def _readiness_for(self, rt: Runtime) -> Readiness:
        definition = rt.definition
        readiness = Readiness()
        if definition.type is ServiceType.NOTIFY:
            readiness.notify = NotifyChannel(
                self._loop, lambda fields, pid: self._notified(rt, fields, pid)
            )
        elif definition.ready_fd is not None:
            readiness.pipe = ReadyPipe(self._loop, lambda: self._protocol_ready(rt))
        return readiness

    def _notified(self, rt: Runtime, fields: dict[str, str], pid: int | None) -> None:
        """A datagram on the instance's NOTIFY_SOCKET."""
        if pid is not None and not self._belongs(rt, pid):
            self._say(rt, f"ignored a notify message from pid {pid}, not of this service")
            return
        if "STATUS" in fields:
            rt.status_text = fields["STATUS"]
            self._shown_epoch += 1
        if "MAINPID" in fields and fields["MAINPID"].isdigit():
            self._adopt_main(rt, int(fields["MAINPID"]))
        if fields.get("STOPPING") == "1":
            self._say(rt, "the service says it is stopping")
        usec = fields.get("EXTEND_TIMEOUT_USEC", "")
        if usec.isdigit():
            self.feed(rt, ins.ExtendTimeout(int(usec) / 1e6))
        if fields.get("READY") == "1" and rt.inst.state is State.SPAWNED:
            self._protocol_ready(rt)

    def _belongs(self, rt: Runtime, pid: int) -> bool:
        """Whether a process is one of the instance's: a child, in one of its process
        groups, or in its cgroup (systemd's NotifyAccess=all, bounded to the service)."""
        if any(child.pid == pid for child in rt.children.values()):
            return True
        try:
            if os.getpgid(pid) in set(rt.groups.values()):
                return True
        except ProcessLookupError:
            return False
        return self._cgroups is not None and pid in self._cgroups.pids(label(rt))

    def _protocol_ready(self, rt: Runtime) -> None:
        """The readiness protocol said yes; a probe, if any, must pass too."""
        probe = rt.definition.ready
        readiness = rt.readiness
        if probe is None or readiness is None:
            self.feed(rt, ins.Ready())
            return
        if readiness.probe is not None:
            return
        readiness.probe = ProbeRunner(
            self._loop,
            probe,
            lambda command, timeout, done: self._run_probe(rt, command, timeout, done),
            passed=lambda: self.feed(rt, ins.Ready()),
            gave_up=lambda reason: self.feed(rt, ins.NotReady(reason)),
        )

    def _run_probe(
        self, rt: Runtime, command: Command, timeout: float, done: Callable[[bool, str], None]
    ) -> Callable[[], None]:
        def finished(outcome: Outcome) -> None:
            last = outcome.output.strip().splitlines()[-1:] or [""]
            if outcome.timed_out:
                done(False, f"check timed out after {timeout:g}s")
            else:
                done(outcome.ok, f"check exited with status {outcome.status} {last[0]}".strip())

        try:
            oneoff = self._run_oneoff(rt, command, {}, timeout, finished)
        except SpawnError as exc:
            self._loop.call_soon(done, False, str(exc))
            return lambda: None
        return oneoff.cancel

    def _watch_pid_file(self, rt: Runtime) -> None:
        assert rt.readiness is not None and rt.definition.pid_file is not None
        path = rt.definition.pid_file
        if not os.path.isabs(path):
            path = os.path.join(os.path.expanduser(rt.definition.cwd or "."), path)

        def found(pid: int) -> None:
            if rt.readiness is not None:
                rt.readiness.pid_watch = None
            if rt.inst.state is State.SPAWNED and rt.inst.launched:
                self._adopt_main(rt, pid)
                self.feed(rt, ins.Adopted())
                self._protocol_ready(rt)

        rt.readiness.pid_watch = PidFileWatch(self._loop, path, found)

    def _adopt_main(self, rt: Runtime, pid: int) -> None:
        """``pid`` is the main process from now on (a pid file, or ``MAINPID=``)."""
        current = rt.children.get(ProcessKind.MAIN)
        if current is not None and current.pid == pid:
            return
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return
        child = Child(pid, pgid, ours=False)
        rt.children[ProcessKind.MAIN] = child
        self._shown_epoch += 1
        self._reaper.adopt(
            pid, lambda status, sig: self._exited(rt, ProcessKind.MAIN, child, status, sig)
        )
        # A launcher replaced here stays watched (so it is reaped) but is no longer the main.
        self._say(rt, f"main process is now pid {pid}")

    # -- output and messages -------------------------------------------------------------

    def _output(self, rt: Runtime, process: str, texts: list[str]) -> None:
        """Lines a process printed: into the service's log, and to the foreground console."""
        self._record(rt.inst.job, rt.inst.key, process, texts, label(rt), texts)
        readiness = rt.readiness
        if readiness is not None and readiness.probe is not None and process == "main":
            readiness.probe.lines(texts)

    def _say(self, rt: Runtime, text: str) -> None:
        """corral's own word about an instance, logged beside its output."""
        self._record(rt.inst.job, rt.inst.key, "corral", [text], "corral", [f"{label(rt)}: {text}"])

    def _say_corral(self, text: str) -> None:
        if self._console is not None:
            self._console.lines("corral", [text], time.time())

    def say_job(self, job: Job, text: str) -> None:
        """corral's own word about a service as a whole (an event it could not act on)."""
        name = job.definition.name
        self._record(name, "", "corral", [text], "corral", [f"{name}: {text}"])

    def _record(
        self, name: str, key: str, process: str, texts: list[str], console: str, shown: list[str]
    ) -> None:
        now = time.time()
        job = self.jobs.get(name)
        if job is not None and job.log is not None:
            job.log.add([LogLine(now, name, key, process, t) for t in texts])
        if self._console is not None:
            self._console.lines(console, shown, now)

    def _state_changed(self, rt: Runtime, before: Instance) -> None:
        inst = rt.inst
        if before.state is State.SPAWNED and rt.readiness is not None:
            rt.readiness.stop_waiting()
        if inst.state in (State.WAITING, State.FAILED) and rt.readiness is not None:
            rt.readiness.close()
            rt.readiness = None
        if inst.state is State.RUNNING:
            pid = rt.main_pid
            self._say(rt, "running" + (f" (pid {pid})" if pid else ""))
        elif inst.state is State.FAILED:
            self._say(rt, f"failed: {inst.error}" if inst.error else "failed")
        elif inst.state is State.WAITING and before.state is not State.WAITING:
            self._say(rt, "stopped")
        if inst.state is State.STARTING:
            rt.stop_progress = Progress()  # stop_on counts from this start on
            if rt.renew:
                rt.renew = False
                self._take_current(rt)
        if inst.state in (State.WAITING, State.FAILED):
            self._idle[rt] = None  # maybe an instance or a removed service to forget
            rt.status_text = ""
            self._shown_epoch += 1
            if self._cgroups is not None and not rt.oneoffs:
                self._cgroups.remove_soon(label(rt))

    # -- one-off commands: actions and exec probes ---------------------------------------

    def _run_oneoff(
        self,
        rt: Runtime,
        command: Command,
        extra_env: Mapping[str, str],
        timeout: float,
        done: Callable[[Outcome], None],
    ) -> OneOff:
        env = self._corral_env(rt)
        env.update(extra_env)
        child, read_end = self._start_child(rt, command, env)
        if self._cgroups is not None:
            self._cgroups.place(child.pid, label(rt))

        def finished(outcome: Outcome) -> None:
            rt.oneoffs.pop(oneoff, None)
            done(outcome)

        oneoff = OneOff(self._loop, self._reaper, child, read_end, timeout, finished)
        rt.oneoffs[oneoff] = None
        return oneoff

    async def action(
        self, target: Target, action: str, args: list[str], chain: list[str]
    ) -> Outcome:
        """Run one of a service's actions; refuse a call that would close a cycle."""
        runtimes = self.instances(target)
        if not runtimes:
            raise OperationFailed(f"{target.name} has no instance to run {action} for")
        rt = runtimes[0]
        definition = rt.definition
        spec = definition.actions.get(action)
        if spec is None:
            known = ", ".join(sorted(definition.actions)) or "none"
            raise UsageError(f"{rt.inst.job} has no action {action!r} (actions: {known})")
        called = [link.partition("/")[0] for link in chain]
        here = f"{label(rt)}/{action}"
        if label(rt) in called or rt.inst.job in called:
            path = " -> ".join([*chain, here])
            raise OperationFailed(f"action call cycle refused: {path}")
        command = spec.command
        if command.script is not None and args:
            command = Command(argv=("/bin/sh", "-c", command.script, action, *args))
        elif command.argv:
            command = Command(argv=(*command.argv, *args))
        future: asyncio.Future[Outcome] = self._loop.create_future()
        extra = {"CORRAL_CALL_CHAIN": ",".join([*chain, here]), "CORRAL_ACTION": action}
        try:
            oneoff = self._run_oneoff(rt, command, extra, spec.timeout, future.set_result)
        except SpawnError as exc:
            raise OperationFailed(f"{here}: could not start: {exc}") from None
        try:
            outcome = await future
        finally:
            if not future.done():
                oneoff.cancel()
        self._say(rt, f"action {action}: " + _describe_outcome(outcome, spec.timeout))
        return outcome

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
        key, env = self._address(job, target, create and not every)
        if key is None:
            return list(job.instances.values())
        rt = job.instances.get(key)
        if rt is None:
            if not create:
                return []
            rt = self._new_instance(job, key)
        if create:
            self._prepare_start(rt, env)
        return [rt]

    def _address(self, job: Job, target: Target, create: bool) -> tuple[str | None, dict[str, str]]:
        """The instance key a target names (None: every instance) and its environment."""
        d = job.definition
        if d.instance is None:
            if target.instance:
                raise UsageError(f"service {d.name} is not instantiated; address it as {d.name}")
            return "", dict(target.env)
        if target.instance is not None:
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

    def key_of(self, target: Target) -> str | None:
        """The instance key a target names, whether or not that instance exists now."""
        return self._address(self.job(target.name), target, create=False)[0]

    def _new_instance(self, job: Job, key: str) -> Runtime:
        name = job.definition.name
        rt = Runtime(job.definition, Instance(job=name, key=key, since=self._clock()))
        job.instances[key] = rt
        self._shown_epoch += 1
        return rt

    def instance_for(self, job: Job, env: Mapping[str, str], why: str) -> Runtime | None:
        """The instance an event or a state would start (made if new); None, said in the
        job's log, when the environment gives no valid key."""
        d = job.definition
        if d.instance is None:
            return job.instances[""]
        try:
            key = instance_key(d.name, d.instance, {**d.env, **env})
        except InstanceError as exc:
            self.say_job(job, f"{why}: {exc}")
            return None
        return job.instances.get(key) or self._new_instance(job, key)

    def _prepare_start(self, rt: Runtime, env: Mapping[str, str] | None = None) -> None:
        """A start from rest takes the service's current definition and the environment
        of what starts it (a command's KEY=VALUE, an event's environment)."""
        if rt.inst.state in (State.WAITING, State.FAILED):
            rt.definition = self.jobs[rt.inst.job].definition
            rt.env = dict(env or {})
            self._shown_epoch += 1

    def _forget_if_idle(self, rt: Runtime) -> None:
        """A stopped instance of an instantiated job goes away (Upstart's rule); a failed one
        stays visible until started again or the daemon ends. A service removed from the
        configuration goes away once none of its instances runs."""
        job = self.jobs.get(rt.inst.job)
        if job is None or job.instances.get(rt.inst.key) is not rt:
            return
        if job.removed:
            if all(_at_rest(other) for other in job.instances.values()):
                self._drop_job(job)
            return
        keyed = job.definition.instance is not None or rt.inst.key != ""
        if keyed and rt.inst.state is State.WAITING and _at_rest(rt):
            del job.instances[rt.inst.key]
            self._shown_epoch += 1

    def _drop_job(self, job: Job) -> None:
        name = job.definition.name
        del self.jobs[name]
        self._shown_epoch += 1
        if job.log is not None:
            job.log.close()
        self._say_corral(f"{name}: removed from the configuration, and now stopped: gone")
        self._rebuild_indexes()

    def _rebuild_indexes(self) -> None:
        """The graph and the condition index, from the jobs there are now (a removed
        service still running keeps its place until it stops)."""
        current = {n: j.definition for n, j in self.jobs.items() if not j.removed}
        removed = {n: j.definition for n, j in self.jobs.items() if j.removed}
        self.graph = graph_of({**current, **removed})
        self._related.clear()
        self.activation.index(self.jobs)

    def _take_current(self, rt: Runtime) -> None:
        job = self.jobs.get(rt.inst.job)
        if job is not None and not job.removed:
            rt.definition = job.definition
            self._shown_epoch += 1

    def reconfigure(self, definitions: Mapping[str, Definition]) -> dict[str, list[Any]]:
        """Make ``definitions`` current (a reload that loaded cleanly). Running instances keep
        the definition they started with, except where only policy keys changed; new
        services that autostart are started; removed ones stay until they stop."""
        summary: dict[str, list[Any]] = {"added": [], "changed": [], "applied": [], "removed": []}
        clock = self._clock()
        self._shown_epoch += 1  # services, definitions and staleness below
        for name, new in definitions.items():
            job = self.jobs.get(name)
            if job is None:
                job = Job(new, log=ServiceLog(name, new.log, self._log_dir), since=clock)
                self.jobs[name] = job
                summary["added"].append(name)
            elif new != job.definition or job.removed:
                fields = changed_fields(job.definition, new)
                if new.log != job.definition.log and job.log is not None:
                    job.log.reconfigure(new.log, self._log_dir)
                job.definition, job.removed = new, False
                kind = "applied" if fields <= POLICY_FIELDS else "changed"
                summary[kind].append({"name": name, "keys": keys_of(fields)})
                self.activation.forget(name)
            else:
                continue
            if new.instance is None and "" not in job.instances:
                self._new_instance(job, "")
            for rt in job.instances.values():
                if _at_rest(rt) or changed_fields(rt.definition, new) <= POLICY_FIELDS:
                    rt.definition = new  # nothing of it runs that the change would alter
                self._idle[rt] = None
        for name, job in self.jobs.items():
            if name not in definitions and not job.removed:
                job.removed = True
                summary["removed"].append(name)
                self._idle.update(dict.fromkeys(job.instances.values()))
        self._rebuild_indexes()
        added = [Target(name) for name in summary["added"] if self.jobs[name].definition.autostart]
        self.set_goal(added, Goal.START)  # also forgets what the loop above marked idle
        return summary

    def emit(self, name: str, env: Mapping[str, str]) -> Changes:
        """An event: recorded, shown to followers, and fed to every condition."""
        record: dict[str, object] = {"time": time.time(), "name": name, "env": dict(env)}
        self.events.append(record)
        for follower in list(self.event_followers):
            follower(record)
        changes = self.activation.event(Event(name, tuple(env.items())))
        self._apply_changes(changes)
        return changes

    def set_goal(self, targets: Iterable[Target], goal: Goal) -> list[Runtime]:
        runtimes = self._resolve(targets, create=goal is Goal.START)
        self.feed_all((rt, ins.SetGoal(goal)) for rt in runtimes)
        return runtimes

    def restart(self, targets: Iterable[Target]) -> list[Runtime]:
        runtimes = self._resolve(targets, create=True, every=True)
        for rt in runtimes:
            rt.renew = True  # a restart moves the instance to the current definition
        self.feed_all((rt, ins.Restart()) for rt in runtimes)
        return runtimes

    def destroy(self, targets: Iterable[Target]) -> list[Runtime]:
        """SIGKILL every process of the targets and of everything that requires or wants
        them (transitively), wherever those processes went; their goals become stop."""
        names: list[str] = []
        for target in targets:
            for name in self.graph.closure_of_dependents(self.job(target.name).definition.name):
                if name not in names:
                    names.append(name)
        runtimes = [rt for name in names for rt in self.jobs[name].instances.values()]
        doomed: set[int] = set()
        for rt in runtimes:
            if self._cgroups is not None:
                self._cgroups.kill(label(rt))
            marks = {
                "CORRAL_JOB": rt.inst.job,
                "CORRAL_INSTANCE": rt.inst.key,
                "CORRAL_SOCKET": self._base_env.get("CORRAL_SOCKET", ""),
            }
            pids = [child.pid for child in rt.children.values()]
            doomed |= scan_tree(pids, rt.groups.values(), marks)
            for oneoff in list(rt.oneoffs):
                oneoff.kill()
        kill_all(doomed)
        for rt in runtimes:
            self._say(rt, "destroyed: every process SIGKILLed")
        self.feed_all((rt, ins.Destroy()) for rt in runtimes)
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

    def _resolve(
        self, targets: Iterable[Target], create: bool, every: bool = False
    ) -> list[Runtime]:
        runtimes: dict[Runtime, None] = {}  # in order, each once (a dict: 10000 targets)
        targets = list(targets)
        for target in targets:  # check every address before touching anything
            self._address(self.job(target.name, starting=create), target, create and not every)
        for target in targets:
            runtimes.update(dict.fromkeys(self.instances(target, create=create, every=every)))
        return list(runtimes)

    def status(self, targets: Iterable[Target] = ()) -> list[StatusRow]:
        """Rows for each target (a bare name of an instantiated service: every instance),
        or for every service; a service with no instance shows one row at rest."""
        offset = self._wall_offset()
        chosen: dict[Runtime, None] = {}
        targets = list(targets)
        if not targets:  # every service: no duplicates to weed out
            kept = self._shown_kept
            if kept is not None and kept[0] == self._shown_epoch and kept[1] == offset:
                if CHECK_KEPT_STATUS:
                    self._check_kept(kept[2], offset)
                return kept[2]
            rows = self._all_rows(offset)
            self._shown_kept = (self._shown_epoch, offset, rows)
            return rows
        for target in targets:
            job = self.job(target.name)
            if target.instance is None and not target.env:  # a bare name: every instance
                chosen.update(dict.fromkeys(self._rows_of(job)))
                continue
            key, _ = self._address(job, target, create=False)
            if key in job.instances:
                chosen[job.instances[key]] = None
        jobs = self.jobs
        return [
            _status_row(rt, offset, stale=rt.definition is not jobs[rt.inst.job].definition)
            for rt in chosen
        ]

    def _all_rows(self, offset: float) -> list[StatusRow]:
        return [
            _status_row(rt, offset, rt.definition is not job.definition)
            for job in self.jobs.values()
            for rt in self._rows_of(job)
        ]

    def _check_kept(self, kept: list[StatusRow], offset: float) -> None:
        """``CORRAL_CHECK_STATUS=1`` (the system tests): a kept status must be what a fresh
        one shows, or a change was made without bumping the epoch."""
        fresh = self._all_rows(offset)
        if fresh != kept:
            wrong = [str(new) for old, new in zip(kept, fresh, strict=False) if old != new]
            raise OperationFailed(f"kept status out of date: {wrong or 'other rows'}")

    def _wall_offset(self) -> float:
        """The wall clock less the loop's, for ``since``; the same value while it stays within
        a millisecond (two readings never quite agree), so remembered rows stay valid until
        the wall clock is set."""
        offset = time.time() - self._clock()
        if abs(offset - self._offset) > 0.001:
            self._offset = offset
        return self._offset

    def _rows_of(self, job: Job) -> Iterable[Runtime]:
        """Every instance of a service, or, for an instantiated one with none now, a
        placeholder at rest for its row."""
        if job.instances:
            return job.instances.values()
        return [Runtime(job.definition, Instance(job=job.definition.name, since=job.since))]

    def log_of(self, name: str) -> ServiceLog:
        job = self.job(name)
        assert job.log is not None
        return job.log

    def startup(self) -> None:
        """Start every autostart service, as ``corral up`` does."""
        self.emit("startup", {})
        autostart = [Target(name) for name, job in self.jobs.items() if job.definition.autostart]
        self.set_goal(autostart, Goal.START)

    async def shutdown(self) -> None:
        """Stop every instance, dependents first, and wait until all are down."""
        self.shutting_down = True
        runtimes = [rt for job in self.jobs.values() for rt in job.instances.values()]
        self.feed_all((rt, ins.SetGoal(Goal.STOP)) for rt in runtimes)
        await asyncio.gather(*(self.until(rt, stopped) for rt in runtimes))
        for job in self.jobs.values():
            if job.log is not None:
                job.log.close()
        if self._cgroups is not None:
            self._cgroups.close()


def _at_rest(rt: Runtime) -> bool:
    """Nothing of it runs and nothing is under way."""
    return (
        rt.inst.state in (State.WAITING, State.FAILED)
        and rt.inst.goal is Goal.STOP
        and rt.held is None
        and not rt.oneoffs
        and not rt.holders
    )


def _describe_outcome(outcome: Outcome, timeout: float) -> str:
    if outcome.timed_out:
        return f"timed out after {timeout:g}s"
    if outcome.signal is not None:
        return f"killed by {signal_name(outcome.signal)}"
    return f"exited with status {outcome.status}"


_MAIN = ProcessKind.MAIN
CHECK_KEPT_STATUS = os.environ.get("CORRAL_CHECK_STATUS") == "1"


def _status_row(rt: Runtime, offset: float, stale: bool) -> StatusRow:
    """One row, or the same row as last time when nothing it shows has changed: the record
    is immutable, so identity says so. A status of a thousand idle services then reads five
    fields each instead of building rows (``_value_`` and a plain ``children`` lookup, not the
    enum's ``value`` property and ``main_pid``, for the same reason)."""
    inst = rt.inst
    main = rt.children.get(_MAIN)
    memo = rt.row_memo
    if (
        memo is not None
        and memo[0] is inst
        and memo[1] is main
        and memo[2] is rt.status_text
        and memo[3] is rt.definition
        and memo[4] is stale
        and memo[5] == offset
    ):
        return memo[6]  # type: ignore[return-value]  # the row, as stored below
    row = StatusRow(
        inst.job,
        inst.key,
        inst.goal._value_,
        inst.state._value_,
        None if main is None else main.pid,
        inst.ready and inst.state is State.RUNNING,
        inst.restarts,
        inst.exit_status,
        None if inst.exit_signal is None else signal_name(inst.exit_signal),
        int((inst.since + offset) * 1000) / 1000,  # ms, as round() but a tenth of its cost
        stale,
        rt.definition.description,
        inst.error or None,
        rt.status_text or None,
    )
    rt.row_memo = (inst, main, rt.status_text, rt.definition, stale, offset, row)
    return row
