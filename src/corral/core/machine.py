"""Upstart's state machine as a pure function: ``step(instance, policy, input, now)``.

An instance walks waiting → starting → pre-start → spawned → post-start → running when its
goal is ``start``, and running → pre-stop → stopping → killed → post-stop → waiting when its
goal is ``stop``. Commands change only the goal. In a rest state (waiting, running, failed) a
goal change starts the walk at once; in a transient state it is remembered and honoured at the
next point where the walk can turn:

* a stop during ``starting`` turns when the held ``starting`` event is released;
* a stop during ``pre-start``/``post-start`` signals the hook and turns when it has exited;
* a stop during ``spawned`` (waiting for readiness) turns at once;
* a start during the stop walk lets it finish and then starts again (a restart);
* a start during ``pre-stop`` returns to ``running`` once the hook has exited.

``restart`` keeps the goal ``start`` and sets ``restarting``, which makes the walk go down
and straight back up. A main process that ends in ``running`` goes down the stop path (without
``pre-stop``) and comes back if its respawn policy allows; otherwise the goal becomes ``stop``.
An instance that gives up (a failed hook, a spawn error, the restart limit) ends in ``failed``.

Each instance has at most one timer armed at a time, because each transient state has at most
one deadline; a ``TimerFired`` for another kind than the armed one is stale and ignored.
No I/O, no clock: ``now`` is an argument and the effects say what the daemon must do.
"""

from __future__ import annotations

import signal as _signal
from typing import Any

from msgspec import Struct, structs

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.restart import (
    RestartPolicy,
    admit_respawn,
    backoff_delay,
    is_normal_exit,
    stayed_up,
    wants_respawn,
)
from corral.core.states import Goal, ProcessKind, ServiceType, State, TimerKind

SIGKILL = int(_signal.SIGKILL)
SIGTERM = int(_signal.SIGTERM)


class Policy(Struct, frozen=True):
    """What the machine needs to know of a definition."""

    has_main: bool = True
    type: ServiceType = ServiceType.SIMPLE
    signals_ready: bool = False  # readiness comes from ready_fd or a probe (any type)
    hooks: frozenset[ProcessKind] = frozenset()
    restart: RestartPolicy = RestartPolicy()
    stop_signal: int = SIGTERM
    stop_timeout: float = 10.0
    timeout_start: float = 90.0

    @property
    def ready_on_spawn(self) -> bool:
        """A plain simple service is ready once exec'd; every other waits for a signal."""
        return self.type is ServiceType.SIMPLE and not self.signals_ready


class Failure(Struct, frozen=True):
    """Why a walk is a failure: a process exited badly, timed out or could not be spawned."""

    process: ProcessKind | None  # None: no process failed (a requirement did)
    status: int | None = None
    signal: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.reason:
            return f"{self.process}: {self.reason}" if self.process else self.reason
        if self.signal is not None:
            return f"{self.process} killed by {signal_name(self.signal)}"
        if self.status is None:
            return f"{self.process} exited (status unknown: not corral's child)"
        return f"{self.process} exited with status {self.status}"


class Instance(Struct, frozen=True):
    """Everything the machine knows of one instance; the daemon keeps the pids beside it."""

    job: str
    key: str = ""
    state: State = State.WAITING
    goal: Goal = Goal.STOP
    restarting: bool = False  # this stop walk is the first half of a restart
    respawning: bool = False  # this stop walk ends in an automatic respawn
    give_up: bool = False  # this stop walk ends in ``failed``
    failure: Failure | None = None  # why this stop walk happens, if it is a failure
    hook_failure: Failure | None = None  # the running hook timed out
    main_alive: bool = False
    launched: bool = False  # forking: the launcher exited 0; waiting for the pid file
    destroying: bool = False  # this stop walk is a ``destroy``: no hooks, SIGKILL only
    hook: ProcessKind | None = None  # the hook process alive now
    timer: TimerKind | None = None
    ready: bool = False
    ready_since: float | None = None
    history: tuple[float, ...] = ()  # respawn times inside the restart_limit window
    consecutive: int = 0  # respawns since the process last stayed up (for backoff)
    restarts: int = 0  # automatic respawns, ever
    exit_status: int | None = None  # of the last main process
    exit_signal: int | None = None
    since: float = 0.0  # when ``state`` was entered
    error: str = ""  # the last failure, said for humans

    @property
    def wants_down(self) -> bool:
        """The walk must head for the stop path (a stop, or the first half of a restart)."""
        return self.goal is Goal.STOP or self.restarting

    @property
    def settled(self) -> bool:
        """At rest where the goal points: running for start, waiting or failed for stop."""
        if self.goal is Goal.START:
            return self.state is State.RUNNING and not self.restarting
        return self.state in (State.WAITING, State.FAILED)


