"""The state machine as timelines: act, read the effects, feed what the world does next."""

from __future__ import annotations

import signal

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import structs

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.machine import respawns_at_once, step
from corral.core.records import Instance, Policy
from corral.core.restart import RestartPolicy
from corral.core.states import Goal, ProcessKind, RestartMode, ServiceType, State, TimerKind
from tests.strategies import instances, policies

MAIN = ProcessKind.MAIN


class Timeline:
    """One instance and a clock; ``feed`` returns the effects, and releases held events.
    Every spawn works, but those of ``unstartable`` (answered with ``SpawnFailed``)."""

    def __init__(self, policy: Policy, unstartable: frozenset[ProcessKind] = frozenset()) -> None:
        self.policy = policy
        self.unstartable = unstartable
        self.inst = Instance(job="svc")
        self.now = 0.0
        self.log: list[fx.Effect] = []

    def feed(self, event: ins.Input) -> list[fx.Effect]:
        self.inst, effects = step(self.inst, self.policy, event, self.now)
        self.log.extend(effects)
        out = list(effects)
        for effect in effects:
            if isinstance(effect, fx.Emit) and effect.hold:
                out += self.feed(ins.Released())
            if isinstance(effect, fx.Spawn) and effect.process in self.unstartable:
                out += self.feed(ins.SpawnFailed(effect.process, "$UNSET is not set"))
            elif isinstance(effect, fx.Spawn):
                out += self.feed(ins.Spawned(effect.process))
        return out

    @property
    def state(self) -> State:
        return self.inst.state

    def events(self) -> list[str]:
        return [e.name for e in self.log if isinstance(e, fx.Emit)]

    def result(self, name: str) -> dict[str, str]:
        """The environment of the last ``name`` lifecycle event, without JOB and INSTANCE."""
        env = [e.env for e in self.log if isinstance(e, fx.Emit) and e.name == name][-1]
        return {k: v for k, v in env.items() if k not in ("JOB", "INSTANCE")}


def test_simple_start_and_stop_walk_every_state_and_emit_lifecycle_events() -> None:
    t = Timeline(Policy())
    t.feed(ins.SetGoal(Goal.START))
    assert t.state is State.RUNNING and t.inst.ready
    assert t.events() == ["starting", "started"]
    effects = t.feed(ins.SetGoal(Goal.STOP))
    assert t.state is State.KILLED
    assert fx.Signal(MAIN, signal.SIGTERM) in effects
    assert fx.SetTimer(TimerKind.KILL, 10.0) in effects
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.state is State.WAITING and t.inst.goal is Goal.STOP
    assert t.events() == ["starting", "started", "stopping", "stopped"]
    stopped = next(e for e in t.log if isinstance(e, fx.Emit) and e.name == "stopped")
    assert stopped.env == {"JOB": "svc", "INSTANCE": "", "RESULT": "ok"}


def test_stop_timeout_sends_sigkill() -> None:
    t = Timeline(Policy(stop_timeout=5))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.SetGoal(Goal.STOP))
    t.now += 5
    assert fx.Signal(MAIN, signal.SIGKILL) in t.feed(ins.TimerFired(TimerKind.KILL))
    t.feed(ins.Exited(MAIN, None, signal.SIGKILL))
    assert t.state is State.WAITING


def test_a_crash_with_on_failure_respawns_after_the_delay_and_reports_the_failure() -> None:
    t = Timeline(Policy(restart=RestartPolicy(mode=RestartMode.ON_FAILURE, delay=1.0)))
    t.feed(ins.SetGoal(Goal.START))
    effects = t.feed(ins.Exited(MAIN, 3))
    stopping = next(e for e in effects if isinstance(e, fx.Emit) and e.name == "stopping")
    assert stopping.env["RESULT"] == "failed" and stopping.env["EXIT_STATUS"] == "3"
    assert stopping.env["PROCESS"] == "main"
    assert t.state is State.POST_STOP and t.inst.timer is TimerKind.RESPAWN
    assert fx.SetTimer(TimerKind.RESPAWN, 1.0) in effects
    t.now += 1
    t.feed(ins.TimerFired(TimerKind.RESPAWN))
    assert t.state is State.RUNNING and t.inst.restarts == 1


