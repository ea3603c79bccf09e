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
An instance that gives up (a failed start hook, a spawn error, the restart limit) ends in
``failed``, and so does a stop whose ``pre-stop`` or ``post-stop`` failed. ``stopping`` and
``stopped`` report the first failure of their walk (``Instance.failure``).

The restart limit counts respawns within a window and respawns in a row whose process never
became ready, however long each took, so a crash loop always ends; see ``restart.py``.

Each instance has at most one timer armed at a time, because each transient state has at most
one deadline, and ``running`` has one only with a ``watchdog``; a ``TimerFired`` for another
kind than the armed one is stale and ignored. A running main process that stops answering (no
``WATCHDOG=1`` within ``watchdog``, a ``liveness`` probe failing ``failures`` times in a row)
fails: it goes down the stop path with SIGABRT for its signal, and respawns as its policy says.
``RELOADING=1`` makes a running instance not ready until its next ``READY=1``.
No I/O, no clock: ``now`` is an argument and the effects say what the daemon must do.
"""

from __future__ import annotations

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.records import SIGKILL, Failure, Instance, Policy
from corral.core.restart import (
    admit_respawn,
    backoff_delay,
    is_normal_exit,
    stayed_up,
    unready_after,
    wants_respawn,
)
from corral.core.states import Goal, ProcessKind, ServiceType, State, TimerKind
from corral.core.walk import START_HOOKS, Walk


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
    unready = unready_after(inst.unready, inst.ready_since)
    admitted, _ = admit_respawn(restart, inst.history, unready, now)
    if not wants_respawn(restart, normal) or not admitted:
        return False
    consecutive = 0 if stayed_up(restart, inst.ready_since, now) else inst.consecutive
    return backoff_delay(restart, consecutive + 1) <= 0


class _Step(Walk):
    """One step: what each input does, on the walk's states and transitions."""

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
                self._on_ready()
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
            case ins.WatchdogPing():
                if self.inst.timer is TimerKind.WATCHDOG and self.policy.watchdog is not None:
                    self._set_timer(TimerKind.WATCHDOG, self.policy.watchdog)
            case ins.Liveness(ok=ok, detail=detail):
                self._on_liveness(ok, detail)
            case ins.Reloading():
                inst = self.inst
                if inst.state is State.RUNNING and inst.ready and inst.main_alive:
                    self._set(ready=False)
                    self._emit(fx.Note("reloading (RELOADING=1): not ready until READY=1"))
            case ins.Destroy():
                self._on_destroy()

    def _on_ready(self) -> None:
        """Ready at the end of a start, or again after a reload (``RELOADING=1``)."""
        inst = self.inst
        if inst.state is State.SPAWNED and inst.main_alive:
            self._became_ready()
        elif inst.state is State.RUNNING and not inst.ready and inst.main_alive:
            self._set(ready=True)
            self._emit(fx.Note("ready again after the reload"))

    def _on_liveness(self, ok: bool, detail: str) -> None:
        """A liveness probe's answer: ``failures`` in a row abort the main process."""
        inst = self.inst
        needed = self.policy.liveness_failures
        if inst.state is not State.RUNNING or not inst.main_alive or needed <= 0:
            return
        if ok:
            self._set(failed_checks=0)
            return
        failed = inst.failed_checks + 1
        self._set(failed_checks=failed)
        if failed >= needed:
            self._abort(f"liveness probe failed {failed} times in a row ({detail})")

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
            # A manual start leaves ``failed`` and begins a fresh respawn series.
            self._set(give_up=False, history=(), unready=0, consecutive=0, error="")
            self._goto(State.STARTING)
        # Anywhere else the start is remembered and honoured where the walk turns.

    def _turn_down(self) -> bool:
        """Head down where the walk can turn at once (running, spawned, a start hook to
        cancel); False where it turns later, or elsewhere."""
        inst = self.inst
        if inst.state is State.RUNNING:
            self._begin_stop()
        elif inst.state is State.SPAWNED:
            self._goto(State.STOPPING)
        elif inst.state in (State.PRE_START, State.POST_START) and inst.hook is not None:
            if inst.timer is not TimerKind.KILL:
                self._cancel_hook()
        else:
            return False
        return True

    def _on_stop(self) -> None:
        inst = self.inst
        self._set(goal=Goal.STOP, restarting=False)
        if self._turn_down():
            return
        if inst.state is State.POST_STOP and inst.timer is TimerKind.RESPAWN:
            self._set(respawning=False)
            self._goto(State.FAILED if inst.give_up else State.WAITING)

    def _on_restart(self) -> None:
        inst = self.inst
        if inst.state in (State.WAITING, State.FAILED):
            self._on_start()
            return
        self._set(goal=Goal.START, restarting=True, give_up=False)
        if self._turn_down():
            return
        if inst.state is State.POST_STOP and inst.timer is TimerKind.RESPAWN:
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
        self._set(hook=None, hook_failure=None)
        self._hook_done(process, None if self.inst.destroying else failure)

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
        failure = self._hook_failure(event)
        if failure is not None and event.process not in START_HOOKS:
            self._emit(fx.Note(failure.describe()))  # a start hook's: "giving up: ..."
        self._cancel_timer()
        self._set(hook=None, hook_failure=None)
        self._hook_done(event.process, failure)

    def _hook_failure(self, event: ins.Exited) -> Failure | None:
        """Why the hook that exited failed, or None. A hook that the walk itself cut short
        did not fail: a start hook signalled because a stop arrived, any hook that a
        ``destroy`` SIGKILLed. Nobody signals a stop hook but its own timeout."""
        inst = self.inst
        if inst.destroying:
            return None
        if inst.hook_failure is not None:
            return inst.hook_failure  # it timed out
        if event.status == 0 or (event.process in START_HOOKS and inst.wants_down):
            return None
        return Failure(event.process, event.status, event.signal)

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
        elif kind is TimerKind.WATCHDOG and inst.state is State.RUNNING and inst.main_alive:
            self._abort(f"watchdog: no WATCHDOG=1 within {self.policy.watchdog or 0:g}s")

    def _on_released(self) -> None:
        state = self.inst.state
        if state is State.STARTING:
            self._goto(State.STOPPING if self.inst.goal is Goal.STOP else State.PRE_START)
        elif state is State.STOPPING:
            self._goto(State.KILLED)
