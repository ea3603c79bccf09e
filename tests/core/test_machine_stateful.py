"""Random goal changes, exits, readiness, timers and releases thrown at the pure machine.

The test plays the process world: it remembers which processes the machine asked for, which
timer is armed and whether a lifecycle event is held, and only feeds inputs that world could
produce. After every step the invariants of DESIGN.md must hold; at the end a cooperative world
(hooks succeed, the main process becomes ready, signalled processes die) must bring the
instance to rest where its goal points.

Running services may also have a watchdog and a liveness probe, and reload (``RELOADING=1``):
a running main process with a watchdog always has it armed, and only the stop walk of a
watchdog or liveness abort sends SIGABRT.

One invariant is about time: the world keeps its own count of the respawns since a process
last stayed up (was ready for a whole ``restart_limit`` window) or a user started the
instance from rest, and that count never passes the limit's burst, however long each try took.
Another is about results: a post-stop that the world made fail (status, signal, timeout, or
no spawn) makes its ``stopped`` say ``RESULT=failed``, and a stop then rests in ``failed``.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from corral.core import effects as fx
from corral.core import inputs as ins
from corral.core.machine import step
from corral.core.records import Instance, Policy
from corral.core.restart import RestartPolicy
from corral.core.states import (
    REST_STATES,
    Goal,
    ProcessKind,
    RestartMode,
    ServiceType,
    State,
    TimerKind,
)
from tests.strategies import policies

#: Policies with a watchdog and a liveness probe, or neither.
HEALTH: dict[str, st.SearchStrategy[object]] = {
    "watchdog": st.sampled_from([None, 1.0]),
    "liveness_failures": st.sampled_from([0, 1, 2]),
}

ORDER = {
    ProcessKind.PRE_START: 0,
    ProcessKind.MAIN: 1,
    ProcessKind.POST_START: 2,
    ProcessKind.PRE_STOP: 3,
    ProcessKind.POST_STOP: 4,
}


class World(RuleBasedStateMachine):
    """The process world around one instance; subclasses choose how it begins."""

    policy: Policy

    def begin(self, policy: Policy, spawn_ok: list[bool]) -> None:
        self.policy = policy
        self.inst = Instance(job="job")
        self.now = 0.0
        self.alive: set[ProcessKind] = set()
        self.timer = None
        self.held = False
        self.spawn_ok = spawn_ok
        self.spawns = 0
        self.walk: list[ProcessKind] = []
        self.queue: list[ins.Input] = []
        self.draining = False
        self.adopted = False
        self.unready = 0  # respawns in a row after tries that never became ready
        self.came_up = False  # the current try's process became ready
        self.respawned_at: list[float] = []  # since a manual start from rest
        self.destroyed = False  # a destroy came since the last ``starting``
        self.post_stop_failed = False  # the post-stop of this walk failed (no destroy since)
        self.stop_failed = False  # a ``stopped`` that reported it was just emitted

    def feed(self, event: ins.Input) -> None:
        """Like the daemon: inputs caused by applying effects wait until all are applied."""
        self.queue.append(event)
        if self.draining:
            return
        self.draining = True
        try:
            while self.queue:
                before = self.inst
                self.inst, effects = step(self.inst, self.policy, self.queue.pop(0), self.now)
                self.count_respawns(before, self.inst)
                for effect in effects:
                    self.apply(effect)
                self.check_failed_stop()
        finally:
            self.draining = False

    def count_respawns(self, before: Instance, after: Instance) -> None:
        """The world's own tally of respawns, from what it sees between steps: when each
        came, and how many in a row followed a try that never became ready."""
        if after.ready and not before.ready:
            self.came_up = True
        for _ in range(after.restarts - before.restarts):
            self.unready = 0 if self.came_up else self.unready + 1
            self.came_up = False
            self.respawned_at.append(self.now)

    def check_failed_stop(self) -> None:
        """A stop walk whose post-stop failed rests in failed (a respawn goes on)."""
        if self.stop_failed and self.inst.goal is Goal.STOP:
            assert self.inst.state is State.FAILED, "a failed post-stop rests in failed"
        self.stop_failed = False

    def post_stop_fails(self) -> None:
        """What the world did to post-stop makes it fail, unless a destroy killed it."""
        if not self.destroyed:
            self.post_stop_failed = True

    def start_from_rest(self) -> None:
        """A user's start out of waiting or failed begins a fresh series."""
        if self.inst.state in (State.WAITING, State.FAILED):
            self.unready, self.came_up, self.respawned_at = 0, False, []

    def apply(self, effect: fx.Effect) -> None:
        match effect:
            case fx.Spawn(process=kind):
                assert kind not in self.alive, f"{kind} spawned twice"
                if kind is ProcessKind.PRE_STOP or kind is ProcessKind.POST_STOP:
                    self.walk = [k for k in self.walk if ORDER[k] >= 3]
                if self.walk:
                    assert ORDER[self.walk[-1]] <= ORDER[kind] or kind in (
                        ProcessKind.PRE_START,
                        ProcessKind.MAIN,
                    ), f"{kind} after {self.walk}"
                self.walk.append(kind)
                if kind is ProcessKind.MAIN:
                    self.adopted = False
                ok = self.spawn_ok[self.spawns % len(self.spawn_ok)]
                self.spawns += 1
                if ok:
                    self.alive.add(kind)
                    self.feed(ins.Spawned(kind))
                else:
                    if kind is ProcessKind.POST_STOP:
                        self.post_stop_fails()
                    self.feed(ins.SpawnFailed(kind, "no such file"))
            case fx.SetTimer(timer=kind):
                self.timer = kind
            case fx.CancelTimer():
                self.timer = None
            case fx.Emit(name=name, env=env, hold=hold):
                if name == "starting":
                    self.walk = []
                    self.destroyed = False
                if name == "stopped" and self.post_stop_failed:
                    assert env["RESULT"] == "failed", env
                    self.post_stop_failed, self.stop_failed = False, True
                if hold:
                    assert not self.held
                    self.held = True
            case _:
                pass

    # -- what the world can do ------------------------------------------------------------

    @precondition(lambda self: bool(self.alive))
    @rule(data=st.data(), status=st.sampled_from([0, 1, 2]), killed=st.booleans())
    def exit(self, data: st.DataObject, status: int, killed: bool) -> None:
        kind = data.draw(st.sampled_from(sorted(self.alive)))
        self.alive.discard(kind)
        if kind is ProcessKind.POST_STOP and (killed or status != 0):
            self.post_stop_fails()
        self.feed(ins.Exited(kind, None if killed else status, 9 if killed else None))

    @rule()
    def ready(self) -> None:
        self.feed(ins.Ready())

    @precondition(lambda self: self.inst.launched)
    @rule()
    def pid_file_names_the_main(self) -> None:
        self.alive.add(ProcessKind.MAIN)
        self.adopted = True
        self.feed(ins.Adopted())

    @rule()
    def probe_gives_up(self) -> None:
        self.feed(ins.NotReady("probe gave up"))

    @rule()
    def watchdog_ping(self) -> None:
        self.feed(ins.WatchdogPing())

    @rule(ok=st.booleans())
    def liveness_probe(self, ok: bool) -> None:
        self.feed(ins.Liveness(ok, "" if ok else "refused"))

    @rule()
    def reloading(self) -> None:
        self.feed(ins.Reloading())

    @rule(seconds=st.sampled_from([0.5, 100.0]))
    def extend_timeout(self, seconds: float) -> None:
        self.feed(ins.ExtendTimeout(seconds))

    @precondition(lambda self: self.timer is not None)
    @rule(dt=st.sampled_from([0.0, 0.5, 5.0, 30.0]))
    def fire_timer(self, dt: float) -> None:
        self.now += dt
        kind, self.timer = self.timer, None
        assert kind is not None
        if kind is TimerKind.HOOK and ProcessKind.POST_STOP in self.alive:
            self.post_stop_fails()  # it timed out
        self.feed(ins.TimerFired(kind))

    @precondition(lambda self: self.held)
    @rule()
    def release(self) -> None:
        self.held = False
        self.feed(ins.Released())

    @rule(dt=st.sampled_from([1.0, 20.0]))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def world_agrees(self) -> None:
        inst = self.inst
        assert inst.main_alive == (ProcessKind.MAIN in self.alive)
        hooks = self.alive - {ProcessKind.MAIN}
        assert hooks == ({inst.hook} if inst.hook else set())
        assert inst.timer == self.timer

    @invariant()
    def running_has_a_live_main(self) -> None:
        inst = self.inst
        needs_main = self.policy.has_main and self.policy.type is not ServiceType.ONESHOT
        if inst.state is State.RUNNING and needs_main:
            assert inst.main_alive

    @invariant()
    def a_running_main_is_watched(self) -> None:
        inst = self.inst
        if inst.state is State.RUNNING and inst.main_alive and self.policy.watchdog is not None:
            assert self.timer is TimerKind.WATCHDOG, "a running main without its watchdog"
        if self.timer is TimerKind.WATCHDOG:
            assert inst.state is State.RUNNING and inst.main_alive

    @invariant()
    def only_an_abort_walk_aborts(self) -> None:
        if self.inst.aborting:
            assert self.inst.state in (State.STOPPING, State.KILLED, State.POST_STOP)
            assert self.inst.failure is not None or self.inst.state is State.POST_STOP

    @invariant()
    def rest_states_match_goal(self) -> None:
        inst = self.inst
        if inst.state in (State.WAITING, State.FAILED):
            assert inst.goal is Goal.STOP
            assert not self.alive and self.timer is None and not self.held
        if inst.state is State.RUNNING:
            assert inst.goal is Goal.START or inst.wants_down is False

    @invariant()
    def transient_states_wait_for_something(self) -> None:
        inst = self.inst
        if inst.state in REST_STATES:
            return
        waiting_on = (
            self.held
            or self.timer is not None
            or inst.hook is not None
            or (inst.main_alive and inst.state in (State.SPAWNED, State.KILLED))
        )
        if inst.launched:
            assert inst.state is State.SPAWNED
            assert self.timer is not None, "a forking start waits for its pid file with a deadline"
        assert waiting_on, f"{inst.state} waits for nothing"

    @invariant()
    def no_respawn_loop_past_the_limit(self) -> None:
        """A crash loop ends in failed: no more than ``burst`` respawns within a window, nor
        in a row after tries that never became ready, whether each try took a moment or
        longer than the window."""
        restart = self.policy.restart
        burst = restart.burst
        assert self.unready <= burst, f"{self.unready} unready respawns in a row, limit {burst}"
        if self.respawned_at:
            last = self.respawned_at[-1]
            recent = [t for t in self.respawned_at if last - t < restart.interval]
            assert len(recent) <= burst, f"{len(recent)} respawns in {restart.interval}s"

    def teardown(self) -> None:
        """A cooperative world brings the instance to rest where its goal points."""
        if not hasattr(self, "policy"):
            return
        self.spawn_ok = [True]
        for _ in range(200):
            inst = self.inst
            if inst.state is State.RUNNING and inst.main_alive and not inst.ready:
                self.feed(ins.Ready())  # a reload ends
                continue
            if inst.settled:
                break
            if self.held:
                self.release()
            elif inst.hook is not None:
                self.alive.discard(inst.hook)
                self.feed(ins.Exited(inst.hook, 0))
            elif inst.state is State.SPAWNED and inst.launched:
                self.pid_file_names_the_main()
            elif inst.state is State.SPAWNED and inst.main_alive:
                if self.policy.type is ServiceType.ONESHOT or (
                    self.policy.type is ServiceType.FORKING and not self.adopted
                ):
                    self.alive.discard(ProcessKind.MAIN)
                    self.feed(ins.Exited(ProcessKind.MAIN, 0))
                else:
                    self.feed(ins.Ready())
            elif inst.state is State.KILLED and inst.main_alive:
                self.alive.discard(ProcessKind.MAIN)
                self.feed(ins.Exited(ProcessKind.MAIN, None, 15))
            elif self.timer is not None:
                self.fire_timer(0.0)
            else:
                raise AssertionError(f"stuck in {inst.state} with goal {inst.goal}")
        assert self.inst.settled, f"not settled: {self.inst}"
        if self.inst.state is State.RUNNING:
            assert self.inst.ready