def test_stop_during_the_respawn_delay_ends_waiting() -> None:
    t = Timeline(Policy(restart=RestartPolicy(mode=RestartMode.ALWAYS, delay=5.0)))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(MAIN, 0))
    assert t.inst.timer is TimerKind.RESPAWN
    t.feed(ins.SetGoal(Goal.STOP))
    assert t.state is State.WAITING and t.inst.timer is None


def test_restart_is_atomic_and_ends_running() -> None:
    t = Timeline(Policy())
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Restart())
    assert t.state is State.KILLED and t.inst.goal is Goal.START
    effects = t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert fx.Spawn(MAIN) in effects
    assert t.state is State.RUNNING and t.inst.restarts == 0  # manual restarts are not respawns


def test_stop_during_spawned_turns_at_once() -> None:
    t = Timeline(Policy(type=ServiceType.ONESHOT))
    t.feed(ins.SetGoal(Goal.START))
    assert t.state is State.SPAWNED and t.inst.timer is TimerKind.START
    t.feed(ins.SetGoal(Goal.STOP))
    assert t.state is State.KILLED
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.state is State.WAITING


def test_oneshot_is_running_without_a_process_after_success() -> None:
    t = Timeline(Policy(type=ServiceType.ONESHOT))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(MAIN, 0))
    assert t.state is State.RUNNING and not t.inst.main_alive and t.inst.ready


def test_start_timeout_fails_the_start() -> None:
    t = Timeline(Policy(type=ServiceType.ONESHOT, timeout_start=2))
    t.feed(ins.SetGoal(Goal.START))
    t.now += 2
    t.feed(ins.TimerFired(TimerKind.START))
    assert t.state is State.KILLED and t.inst.give_up
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.state is State.FAILED and "timeout_start" in t.inst.error


def test_start_during_pre_stop_returns_to_running_without_a_new_started() -> None:
    t = Timeline(Policy(hooks=frozenset({ProcessKind.PRE_STOP})))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.SetGoal(Goal.STOP))
    assert t.state is State.PRE_STOP
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(ProcessKind.PRE_STOP, 0))
    assert t.state is State.RUNNING and t.events().count("started") == 1


def test_stale_timer_is_ignored() -> None:
    t = Timeline(Policy(hooks=frozenset({ProcessKind.PRE_START})))
    t.feed(ins.SetGoal(Goal.START))
    assert t.state is State.PRE_START and t.inst.timer is TimerKind.HOOK
    assert t.feed(ins.TimerFired(TimerKind.KILL)) == []


def test_spawn_failure_gives_up_with_the_reason() -> None:
    t = Timeline(Policy(restart=RestartPolicy(mode=RestartMode.ALWAYS)))
    t.inst, _ = step(t.inst, t.policy, ins.SetGoal(Goal.START), 0)
    t.inst, _ = step(t.inst, t.policy, ins.Released(), 0)
    assert t.state is State.SPAWNED
    t.inst, _effects = step(t.inst, t.policy, ins.SpawnFailed(MAIN, "x: command not found"), 0)
    t.inst, _ = step(t.inst, t.policy, ins.Released(), 0)
    assert t.state is State.FAILED and "command not found" in t.inst.error
    assert t.inst.goal is Goal.STOP


def test_forking_launcher_exit_waits_for_the_pid_file_then_adopts() -> None:
    t = Timeline(Policy(type=ServiceType.FORKING, timeout_start=5))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(MAIN, 0))
    assert t.state is State.SPAWNED and t.inst.launched and not t.inst.main_alive
    assert t.inst.timer is TimerKind.START
    t.feed(ins.Adopted())
    t.feed(ins.Ready())
    assert t.state is State.RUNNING and t.inst.main_alive and not t.inst.launched


def test_forking_launcher_that_fails_fails_the_start() -> None:
    t = Timeline(Policy(type=ServiceType.FORKING))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(MAIN, 1))
    assert t.state is State.FAILED and "status 1" in t.inst.error


