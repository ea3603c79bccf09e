"""The supervisor: the daemon's one owner of instances, and the face the control commands
talk to. It builds the rooms and answers commands by asking them; it decides nothing itself.

    table.py        jobs, instances, addressing; ``version`` for whoever shows them
    driver.py       steps the pure machine and applies its effects, in order
    ordering.py     Upstart's holds on starting/stopping, and the dependency gates
    activation.py   start_on, stop_on, while: what an event or a state starts or stops
    world.py        the seam every event and state comes in through (bridges included)
    processes.py    spawn, exits, signals and sweeps; ``ready_watch.py`` for readiness
    actions.py      actions and exec probes; ``launch.py`` starts every process
    status_view.py  the rows of ``corral status``, kept while nothing shown changed
    journal.py      service output and corral's own words, into logs and the console

``docs/architecture.md`` follows a ``corral start`` and an exit through them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Mapping

from corral.control.protocol import StatusRow
from corral.core import inputs as ins
from corral.core.definition import Definition
from corral.core.graph import Graph
from corral.core.states import Goal, ServiceType
from corral.daemon.actions import Actions
from corral.daemon.activation import Activation, Changes
from corral.daemon.cgroups import Cgroups
from corral.daemon.driver import Driver
from corral.daemon.journal import Journal
from corral.daemon.launch import Launcher
from corral.daemon.logs import Console, ServiceLog
from corral.daemon.oneoff import Outcome
from corral.daemon.processes import Processes
from corral.daemon.reaper import Reaper
from corral.daemon.reconfigure import Summary, apply_definitions
from corral.daemon.runtime import Job, Predicate, Runtime, Target, label, stopped
from corral.daemon.status_view import StatusView
from corral.daemon.table import InstanceTable, at_rest
from corral.daemon.world import Record, World
from corral.errors import OperationFailed


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
        loop = asyncio.get_running_loop()
        self._cgroups = cgroups
        self.table = table = InstanceTable(definitions, graph, log_dir, clock)
        self.journal = journal = Journal(table, console)
        self.activation = activation = Activation(table, journal.say_job)
        self.driver = driver = Driver(loop, table, journal, activation, clock)
        self.world = World(activation, driver.apply_changes, settle=lambda: driver.feed_all(()))
        launcher = Launcher(base_env, cgroups, wakeup_fd)
        self._actions = Actions(loop, reaper, launcher, journal)
        self.processes = Processes(
            loop, reaper, table, journal, launcher, self._actions, clock, driver.feed,
            may_respawn_early=self._may_respawn_early,
        )  # fmt: skip
        driver.connect(self.processes, self.world.emit, self._came_to_rest)
        # type = "dbus": ready once a bridge says its bus_name has an owner (ready_watch.py).
        self.world.reports[self.processes.ready.world_reported] = None
        self._view = StatusView(table, clock)

    # -- what the rooms need of each other -----------------------------------------------

    def _may_respawn_early(self, rt: Runtime) -> bool:
        """Nothing could hold or turn the walk from a main process's exit to its respawn:
        no step under way, no dependency on or of the service, no ``while`` or ``stop_on``
        of its own, nobody listening for ``starting``/``stopping``."""
        name = rt.inst.job
        graph = self.table.graph
        definition = rt.definition
        return (
            not self.driver.draining
            and definition.stop_on is None
            and definition.while_ is None
            and not self.activation.holds_heard
            and not graph.before(name)
            and not graph.dependents_of(name)
        )

    def _came_to_rest(self, rt: Runtime) -> None:
        if self._cgroups is not None and not rt.oneoffs:
            self._cgroups.remove_soon(label(rt))

    # -- read-only views -----------------------------------------------------------------

    @property
    def jobs(self) -> dict[str, Job]:
        return self.table.jobs

    @property
    def graph(self) -> Graph:
        return self.table.graph

    @property
    def events(self) -> Iterable[Record]:
        return self.world.history

    @property
    def event_followers(self) -> dict[Callable[[Record], None], None]:
        return self.world.followers

    @property
    def shutting_down(self) -> bool:
        return self.table.shutting_down

    def job(self, name: str, starting: bool = False) -> Job:
        return self.table.job(name, starting)

    def instances(self, target: Target, create: bool = False, every: bool = False) -> list[Runtime]:
        return self.table.instances(target, create, every)

    def key_of(self, target: Target) -> str | None:
        return self.table.key_of(target)

    def status(self, targets: Iterable[Target] = ()) -> list[StatusRow]:
        return self._view.status(targets)

    def log_of(self, name: str) -> ServiceLog:
        job = self.table.job(name)
        assert job.log is not None
        return job.log

    def until(self, rt: Runtime, predicate: Predicate) -> asyncio.Future[bool]:
        """A future that resolves once ``predicate`` gives an outcome for this instance."""
        return self.driver.until(rt, predicate)

    def busy_instances(self) -> int:
        """How many instances are not at rest: what a stop of everything has to stop."""
        return sum(not at_rest(rt) for rt in self.table.runtimes())

    # -- commands ------------------------------------------------------------------------

    def set_goal(self, targets: Iterable[Target], goal: Goal) -> list[Runtime]:
        runtimes = self.table.resolve(targets, create=goal is Goal.START)
        self.driver.feed_all((rt, ins.SetGoal(goal)) for rt in runtimes)
        return runtimes

    def restart(self, targets: Iterable[Target]) -> list[Runtime]:
        runtimes = self.table.resolve(targets, create=True, every=True)
        for rt in runtimes:
            rt.renew = True  # a restart moves the instance to the current definition
        self.driver.feed_all((rt, ins.Restart()) for rt in runtimes)
        return runtimes

    def destroy(self, targets: Iterable[Target]) -> list[Runtime]:
        """SIGKILL every process of the targets and of everything that requires or wants
        them (transitively), wherever those processes went; their goals become stop."""
        table = self.table
        names: dict[str, None] = {}
        for target in targets:
            names.update(
                dict.fromkeys(
                    table.graph.closure_of_dependents(table.job(target.name).definition.name)
                )
            )
        runtimes = [rt for name in names for rt in table.jobs[name].instances.values()]
        self.processes.kill_trees(runtimes)
        for rt in runtimes:
            self.journal.say(rt, "destroyed: every process SIGKILLed")
        self.driver.feed_all((rt, ins.Destroy()) for rt in runtimes)
        return runtimes

    def kill_everything(self) -> int:
        """SIGKILL every instance not at rest (a second Ctrl-C); how many there were."""
        busy = [rt for rt in self.table.runtimes() if not at_rest(rt)]
        names = dict.fromkeys(rt.inst.job for rt in busy)
        if names:
            self.destroy(Target(name) for name in names)
        return len(busy)

    def reload(
        self, targets: Iterable[Target]
    ) -> tuple[list[str], list[tuple[str, asyncio.Future[str | None]]]]:
        """Send each main process its reload_signal. Returns the names of those not running,
        and for each notify instance its name and a future that gives None once its reload
        is done, else why not (``reloads.py``: RELOADING=1, then READY=1)."""
        idle: list[str] = []
        reloads: list[tuple[str, asyncio.Future[str | None]]] = []
        for rt in self.table.resolve(targets, create=False):
            pid = rt.main_pid
            if pid is None:
                idle.append(label(rt))
                continue
            if rt.definition.type is ServiceType.NOTIFY:
                reloads.append((label(rt), self.processes.ready.expect_reload(rt)))
            try:
                os.kill(pid, rt.definition.reload_signal)
            except ProcessLookupError:
                idle.append(label(rt))
        return idle, reloads

    def emit(self, name: str, env: Mapping[str, str]) -> Changes:
        """An event from a command or a bridge (``world.py``)."""
        return self.world.emit(name, env)

    def states(
        self, source: str, changes: Iterable[tuple[str, Mapping[str, str], bool]], replace: bool
    ) -> None:
        """A bridge's states (``world.py``): each (name, variables, holds); with ``replace``,
        those that hold are all that ``source`` holds now."""
        world = self.world
        if replace:
            world.replace(source, [(name, env) for name, env, holds in changes if holds])
            return
        for name, env, holds in changes:
            world.hold(source, name, env, holds)

    async def action(
        self, target: Target, action: str, args: list[str], chain: list[str]
    ) -> Outcome:
        """Run one of a service's actions (``actions.py``)."""
        runtimes = self.table.instances(target)
        if not runtimes:
            raise OperationFailed(f"{target.name} has no instance to run {action} for")
        return await self._actions.action(runtimes[0], action, args, chain)

    def reconfigure(self, definitions: Mapping[str, Definition]) -> Summary:
        """Make ``definitions`` current (``reconfigure.py``); start new autostart services."""
        summary = apply_definitions(self.table, definitions, self.activation.forget)
        jobs = self.table.jobs
        added = [Target(name) for name in summary["added"] if jobs[name].definition.autostart]
        self.set_goal(added, Goal.START)  # also forgets what was marked idle
        return summary

    def startup(self) -> None:
        """Start every autostart service, as ``corral up`` does."""
        self.emit("startup", {})
        jobs = self.table.jobs
        self.set_goal(
            [Target(n) for n, job in jobs.items() if job.definition.autostart], Goal.START
        )

    async def shutdown(self) -> None:
        """Stop every instance, dependents first, and wait until all are down."""
        self.table.shutting_down = True
        runtimes = list(self.table.runtimes())
        self.driver.feed_all((rt, ins.SetGoal(Goal.STOP)) for rt in runtimes)
        await asyncio.gather(*(self.driver.until(rt, stopped) for rt in runtimes))
        self.processes.listeners.close_all()  # unix socket files go with the daemon
        for job in self.table.jobs.values():
            if job.log is not None:
                job.log.close()
        if self._cgroups is not None:
            self._cgroups.close()