_replace = structs.replace


_SIGNAL_NAMES = {int(sig): sig.name.removeprefix("SIG") for sig in _signal.Signals}


def signal_name(number: int) -> str:
    """``15`` → ``TERM``, as Upstart's ``EXIT_SIGNAL`` spells it (a table: the enum's own
    lookup by value costs microseconds, at every exit)."""
    return _SIGNAL_NAMES.get(number) or str(number)


def step(
    instance: Instance, policy: Policy, event: ins.Input, now: float
) -> tuple[Instance, list[fx.Effect]]:
    """Apply one input; return the new instance and the effects for the daemon, in order."""
    walk = _Step(instance, policy, now)
    walk.handle(event)
    return walk.inst, walk.effects


def respawns_at_once(inst: Instance, policy: Policy, exited: ins.Exited, now: float) -> bool:
    """Whether this exit leads straight to a new main process once the ``stopping`` and
    ``starting`` holds are released: a respawn with no delay and no hook on the way, only the
    lifecycle events and the sweep of the old process group in between. Where no hold can
    wait, the daemon starts the new process first and walks the machine to it after, in the
    same turn (see ``Supervisor._exited``); this must agree with ``step`` exactly."""
    if exited.process is not ProcessKind.MAIN or not (policy.has_main and inst.main_alive):
        return False
    if inst.state is not State.RUNNING or inst.goal is not Goal.START or inst.give_up:
        return False
    hooks = policy.hooks
    if ProcessKind.PRE_START in hooks or (ProcessKind.POST_STOP in hooks and not inst.destroying):
        return False
    restart = policy.restart
    normal = is_normal_exit(restart, exited.status, exited.signal)
    if not wants_respawn(restart, normal) or not admit_respawn(restart, inst.history, now)[0]:
        return False
    consecutive = 0 if stayed_up(restart, inst.ready_since, now) else inst.consecutive
    return backoff_delay(restart, consecutive + 1) <= 0