def test_a_failed_requirement_fails_the_waiting_start_without_running_anything() -> None:
    t = Timeline(Policy())
    t.inst, effects = step(t.inst, t.policy, ins.SetGoal(Goal.START), 0.0)
    assert t.state is State.STARTING  # held: the daemon waits for the requirements
    t.inst, _ = step(t.inst, t.policy, ins.RequirementFailed("requirement db failed"), 0.0)
    assert t.inst.goal is Goal.STOP
    effects = t.feed(ins.Released())
    assert t.state is State.FAILED and t.inst.error == "requirement db failed"
    assert not any(isinstance(e, fx.Spawn) and e.process is MAIN for e in effects)
    stopping = [e for e in t.log if isinstance(e, fx.Emit) and e.name == "stopping"]
    assert stopping[-1].env["RESULT"] == "failed" and "PROCESS" not in stopping[-1].env


def test_extend_timeout_rearms_the_start_deadline() -> None:
    t = Timeline(Policy(type=ServiceType.NOTIFY, timeout_start=2))
    t.feed(ins.SetGoal(Goal.START))
    assert t.feed(ins.ExtendTimeout(30.0)) == [fx.SetTimer(TimerKind.START, 30.0)]


def test_destroy_skips_stop_hooks_and_kills_at_once() -> None:
    hooks = frozenset({ProcessKind.PRE_STOP, ProcessKind.POST_STOP})
    t = Timeline(Policy(hooks=hooks, restart=RestartPolicy(mode=RestartMode.ALWAYS)))
    t.feed(ins.SetGoal(Goal.START))
    effects = t.feed(ins.Destroy())
    assert fx.Signal(MAIN, signal.SIGKILL) in effects
    assert not any(isinstance(e, fx.Spawn) for e in effects)
    effects = t.feed(ins.Exited(MAIN, None, signal.SIGKILL))
    assert t.state is State.WAITING and t.inst.goal is Goal.STOP and t.inst.restarts == 0
    assert not any(isinstance(e, fx.Spawn) for e in effects)


def test_a_probe_that_gives_up_fails_the_start_like_a_timeout() -> None:
    t = Timeline(Policy(signals_ready=True))
    t.feed(ins.SetGoal(Goal.START))
    assert t.state is State.SPAWNED and t.inst.timer is TimerKind.START
    t.feed(ins.NotReady("ready probe did not pass"))
    assert t.state is State.KILLED and t.inst.give_up


def _spawns_with_holds_released(
    inst: Instance, policy: Policy, event: ins.Input, now: float
) -> list[ProcessKind]:
    """What a walk spawns when every hold it meets is released at once (no listener)."""
    inst, effects = step(inst, policy, event, now)
    spawned = [e.process for e in effects if isinstance(e, fx.Spawn)]
    for _ in range(4):  # stopping, then starting: no walk holds more often
        if not any(isinstance(e, fx.Emit) and e.hold for e in effects):
            break
        inst, effects = step(inst, policy, ins.Released(), now)
        spawned += [e.process for e in effects if isinstance(e, fx.Spawn)]
    return spawned


# The cases where the answer may be yes, often enough to meet each way it can turn to no.
_RUNNING_MAINS = instances(
    state=st.just(State.RUNNING),
    goal=st.just(Goal.START),
    main_alive=st.just(True),
    give_up=st.just(False),
    consecutive=st.integers(0, 3),
    unready=st.integers(0, 3),
)
_RESPAWNING = policies(
    has_main=st.just(True),
    restart=st.builds(
        RestartPolicy,
        mode=st.sampled_from([RestartMode.ALWAYS, RestartMode.ON_FAILURE]),
        delay=st.sampled_from([0.0, 0.0, 0.1]),
        burst=st.integers(1, 5),
        interval=st.sampled_from([1.0, 10.0]),
    ),
)


@settings(max_examples=600)
@given(
    st.tuples(instances(), policies(), st.sampled_from(list(ProcessKind)))
    | st.tuples(_RUNNING_MAINS, _RESPAWNING, st.just(MAIN)),
    st.none() | st.integers(0, 3),
    st.sampled_from([signal.SIGKILL, signal.SIGTERM]),
    st.floats(0.0, 40.0),
)
def test_respawns_at_once_says_exactly_when_an_exit_walks_straight_to_a_new_main(
    case: tuple[Instance, Policy, ProcessKind], status: int | None, sig: int, now: float
) -> None:
    """The daemon spawns early on this answer, so it must match the machine's own walk for
    every exit seen in ``running`` (and say no elsewhere)."""
    inst, policy, process = case
    exited = ins.Exited(process, status, None if status is not None else int(sig))
    walk = _spawns_with_holds_released(inst, policy, exited, now)
    expected = inst.state is State.RUNNING and walk == [MAIN]
    assert respawns_at_once(inst, policy, exited, now) == expected