class MachineWorld(World):
    """Any policy, any spawn failing or not."""

    @initialize(policy=policies(**HEALTH), spawn_ok=st.lists(st.booleans(), min_size=1, max_size=4))
    def setup(self, policy: Policy, spawn_ok: list[bool]) -> None:
        self.begin(policy, spawn_ok)

    # -- what users (and the daemon's dependency logic) can do ----------------------------

    @rule(goal=st.sampled_from(list(Goal)))
    def set_goal(self, goal: Goal) -> None:
        if goal is Goal.START:
            self.start_from_rest()
        self.feed(ins.SetGoal(goal))

    @rule()
    def restart(self) -> None:
        self.start_from_rest()
        self.feed(ins.Restart())
        assert self.inst.goal is Goal.START

    @rule()
    def requirement_fails(self) -> None:
        self.feed(ins.RequirementFailed("requirement db failed"))

    @rule()
    def destroy(self) -> None:
        """As the daemon does: SIGKILL everything first, then tell the machine."""
        self.destroyed = True
        self.post_stop_failed = False  # a destroy overrides what the hook did
        self.feed(ins.Destroy())
        assert self.inst.goal is Goal.STOP
        for kind in sorted(self.alive):
            self.alive.discard(kind)
            self.feed(ins.Exited(kind, None, 9))


