"""The machine's side of a running service's health, as timelines: the watchdog timer,
liveness failures, SIGABRT down the stop path, notify-reload, and EXTEND_TIMEOUT_USEC."""

from __future__ import annotations

import signal

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.records import Policy
from corral.core.restart import RestartPolicy
from corral.core.states import Goal, ProcessKind, RestartMode, ServiceType, State, TimerKind
from tests.core.test_machine import Timeline

MAIN = ProcessKind.MAIN
NOTIFY = ServiceType.NOTIFY
ABRT = signal.SIGABRT


def running(policy: Policy) -> Timeline:
    t = Timeline(policy)
    t.feed(ins.SetGoal(Goal.START))
    if t.state is State.SPAWNED:
        t.feed(ins.Ready())
    assert t.state is State.RUNNING
    return t


def test_a_watchdog_is_armed_when_running_and_again_at_each_ping() -> None:
    t = Timeline(Policy(type=NOTIFY, watchdog=2.0))
    t.feed(ins.SetGoal(Goal.START))
    assert t.inst.timer is TimerKind.START  # the start's deadline first, not the watchdog
    assert t.feed(ins.Ready())[-1] == fx.SetTimer(TimerKind.WATCHDOG, 2.0)
    assert t.feed(ins.WatchdogPing()) == [fx.SetTimer(TimerKind.WATCHDOG, 2.0)]
    assert t.inst.timer is TimerKind.WATCHDOG and t.state is State.RUNNING


def test_a_ping_before_ready_or_without_a_watchdog_does_nothing() -> None:
    t = Timeline(Policy(type=NOTIFY, watchdog=2.0))
    t.feed(ins.SetGoal(Goal.START))
    assert t.feed(ins.WatchdogPing()) == []
    plain = running(Policy(type=NOTIFY))
    assert plain.feed(ins.WatchdogPing()) == [] and plain.inst.timer is None


def test_a_missed_watchdog_sends_sigabrt_down_the_stop_path_and_respawns() -> None:
    restart = RestartPolicy(mode=RestartMode.ON_FAILURE, delay=0)
    t = running(Policy(type=NOTIFY, watchdog=2.0, stop_timeout=5, restart=restart))
    t.now += 2
    effects = t.feed(ins.TimerFired(TimerKind.WATCHDOG))
    assert fx.Note("watchdog: no WATCHDOG=1 within 2s: sending SIGABRT") in effects
    assert fx.Signal(MAIN, ABRT) in effects and fx.SetTimer(TimerKind.KILL, 5) in effects
    assert t.state is State.KILLED and t.inst.goal is Goal.START
    assert t.result("stopping") == {"RESULT": "failed", "PROCESS": "main"}
    t.feed(ins.Exited(MAIN, None, ABRT))
    assert t.state is State.SPAWNED and t.inst.restarts == 1 and not t.inst.aborting
    t.feed(ins.Ready())
    assert t.state is State.RUNNING and t.inst.timer is TimerKind.WATCHDOG


def test_a_main_that_ignores_sigabrt_gets_sigkill_after_stop_timeout() -> None:
    t = running(Policy(type=NOTIFY, watchdog=1.0, stop_timeout=3))
    t.feed(ins.TimerFired(TimerKind.WATCHDOG))
    assert t.feed(ins.TimerFired(TimerKind.KILL)) == [
        fx.Note("did not stop within stop_timeout: sending SIGKILL"),
        fx.Signal(MAIN, signal.SIGKILL),
    ]


def test_a_missed_watchdog_counts_as_a_failure_even_when_the_process_exits_0() -> None:
    t = running(Policy(type=NOTIFY, watchdog=1.0))  # restart = "no"
    t.feed(ins.TimerFired(TimerKind.WATCHDOG))
    t.feed(ins.Exited(MAIN, 0))  # it caught SIGABRT and exited cleanly
    assert t.state is State.FAILED and t.inst.goal is Goal.STOP
    assert t.inst.error == "main: watchdog: no WATCHDOG=1 within 1s"
    assert t.result("stopped") == {"RESULT": "failed", "PROCESS": "main"}