def test_a_crash_of_an_always_service_respawns_at_once_but_not_past_its_limit() -> None:
    policy = Policy(restart=RestartPolicy(RestartMode.ALWAYS, delay=0.0, burst=2, interval=10))
    running = Instance(job="svc", state=State.RUNNING, goal=Goal.START, main_alive=True)
    crash = ins.Exited(MAIN, None, int(signal.SIGKILL))
    assert respawns_at_once(running, policy, crash, 5.0)
    at_limit = structs.replace(running, history=(4.0, 4.5))
    assert not respawns_at_once(at_limit, policy, crash, 5.0)
    delayed = Policy(restart=RestartPolicy(RestartMode.ALWAYS, delay=0.1))
    assert not respawns_at_once(running, delayed, crash, 5.0)
    hooked = Policy(restart=policy.restart, hooks=frozenset({ProcessKind.POST_STOP}))
    assert not respawns_at_once(running, hooked, crash, 5.0)


# -- restart_limit: a window of respawns, and tries in a row that never became ready ---------

_LOOPING = RestartPolicy(RestartMode.ALWAYS, delay=0.5, burst=3, interval=10.0)


def _respawn_after_the_delay(t: Timeline) -> float:
    """Fire the armed respawn timer as the daemon would; the delay it waited."""
    armed = [e for e in t.log if isinstance(e, fx.SetTimer)][-1]
    assert armed.timer is TimerKind.RESPAWN and t.inst.timer is TimerKind.RESPAWN
    t.now += armed.seconds
    t.feed(ins.TimerFired(TimerKind.RESPAWN))
    return armed.seconds


def test_a_crash_loop_whose_every_try_outlasts_the_window_still_fails() -> None:
    """Each try dies after 12 s, before it is ready, with a 10 s window: no window ever
    holds two respawns, yet the instance gives up after ``burst`` respawns in a row."""
    t = Timeline(Policy(type=ServiceType.NOTIFY, restart=_LOOPING))
    t.feed(ins.SetGoal(Goal.START))
    delays = []
    for _ in range(3):
        t.now += 12
        t.feed(ins.Exited(MAIN, 1))
        delays.append(_respawn_after_the_delay(t))
        assert t.state is State.SPAWNED
    t.now += 12
    t.feed(ins.Exited(MAIN, 1))
    assert t.state is State.FAILED and t.inst.goal is Goal.STOP
    assert t.inst.restarts == 3 and "restart limit reached" in t.inst.error
    assert delays == [0.5, 1.0, 2.0]  # with backoff


def test_a_start_that_times_out_every_time_ends_failed() -> None:
    t = Timeline(Policy(type=ServiceType.NOTIFY, timeout_start=12, restart=_LOOPING))
    t.feed(ins.SetGoal(Goal.START))
    for respawns in range(4):
        t.now += 12
        t.feed(ins.TimerFired(TimerKind.START))
        assert t.state is State.KILLED
        t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
        if respawns < 3:
            _respawn_after_the_delay(t)
    assert t.state is State.FAILED and t.inst.restarts == 3
    assert "timeout_start" in t.inst.error and "restart limit reached" in t.inst.error


def test_a_try_ready_for_a_whole_window_resets_the_backoff_and_respawns_for_ever() -> None:
    """A process that came up and later crashed is no failed start: it respawns as long as
    the window allows (systemd's and supervisord's rule), and one that stayed up for a whole
    window waits the first delay again."""
    t = Timeline(Policy(restart=_LOOPING))
    t.feed(ins.SetGoal(Goal.START))
    for _ in range(10):
        t.now += 10  # ready at spawn (simple), for a whole window
        t.feed(ins.Exited(MAIN, 1))
        assert _respawn_after_the_delay(t) == 0.5
        assert t.state is State.RUNNING
    assert t.inst.restarts == 10


