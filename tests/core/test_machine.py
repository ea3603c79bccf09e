"""The state machine as timelines: act, read the effects, feed what the world does next."""

from __future__ import annotations

import signal

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import structs

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.machine import Instance, Policy, respawns_at_once, step
from corral.core.restart import RestartPolicy
from corral.core.states import Goal, ProcessKind, RestartMode, ServiceType, State, TimerKind
from tests.strategies import instances, policies

MAIN = ProcessKind.MAIN


class Timeline:
    """One instance and a clock; ``feed`` returns the effects, and releases held events."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
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
            if isinstance(effect, fx.Spawn):
                out += self.feed(ins.Spawned(effect.process))
        return out

    @property
    def state(self) -> State:
        return self.inst.state

    def events(self) -> list[str]:
        return [e.name for e in self.log if isinstance(e, fx.Emit)]


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
    history=st.lists(st.floats(0.0, 30.0), max_size=2).map(tuple),
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
    at_limit = structs.replace(running, history=(1.0, 2.0))
    assert not respawns_at_once(at_limit, policy, crash, 5.0)
    delayed = Policy(restart=RestartPolicy(RestartMode.ALWAYS, delay=0.1))
    assert not respawns_at_once(running, delayed, crash, 5.0)
    hooked = Policy(restart=policy.restart, hooks=frozenset({ProcessKind.POST_STOP}))
    assert not respawns_at_once(running, hooked, crash, 5.0)
