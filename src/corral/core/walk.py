"""The walk of one ``step`` (:mod:`corral.core.machine`): entering each state, and the
transitions several inputs share (begin a stop, become ready, finish a stop, respawn or give
up, a hook is done). ``machine.py`` adds what each input does; together they are one step's
working state, which never outlives it. Pure.
"""

from __future__ import annotations

from typing import Any

from msgspec import structs

from corral.core import effects as fx
from corral.core.records import SIGABRT, SIGKILL, Failure, Instance, Policy, signal_name
from corral.core.restart import (
    admit_respawn,
    backoff_delay,
    is_normal_exit,
    stayed_up,
    unready_after,
    wants_respawn,
)
from corral.core.states import Goal, ProcessKind, ServiceType, State, TimerKind

#: Hooks of the start walk: their failure fails the start; a stop cuts them short.
START_HOOKS = frozenset({ProcessKind.PRE_START, ProcessKind.POST_START})

_replace = structs.replace


class Walk:
    """The working state of one ``step`` call: the instance so far and the effects so far."""

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
        self._set(
            failure=None,
            give_up=False,
            restarting=False,
            respawning=False,
            destroying=False,
            aborting=False,
        )
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
        main_gone = self.policy.has_main and not self.inst.main_alive
        died = main_gone and self.policy.type is not ServiceType.ONESHOT
        # A main that died while post-start ran never came up: its try counts as unready.
        ready_since = None if died else self.now
        self._set(ready=True, ready_since=ready_since, error="", failed_checks=0)
        self._emit(fx.Emit("started", self._lifecycle_env(False)))
        if died:
            self._main_ended()  # it died while post-start ran
        else:
            self._arm_watchdog()

    def _enter_pre_stop(self) -> None:
        self._spawn_hook(ProcessKind.PRE_STOP, self.policy.stop_timeout)

    def _enter_stopping(self) -> None:
        self._cancel_timer()
        self._set(ready=False, ready_since=None, launched=False)
        self._emit(fx.Emit("stopping", self._lifecycle_env(True), hold=True))

    def _enter_killed(self) -> None:
        if self.inst.main_alive:
            number = self.policy.stop_signal
            if self.inst.destroying:
                number = SIGKILL
            elif self.inst.aborting:
                number = SIGABRT
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
        self._set(restarting=False, respawning=False, ready=False, destroying=False, aborting=False)

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
        else:
            self._arm_watchdog()

    def _arm_watchdog(self) -> None:
        """A running main process with a ``watchdog`` must say WATCHDOG=1 within it."""
        if self.policy.watchdog is not None and self.inst.main_alive:
            self._set_timer(TimerKind.WATCHDOG, self.policy.watchdog)

    def _abort(self, reason: str) -> None:
        """The running main process stopped answering (its watchdog, its liveness probe):
        a failure of it, for its restart policy. It goes down the stop path, where it gets
        SIGABRT instead of its stop_signal (then SIGKILL after stop_timeout), and comes
        back if its policy says so."""
        self._emit(fx.Note(f"{reason}: sending SIGABRT"))
        self._set(aborting=True)
        self._respawn_or_stop(Failure(ProcessKind.MAIN, reason=reason))

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
        unready = unready_after(inst.unready, inst.ready_since)
        error = failure.describe() if failure is not None else ""
        self._set(
            ready=False, ready_since=None, consecutive=consecutive, unready=unready, error=error
        )
        if wants_respawn(policy, normal=failure is None):
            admitted, history = admit_respawn(policy, inst.history, unready, self.now)
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
            if unready > policy.burst:
                limit = f"restart limit reached ({unready} starts in a row never became ready)"
            else:
                limit = f"restart limit reached ({policy.burst} in {policy.interval:g}s)"
            self._emit(fx.Note(limit))
            self._set(history=history, error=f"{error}; {limit}" if error else limit)
            failure = failure or Failure(ProcessKind.MAIN, inst.exit_status, inst.exit_signal)
            self._set(failure=failure, give_up=True, goal=Goal.STOP)
        else:
            self._set(failure=failure, give_up=failure is not None, goal=Goal.STOP)
        self._goto(State.STOPPING)

    def _hook_done(self, kind: ProcessKind, failure: Failure | None) -> None:
        """The hook is gone (exited, or could not start); ``failure``: why it failed, if it
        did. A start hook's failure fails the start; a stop hook's fails the stop."""
        state = self.inst.state
        if kind in START_HOOKS:
            if self.inst.wants_down:
                self._goto(State.STOPPING)
            elif failure is not None:
                self._give_up(failure)
            elif state is State.PRE_START:
                self._goto(State.SPAWNED)
            else:
                self._goto(State.RUNNING)
            return
        if kind is ProcessKind.PRE_STOP and not self.inst.wants_down:
            self._resume_running()  # a start arrived while pre-stop ran: nothing was stopped
            return
        if failure is not None:
            self._stop_hook_failed(failure)
        if kind is ProcessKind.PRE_STOP:
            self._goto(State.STOPPING)
        else:
            self._finish_stop()

    def _stop_hook_failed(self, failure: Failure) -> None:
        """The stop walk goes on, but as a failure (systemd's ExecStop=/ExecStopPost=):
        ``stopping``/``stopped`` report the first failure of the walk, ``error`` adds this
        one, and a stop rests in ``failed``. A walk that heads back up (a restart, a respawn)
        still does."""
        inst = self.inst
        error = f"{inst.error}; {failure.describe()}" if inst.error else failure.describe()
        self._set(
            failure=inst.failure or failure,
            error=error,
            give_up=inst.give_up or inst.goal is Goal.STOP,
        )


_ENTER = {
    State.WAITING: Walk._enter_rest,
    State.FAILED: Walk._enter_rest,
    State.STARTING: Walk._enter_starting,
    State.PRE_START: Walk._enter_pre_start,
    State.SPAWNED: Walk._enter_spawned,
    State.POST_START: Walk._enter_post_start,
    State.RUNNING: Walk._enter_running,
    State.PRE_STOP: Walk._enter_pre_stop,
    State.STOPPING: Walk._enter_stopping,
    State.KILLED: Walk._enter_killed,
    State.POST_STOP: Walk._enter_post_stop,
}