def test_a_process_that_comes_up_then_crashes_respawns_while_the_window_allows() -> None:
    """Ready at spawn, crashing after 4 s each time: no failed start, and no window of 10 s
    holds more than 3 respawns, so it goes on; the backoff still grows (never up for 10 s)."""
    t = Timeline(Policy(restart=_LOOPING))
    t.feed(ins.SetGoal(Goal.START))
    delays = []
    for _ in range(6):
        t.now += 4
        t.feed(ins.Exited(MAIN, 1))
        delays.append(_respawn_after_the_delay(t))
        assert t.state is State.RUNNING
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_a_fast_loop_of_clean_exits_ends_by_the_window() -> None:
    """``restart = "always"`` and a process that exits 0 at once: the window ends it."""
    t = Timeline(Policy(restart=_LOOPING))
    t.feed(ins.SetGoal(Goal.START))
    for _ in range(3):
        t.feed(ins.Exited(MAIN, 0))
        _respawn_after_the_delay(t)
    t.feed(ins.Exited(MAIN, 0))
    assert t.state is State.FAILED and "restart limit reached (3 in 10s)" in t.inst.error


def test_a_ready_try_in_the_middle_gives_a_fresh_burst() -> None:
    t = Timeline(Policy(type=ServiceType.NOTIFY, restart=_LOOPING))
    t.feed(ins.SetGoal(Goal.START))
    for _ in range(2):  # two respawns of the three allowed
        t.feed(ins.Exited(MAIN, 1))
        _respawn_after_the_delay(t)
    t.feed(ins.Ready())
    t.now += 10
    for _ in range(3):  # three more: the stay-up broke the series
        t.feed(ins.Exited(MAIN, 1))
        _respawn_after_the_delay(t)
    t.feed(ins.Exited(MAIN, 1))
    assert t.state is State.FAILED and t.inst.restarts == 5


# -- what stopping and stopped say: the first failure of the walk, hooks included ----------

PRE_START, PRE_STOP, POST_STOP = ProcessKind.PRE_START, ProcessKind.PRE_STOP, ProcessKind.POST_STOP
OK = {"RESULT": "ok"}


def _hooked(*hooks: ProcessKind, **policy: object) -> Timeline:
    t = Timeline(Policy(hooks=frozenset(hooks), **policy))  # type: ignore[arg-type]
    t.feed(ins.SetGoal(Goal.START))
    return t


def test_a_pre_start_killed_by_a_signal_is_what_stopping_and_stopped_report() -> None:
    t = _hooked(PRE_START)
    t.feed(ins.Exited(PRE_START, None, signal.SIGUSR1))
    failed = {"RESULT": "failed", "PROCESS": "pre-start", "EXIT_SIGNAL": "USR1"}
    assert t.result("stopping") == failed and t.result("stopped") == failed
    assert t.state is State.FAILED and t.inst.error == "pre-start killed by USR1"


def test_a_failing_post_stop_fails_the_stop() -> None:
    """As systemd's ExecStopPost=: the instance rests in failed, and says why."""
    t = _hooked(POST_STOP)
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.state is State.POST_STOP
    t.feed(ins.Exited(POST_STOP, 5))
    assert t.result("stopping") == OK  # sent before post-stop ran
    assert t.result("stopped") == {"RESULT": "failed", "PROCESS": "post-stop", "EXIT_STATUS": "5"}
    assert (t.state, t.inst.goal) == (State.FAILED, Goal.STOP)
    assert t.inst.error == "post-stop exited with status 5"
    assert fx.Note("post-stop exited with status 5") in t.log


def test_a_post_stop_that_could_not_start_fails_the_stop() -> None:
    t = Timeline(Policy(hooks=frozenset({POST_STOP})), unstartable=frozenset({POST_STOP}))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.result("stopped") == {"RESULT": "failed", "PROCESS": "post-stop"}
    assert t.state is State.FAILED
    assert t.inst.error == "post-stop: could not start: $UNSET is not set"