def test_a_stale_watchdog_timer_is_ignored() -> None:
    t = running(Policy(type=NOTIFY, watchdog=1.0, hooks=frozenset({ProcessKind.PRE_STOP})))
    t.feed(ins.SetGoal(Goal.STOP))  # pre-stop's hook timer replaced the watchdog
    assert t.state is State.PRE_STOP
    assert t.feed(ins.TimerFired(TimerKind.WATCHDOG)) == []


def test_the_watchdog_is_armed_again_when_a_start_returns_from_pre_stop() -> None:
    t = running(Policy(type=NOTIFY, watchdog=1.0, hooks=frozenset({ProcessKind.PRE_STOP})))
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.SetGoal(Goal.START))
    effects = t.feed(ins.Exited(ProcessKind.PRE_STOP, 0))
    assert t.state is State.RUNNING and effects[-1] == fx.SetTimer(TimerKind.WATCHDOG, 1.0)


def test_a_destroy_during_an_abort_sends_sigkill_not_sigabrt() -> None:
    t = running(Policy(type=NOTIFY, watchdog=1.0, stop_timeout=5))
    t.feed(ins.TimerFired(TimerKind.WATCHDOG))
    assert fx.Signal(MAIN, signal.SIGKILL) in t.feed(ins.Destroy())
    t.feed(ins.Exited(MAIN, None, signal.SIGKILL))
    assert t.state is State.FAILED and not t.inst.aborting  # the abort had failed it already


def test_liveness_failures_in_a_row_abort_and_a_pass_resets_the_count() -> None:
    restart = RestartPolicy(mode=RestartMode.ALWAYS, delay=0)
    t = running(Policy(liveness_failures=3, restart=restart))
    assert t.feed(ins.Liveness(False, "refused")) == []
    t.feed(ins.Liveness(False, "refused"))
    assert t.inst.failed_checks == 2
    t.feed(ins.Liveness(True))
    assert t.inst.failed_checks == 0
    t.feed(ins.Liveness(False, "refused"))
    t.feed(ins.Liveness(False, "refused"))
    effects = t.feed(ins.Liveness(False, "HTTP status 500"))
    reason = "liveness probe failed 3 times in a row (HTTP status 500)"
    assert fx.Note(f"{reason}: sending SIGABRT") in effects and fx.Signal(MAIN, ABRT) in effects
    t.feed(ins.Exited(MAIN, None, ABRT))
    assert t.state is State.RUNNING and t.inst.failed_checks == 0 and t.inst.restarts == 1


def test_liveness_is_ignored_outside_running_and_without_a_probe() -> None:
    t = Timeline(Policy(type=NOTIFY, liveness_failures=1))
    t.feed(ins.SetGoal(Goal.START))
    assert t.feed(ins.Liveness(False, "starting up")) == [] and t.state is State.SPAWNED
    plain = running(Policy())
    assert plain.feed(ins.Liveness(False, "x")) == [] and plain.inst.failed_checks == 0


def test_reloading_makes_running_not_ready_until_ready_again() -> None:
    t = running(Policy(type=NOTIFY, watchdog=5.0))
    assert t.feed(ins.Reloading()) == [fx.Note("reloading (RELOADING=1): not ready until READY=1")]
    assert t.state is State.RUNNING and not t.inst.ready
    assert t.feed(ins.Reloading()) == []
    assert t.feed(ins.Ready()) == [fx.Note("ready again after the reload")]
    assert t.inst.ready and t.inst.timer is TimerKind.WATCHDOG
    assert t.feed(ins.Ready()) == []


def test_extend_timeout_moves_the_start_and_the_stop_deadline() -> None:
    t = Timeline(Policy(type=NOTIFY, stop_timeout=1))
    t.feed(ins.SetGoal(Goal.START))
    assert t.feed(ins.ExtendTimeout(30)) == [fx.SetTimer(TimerKind.START, 30)]
    t.feed(ins.Ready())
    assert t.feed(ins.ExtendTimeout(30)) == []  # running: nothing to extend
    t.feed(ins.SetGoal(Goal.STOP))
    assert t.state is State.KILLED
    assert t.feed(ins.ExtendTimeout(3)) == [fx.SetTimer(TimerKind.KILL, 3)]