class CrashLoopWorld(World):
    """The same world with policies that always respawn, within a small limit: crash loops,
    long and short, are common here and rare in the world above."""

    @initialize(
        policy=policies(
            **HEALTH,
            has_main=st.just(True),
            restart=st.builds(
                RestartPolicy,
                mode=st.just(RestartMode.ALWAYS),
                delay=st.sampled_from([0.0, 0.1, 1.0]),
                burst=st.integers(1, 3),
                interval=st.sampled_from([1.0, 10.0]),
            ),
        ),
    )
    def setup(self, policy: Policy) -> None:
        """Every spawn works (a spawn failure gives up at once) and the goal is start."""
        self.begin(policy, [True])
        self.feed(ins.SetGoal(Goal.START))

    @precondition(lambda self: ProcessKind.MAIN in self.alive)
    @rule(status=st.sampled_from([1, None]))
    def dies_after_a_long_try(self, status: int | None) -> None:
        """The main process fails after longer than any window (ready or not by then)."""
        self.now += 30.0
        self.alive.discard(ProcessKind.MAIN)
        self.feed(ins.Exited(ProcessKind.MAIN, status, None if status is not None else 9))


MachineWorld.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestMachineWorld = MachineWorld.TestCase
CrashLoopWorld.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestCrashLoopWorld = CrashLoopWorld.TestCase