def test_the_first_failure_of_the_walk_is_the_one_reported() -> None:
    t = _hooked(POST_STOP)
    t.feed(ins.Exited(MAIN, 3))
    t.feed(ins.Exited(POST_STOP, 5))
    assert t.result("stopped") == {"RESULT": "failed", "PROCESS": "main", "EXIT_STATUS": "3"}
    assert t.state is State.FAILED
    assert t.inst.error == "main exited with status 3; post-stop exited with status 5"


def test_a_failing_post_stop_still_lets_the_policy_respawn() -> None:
    t = _hooked(POST_STOP, restart=RestartPolicy(RestartMode.ALWAYS, delay=0.0))
    t.feed(ins.Exited(MAIN, 0))  # a normal exit: the walk is no failure until post-stop's
    t.feed(ins.Exited(POST_STOP, 5))
    assert t.result("stopped") == {"RESULT": "failed", "PROCESS": "post-stop", "EXIT_STATUS": "5"}
    assert t.state is State.RUNNING and t.inst.restarts == 1


def test_a_failing_pre_stop_fails_the_stop_and_stopping_says_so() -> None:
    t = _hooked(PRE_STOP)
    t.feed(ins.SetGoal(Goal.STOP))
    effects = t.feed(ins.Exited(PRE_STOP, 2))
    assert fx.Signal(MAIN, signal.SIGTERM) in effects  # the stop goes on
    failed = {"RESULT": "failed", "PROCESS": "pre-stop", "EXIT_STATUS": "2"}
    assert t.result("stopping") == failed
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.result("stopped") == failed
    assert t.state is State.FAILED and t.inst.error == "pre-stop exited with status 2"


def test_a_pre_stop_that_times_out_fails_the_stop() -> None:
    t = _hooked(PRE_STOP, stop_timeout=1.0)
    t.feed(ins.SetGoal(Goal.STOP))
    assert fx.Signal(PRE_STOP, signal.SIGKILL) in t.feed(ins.TimerFired(TimerKind.HOOK))
    t.feed(ins.Exited(PRE_STOP, None, signal.SIGKILL))
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.result("stopped") == {"RESULT": "failed", "PROCESS": "pre-stop"}
    assert t.state is State.FAILED and t.inst.error == "pre-stop: timed out"


def test_a_restart_whose_pre_stop_fails_still_comes_back() -> None:
    t = _hooked(PRE_STOP)
    t.feed(ins.Restart())
    t.feed(ins.Exited(PRE_STOP, 2))
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.result("stopped")["PROCESS"] == "pre-stop"
    assert t.state is State.RUNNING and t.inst.goal is Goal.START and t.inst.error == ""


def test_a_start_during_a_failed_stop_walk_brings_it_back_up() -> None:
    t = _hooked(PRE_STOP)
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.Exited(PRE_STOP, 2))
    assert t.state is State.KILLED
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    assert t.result("stopped")["RESULT"] == "failed"
    assert t.state is State.RUNNING and t.inst.goal is Goal.START


def test_a_start_during_pre_stop_runs_on_whatever_the_hook_says() -> None:
    """Nothing was stopped, so nothing failed to stop: the failure is only logged."""
    t = _hooked(PRE_STOP)
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.SetGoal(Goal.START))
    t.feed(ins.Exited(PRE_STOP, 2))
    assert t.state is State.RUNNING and t.inst.error == "" and "stopping" not in t.events()
    assert fx.Note("pre-stop exited with status 2") in t.log


def test_a_pre_stop_killed_by_destroy_is_no_failure() -> None:
    t = _hooked(PRE_STOP)
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.Destroy())
    t.feed(ins.Exited(PRE_STOP, None, signal.SIGKILL))
    t.feed(ins.Exited(MAIN, None, signal.SIGKILL))
    assert t.result("stopped") == OK and t.state is State.WAITING


def test_a_plain_stop_with_hooks_that_succeed_is_ok() -> None:
    t = _hooked(PRE_STOP, POST_STOP)
    t.feed(ins.SetGoal(Goal.STOP))
    t.feed(ins.Exited(PRE_STOP, 0))
    t.feed(ins.Exited(MAIN, None, signal.SIGTERM))
    t.feed(ins.Exited(POST_STOP, 0))
    assert t.result("stopping") == OK and t.result("stopped") == OK
    assert t.state is State.WAITING and t.inst.error == ""
