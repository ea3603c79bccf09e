"""What the daemon keeps per job and per instance, beside the pure machine's records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from msgspec import Struct, field

from corral.core.definition import Definition
from corral.core.evaluate import Progress
from corral.core.instances import label_of
from corral.core.records import Instance
from corral.core.states import REST_STATES, Goal, ProcessKind, State
from corral.daemon.fdstore import FdStore
from corral.daemon.liveness import LivenessProbe
from corral.daemon.logs import ServiceLog
from corral.daemon.oneoff import OneOff
from corral.daemon.readiness import NotifyChannel, PidFileWatch, ProbeRunner, ReadyPipe
from corral.daemon.reloads import ReloadWait
from corral.daemon.spawn import Child

#: A waiter's predicate: True/False ends the wait with that outcome, None keeps waiting.
Predicate = Callable[[Instance], bool | None]


class Runtime(Struct, eq=False):
    """One instance as the shell sees it: the machine's record plus pids, timer and waiters."""

    definition: Definition  # the definition this instance was started from
    inst: Instance
    env: dict[str, str] = field(default_factory=dict)  # what its start carried
    children: dict[ProcessKind, Child] = field(default_factory=dict)
    groups: dict[ProcessKind, int] = field(default_factory=dict)  # pgid of each kind's last child
    timer: asyncio.TimerHandle | None = None
    waiters: list[tuple[Predicate, asyncio.Future[bool]]] = field(default_factory=list)
    held: str | None = None  # the lifecycle event holding this instance, until released
    readiness: Readiness | None = None
    status_text: str = ""  # the last STATUS= of a notify service
    oneoffs: dict[OneOff, None] = field(default_factory=dict)  # actions, exec probes running
    stop_progress: Progress = Progress()  # how far its ``stop_on`` has come
    blockers: list[Runtime] = field(default_factory=list)  # what its held event waits for
    holders: dict[Runtime, None] = field(default_factory=dict)  # held events waiting on it
    renew: bool = False  # a restart: take the current definition when starting again
    #: Its next main process, started at its last one's exit (``Processes._exited``): the
    #: child and the read end of its output pipe, taken by the walk's spawn.
    launched: tuple[Child, int] | None = None
    #: A forking service: when its launcher started (clock ticks; what its pid file names
    #: must start later, ``daemon/forking.py``), and the group of the daemon it adopted.
    launch_ticks: int | None = None
    adopted_group: int | None = None
    #: Its last status row and what that was made from (see ``status_view._status_row``).
    row_memo: tuple[object, ...] | None = None
    #: An ``accept = true`` instance's connection, until its main process has it.
    connection: int | None = None
    #: The fds its service handed corral (``FDSTORE=1``), kept until a stop ends at rest.
    fd_store: FdStore | None = None

    @property
    def variables(self) -> dict[str, str]:
        """Its environment as ``$VAR`` in conditions sees it: the definition's, then its start's."""
        return {**self.definition.env, **self.env}

    @property
    def main_pid(self) -> int | None:
        child = self.children.get(ProcessKind.MAIN)
        return child.pid if child is not None else None


class Readiness(Struct, eq=False):
    """What is listening for the current main process's readiness, and watching its health
    while it lives (its liveness probe, a reload under way)."""

    notify: NotifyChannel | None = None
    pipe: ReadyPipe | None = None
    pid_watch: PidFileWatch | None = None
    probe: ProbeRunner | None = None
    liveness: LivenessProbe | None = None
    reload: ReloadWait | None = None

    def close(self) -> None:
        if self.notify is not None:
            self.notify.close()
        if self.pipe is not None:
            self.pipe.close()
        if self.liveness is not None:
            self.liveness.cancel()
            self.liveness = None
        if self.reload is not None:
            self.reload.settle("the main process exited during the reload")
            self.reload = None
        self.stop_waiting()

    def stop_waiting(self) -> None:
        """The start is over (ready or not): no more pid file polls or probe attempts."""
        if self.pid_watch is not None:
            self.pid_watch.cancel()
            self.pid_watch = None
        if self.probe is not None:
            self.probe.cancel()
            self.probe = None


class Job(Struct, eq=False):
    """A service name with its current definition and its instances."""

    definition: Definition
    instances: dict[str, Runtime] = field(default_factory=dict)
    log: ServiceLog | None = None
    since: float = 0.0  # when it appeared (the placeholder row of an instantiated job)
    removed: bool = False  # gone from the configuration; kept while instances still run


class Target(Struct, frozen=True):
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


def label(rt: Runtime) -> str:
    """``name`` or ``name:instance``, as users address it."""
    return label_of(rt.inst.job, rt.inst.key)