class _Step:
    """The working state of one ``step`` call; never outlives it."""

    def __init__(self, inst: Instance, policy: Policy, now: float) -> None:
        self.inst = inst
        self.policy = policy
        self.now = now
        self.effects: list[fx.Effect] = []

    # -- small helpers -------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        self.inst = _replace(self.inst, **changes)

    def _emit(self, effect: fx.Effect) -> None:
        self.effects.append(effect)

    def _goto(self, state: State) -> None:
        self._set(state=state, since=self.now)
        _ENTER[state](self)

    def _set_timer(self, kind: TimerKind, seconds: float) -> None:
        self._set(timer=kind)
        self._emit(fx.SetTimer(kind, seconds))

    def _cancel_timer(self) -> None:
        if self.inst.timer is not None:
            self._set(timer=None)
            self._emit(fx.CancelTimer())

    def _spawn_hook(self, kind: ProcessKind, timeout: float) -> None:
        self._set(hook=kind, hook_failure=None)
        self._emit(fx.Spawn(kind))
        self._set_timer(TimerKind.HOOK, timeout)

    def _cancel_hook(self) -> None:
        """Ask the running hook to end because the walk must turn; SIGKILL it if it lingers."""
        assert self.inst.hook is not None
        self._emit(fx.Signal(self.inst.hook, self.policy.stop_signal))
        self._set_timer(TimerKind.KILL, self.policy.stop_timeout)

    def _lifecycle_env(self, with_result: bool) -> dict[str, str]:
        env = {"JOB": self.inst.job, "INSTANCE": self.inst.key}
        if with_result:
            failure = self.inst.failure
            env["RESULT"] = "failed" if failure is not None else "ok"
            if failure is not None and failure.process is not None:
                env["PROCESS"] = str(failure.process)
                if failure.signal is not None:
                    env["EXIT_SIGNAL"] = signal_name(failure.signal)
                elif failure.status is not None:
                    env["EXIT_STATUS"] = str(failure.status)
        return env

    def _give_up(self, failure: Failure) -> None:
        """The start cannot succeed: stop and end in ``failed``."""
        self._set(
            failure=failure,
            give_up=True,
            goal=Goal.STOP,
            restarting=False,
            respawning=False,
            error=failure.describe(),
        )
        self._emit(fx.Note(f"giving up: {failure.describe()}"))
        self._goto(State.STOPPING)

    # -- state entries -------------------------------------------------------------------

    def _enter_starting(self) -> None:
        self._cancel_timer()
        self._set(failure=None, give_up=False, restarting=False, respawning=False, destroying=False)
        self._emit(fx.Emit("starting", self._lifecycle_env(False), hold=True))

    def _enter_pre_start(self) -> None:
        if ProcessKind.PRE_START in self.policy.hooks:
            self._spawn_hook(ProcessKind.PRE_START, self.policy.timeout_start)
        else:
            self._goto(State.SPAWNED)

    def _enter_spawned(self) -> None:
        if not self.policy.has_main:
            self._became_ready()
            return
        self._set(main_alive=True, launched=False)  # the last exit stays visible meanwhile
        self._emit(fx.Spawn(ProcessKind.MAIN))
        if not self.policy.ready_on_spawn:
            self._set_timer(TimerKind.START, self.policy.timeout_start)

    def _enter_post_start(self) -> None:
        if ProcessKind.POST_START in self.policy.hooks:
            self._spawn_hook(ProcessKind.POST_START, self.policy.timeout_start)
        else:
            self._goto(State.RUNNING)

    def _enter_running(self) -> None:
        self._cancel_timer()
        self._set(ready=True, ready_since=self.now, error="")
        self._emit(fx.Emit("started", self._lifecycle_env(False)))
        main_gone = self.policy.has_main and not self.inst.main_alive
        if main_gone and self.policy.type is not ServiceType.ONESHOT:
            self._main_ended()  # it died while post-start ran

    def _enter_pre_stop(self) -> None:
        self._spawn_hook(ProcessKind.PRE_STOP, self.policy.stop_timeout)

    def _enter_stopping(self) -> None:
        self._cancel_timer()
        self._set(ready=False, ready_since=None, launched=False)
        self._emit(fx.Emit("stopping", self._lifecycle_env(True), hold=True))

    def _enter_killed(self) -> None:
        if self.inst.main_alive:
            number = SIGKILL if self.inst.destroying else self.policy.stop_signal
            self._emit(fx.Signal(ProcessKind.MAIN, number))
            self._set_timer(TimerKind.KILL, self.policy.stop_timeout)
        else:
            self._goto(State.POST_STOP)

    def _enter_post_stop(self) -> None:
        if self.policy.has_main:
            # Sweep what the main process left behind in its group (double forks and all).
            self._emit(fx.Signal(ProcessKind.MAIN, SIGKILL))
        if ProcessKind.POST_STOP in self.policy.hooks and not self.inst.destroying:
            self._spawn_hook(ProcessKind.POST_STOP, self.policy.stop_timeout)
        else:
            self._finish_stop()

    def _enter_rest(self) -> None:
        self._cancel_timer()
        self._set(restarting=False, respawning=False, ready=False, destroying=False)

    # -- transitions shared by several inputs --------------------------------------------

    def _begin_stop(self) -> None:
        """Leave ``running`` downwards."""
        self._set(ready=False)
        hooks = self.policy.hooks
        if ProcessKind.PRE_STOP in hooks and self.inst.main_alive and not self.inst.destroying:
            self._goto(State.PRE_STOP)
        else:
            self._goto(State.STOPPING)

    def _resume_running(self) -> None:
        """Back to ``running`` from ``pre-stop``: nothing new started, so no ``started``."""
        self._set(state=State.RUNNING, since=self.now, ready=True, ready_since=self.now)
        if self.policy.has_main and not self.inst.main_alive:
            self._main_ended()

    def _became_ready(self) -> None:
        self._cancel_timer()
        self._set(launched=False)
        self._goto(State.POST_START)

    def _finish_stop(self) -> None:
        """The stop walk is over: emit ``stopped``, then rest or start again."""
        self._emit(fx.Emit("stopped", self._lifecycle_env(True)))
        inst = self.inst
        self._set(failure=None)
        if inst.goal is Goal.START and not inst.give_up:
            if inst.respawning:
                delay = backoff_delay(self.policy.restart, inst.consecutive)
                self._set(respawning=False)
                if delay > 0:
                    self._set_timer(TimerKind.RESPAWN, delay)
                    return
            self._goto(State.STARTING)
        else:
            self._goto(State.FAILED if inst.give_up else State.WAITING)

    def _main_ended(self) -> None:
        """The main process ended while the instance was up (or coming up)."""
        inst = self.inst
        normal = inst.state is State.RUNNING and is_normal_exit(
            self.policy.restart, inst.exit_status, inst.exit_signal
        )
        failure = None
        if not normal:
            failure = Failure(ProcessKind.MAIN, inst.exit_status, inst.exit_signal)
        self._respawn_or_stop(failure)

    def _respawn_or_stop(self, failure: Failure | None) -> None:
        """Go down the stop path, coming back if the respawn policy and limit allow it."""
        policy = self.policy.restart
        inst = self.inst
        consecutive = 0 if stayed_up(policy, inst.ready_since, self.now) else inst.consecutive
        error = failure.describe() if failure is not None else ""
        self._set(ready=False, ready_since=None, consecutive=consecutive, error=error)
        if wants_respawn(policy, normal=failure is None):
            admitted, history = admit_respawn(policy, inst.history, self.now)
            if admitted:
                self._set(
                    history=history,
                    consecutive=consecutive + 1,
                    restarts=inst.restarts + 1,
                    respawning=True,
                    failure=failure,
                )
                self._goto(State.STOPPING)
                return
            limit = f"restart limit reached ({policy.burst} in {policy.interval:g}s)"
            self._emit(fx.Note(limit))
            self._set(history=history, error=f"{error}; {limit}" if error else limit)
            failure = failure or Failure(ProcessKind.MAIN, inst.exit_status, inst.exit_signal)
            self._set(failure=failure, give_up=True, goal=Goal.STOP)
        else:
            self._set(failure=failure, give_up=failure is not None, goal=Goal.STOP)
        self._goto(State.STOPPING)

    def _hook_done(self, kind: ProcessKind, failure: Failure | None) -> None:
        state = self.inst.state
        if kind in (ProcessKind.PRE_START, ProcessKind.POST_START):
            if self.inst.wants_down:
                self._goto(State.STOPPING)
            elif failure is not None:
                self._give_up(failure)
            elif state is State.PRE_START:
                self._goto(State.SPAWNED)
            else:
                self._goto(State.RUNNING)
            return
        if failure is not None:
            self._emit(fx.Note(f"{failure.describe()} (ignored)"))
        if kind is ProcessKind.PRE_STOP:
            if self.inst.wants_down:
                self._goto(State.STOPPING)
            else:
                self._resume_running()  # a start arrived while pre-stop ran
        else:
            self._finish_stop()

    # -- inputs --------------------------------------------------------------------------

    def handle(self, event: ins.Input) -> None:
        match event:
            case ins.SetGoal(goal=Goal.START):
                self._on_start()
            case ins.SetGoal():
                self._on_stop()
            case ins.Restart():
                self._on_restart()
            case ins.Spawned(process=ProcessKind.MAIN):
                # Counted alive when its Spawn was emitted; a simple service is ready now.
                simple = self.policy.ready_on_spawn
                if simple and self.inst.state is State.SPAWNED and self.inst.main_alive:
                    self._became_ready()
            case ins.Spawned():
                pass
            case ins.SpawnFailed(process=process, error=error):
                self._on_spawn_failed(process, error)
            case ins.Exited(process=ProcessKind.MAIN):
                self._on_main_exit(event)
            case ins.Exited():
                self._on_hook_exit(event)
            case ins.Ready():
                if self.inst.state is State.SPAWNED and self.inst.main_alive:
                    self._became_ready()
            case ins.TimerFired(timer=kind):
                self._on_timer(kind)
            case ins.Released():
                self._on_released()
            case ins.Adopted():
                if self.inst.state is State.SPAWNED and self.inst.launched:
                    self._set(main_alive=True, launched=False)
            case ins.NotReady(reason=reason):
                if self.inst.state is State.SPAWNED and (
                    self.inst.main_alive or self.inst.launched
                ):
                    self._cancel_timer()
                    self._emit(fx.Note(reason))
                    self._respawn_or_stop(Failure(ProcessKind.MAIN, reason=reason))
            case ins.RequirementFailed(reason=reason):
                self._on_requirement_failed(reason)
            case ins.ExtendTimeout(seconds=seconds):
                inst = self.inst
                if inst.timer is TimerKind.START or (
                    inst.timer is TimerKind.KILL and inst.state is State.KILLED
                ):
                    self._set_timer(inst.timer, seconds)
            case ins.Destroy():
                self._on_destroy()

    def _on_requirement_failed(self, reason: str) -> None:
        """Only a start that has not run anything yet waits on its requirements."""
        if self.inst.state is State.STARTING and self.inst.goal is Goal.START:
            failure = Failure(None, reason=reason)
            self._set(goal=Goal.STOP, give_up=True, failure=failure, error=reason)
            self._emit(fx.Note(reason))

    def _on_destroy(self) -> None:
        """Go down by the shortest path; the daemon has already SIGKILLed every process."""
        inst = self.inst
        if inst.state in (State.WAITING, State.FAILED):
            self._set(goal=Goal.STOP)
            return
        self._set(
            goal=Goal.STOP, restarting=False, respawning=False, destroying=True, error="destroyed"
        )
        if inst.main_alive:
            self._emit(fx.Signal(ProcessKind.MAIN, SIGKILL))
        if inst.hook is not None:
            self._emit(fx.Signal(inst.hook, SIGKILL))
        if inst.state in (State.RUNNING, State.SPAWNED):
            self._goto(State.STOPPING)
        elif inst.state is State.POST_STOP and inst.timer is TimerKind.RESPAWN:
            self._goto(State.WAITING)

    def _on_start(self) -> None:
        state = self.inst.state
        self._set(goal=Goal.START, give_up=False)  # a start overrides a give-up under way
        if state in (State.WAITING, State.FAILED):
            # A manual start leaves ``failed`` and forgets the old respawn history.
            self._set(give_up=False, history=(), consecutive=0, error="")
            self._goto(State.STARTING)
        # Anywhere else the start is remembered and honoured where the walk turns.

    def _on_stop(self) -> None:
        inst = self.inst
        self._set(goal=Goal.STOP, restarting=False)
        if inst.state is State.RUNNING:
            self._begin_stop()
        elif inst.state is State.SPAWNED:
            self._goto(State.STOPPING)
        elif inst.state in (State.PRE_START, State.POST_START) and inst.hook is not None:
            if inst.timer is not TimerKind.KILL:
                self._cancel_hook()
        elif inst.state is State.POST_STOP and inst.timer is TimerKind.RESPAWN:
            self._set(respawning=False)
            self._goto(State.FAILED if inst.give_up else State.WAITING)

    def _on_restart(self) -> None:
        inst = self.inst
        if inst.state in (State.WAITING, State.FAILED):
            self._on_start()
            return
        self._set(goal=Goal.START, restarting=True, give_up=False)
        if inst.state is State.RUNNING:
            self._begin_stop()
        elif inst.state is State.SPAWNED:
            self._goto(State.STOPPING)
        elif inst.state in (State.PRE_START, State.POST_START) and inst.hook is not None:
            if inst.timer is not TimerKind.KILL:
                self._cancel_hook()
        elif inst.state is State.POST_STOP and inst.timer is TimerKind.RESPAWN:
            self._goto(State.STARTING)  # skip the rest of the respawn delay
        elif inst.state is State.STARTING:
            self._set(restarting=False)  # nothing ran yet: the start that follows is fresh

    def _on_spawn_failed(self, process: ProcessKind, error: str) -> None:
        failure = Failure(process, reason=f"could not start: {error}")
        self._emit(fx.Note(failure.describe()))
        if process is ProcessKind.MAIN:
            self._set(main_alive=False)
            if self.inst.state is State.SPAWNED:
                self._give_up(failure)
            return
        if process is not self.inst.hook:
            return
        self._cancel_timer()
        self._set(hook=None)
        self._hook_done(process, failure)

    def _on_main_exit(self, event: ins.Exited) -> None:
        if not self.inst.main_alive:
            return
        self._set(main_alive=False, exit_status=event.status, exit_signal=event.signal)
        state = self.inst.state
        forking = self.policy.type is ServiceType.FORKING
        if state is State.SPAWNED and forking and event.status == 0 and not self.inst.launched:
            self._set(launched=True)  # the launcher is done; the pid file names the main
            return
        if state is State.SPAWNED:
            self._cancel_timer()
            if self.policy.type is ServiceType.ONESHOT and event.status == 0:
                self._became_ready()
            else:
                self._respawn_or_stop(Failure(ProcessKind.MAIN, event.status, event.signal))
        elif state is State.RUNNING:
            self._main_ended()
        elif state is State.KILLED:
            self._cancel_timer()
            self._goto(State.POST_STOP)
        # In post-start, pre-stop and stopping the exit is noted; the walk deals with it.

    def _on_hook_exit(self, event: ins.Exited) -> None:
        if event.process is not self.inst.hook:
            return
        failure = self.inst.hook_failure
        if failure is None and not self.inst.wants_down and event.status != 0:
            failure = Failure(event.process, event.status, event.signal)
        self._cancel_timer()
        self._set(hook=None, hook_failure=None)
        self._hook_done(event.process, failure)

    def _on_timer(self, kind: TimerKind) -> None:
        inst = self.inst
        if kind is not inst.timer:
            return  # stale: another timer replaced it
        self._set(timer=None)
        if kind is TimerKind.HOOK and inst.hook is not None:
            self._set(hook_failure=Failure(inst.hook, reason="timed out"))
            self._emit(fx.Signal(inst.hook, SIGKILL))
        elif kind is TimerKind.START and inst.state is State.SPAWNED:
            reason = f"not ready within timeout_start ({self.policy.timeout_start:g}s)"
            self._emit(fx.Note(reason))
            self._respawn_or_stop(Failure(ProcessKind.MAIN, reason=reason))
        elif kind is TimerKind.KILL:
            if inst.hook is not None:
                self._emit(fx.Signal(inst.hook, SIGKILL))
            elif inst.main_alive:
                self._emit(fx.Note("did not stop within stop_timeout: sending SIGKILL"))
                self._emit(fx.Signal(ProcessKind.MAIN, SIGKILL))
        elif kind is TimerKind.RESPAWN:
            self._goto(State.STARTING)

    def _on_released(self) -> None:
        state = self.inst.state
        if state is State.STARTING:
            self._goto(State.STOPPING if self.inst.goal is Goal.STOP else State.PRE_START)
        elif state is State.STOPPING:
            self._goto(State.KILLED)


_ENTER = {
    State.WAITING: _Step._enter_rest,
    State.FAILED: _Step._enter_rest,
    State.STARTING: _Step._enter_starting,
    State.PRE_START: _Step._enter_pre_start,
    State.SPAWNED: _Step._enter_spawned,
    State.POST_START: _Step._enter_post_start,
    State.RUNNING: _Step._enter_running,
    State.PRE_STOP: _Step._enter_pre_stop,
    State.STOPPING: _Step._enter_stopping,
    State.KILLED: _Step._enter_killed,
    State.POST_STOP: _Step._enter_post_stop,
}
