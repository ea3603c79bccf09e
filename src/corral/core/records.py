"""What the state machine knows of an instance and of its definition: immutable records,
replaced (never changed) by each step. Pure."""

from __future__ import annotations

import signal as _signal

from msgspec import Struct

from corral.core.restart import RestartPolicy
from corral.core.states import Goal, ProcessKind, ServiceType, State, TimerKind

SIGKILL = int(_signal.SIGKILL)
SIGTERM = int(_signal.SIGTERM)
#: What a main process that stopped answering gets (systemd's WatchdogSignal).
SIGABRT = int(_signal.SIGABRT)


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
    watchdog: float | None = None  # a running main says WATCHDOG=1 at least this often
    liveness_failures: int = 0  # a liveness probe failing this many times in a row; 0: none

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
    failure: Failure | None = None  # the first failure of this walk: what stopped reports
    hook_failure: Failure | None = None  # the running hook timed out
    main_alive: bool = False
    launched: bool = False  # forking: the launcher exited 0; waiting for the pid file
    destroying: bool = False  # this stop walk is a ``destroy``: no hooks, SIGKILL only
    aborting: bool = False  # this stop walk is a watchdog's or liveness's: SIGABRT first
    hook: ProcessKind | None = None  # the hook process alive now
    timer: TimerKind | None = None
    ready: bool = False
    ready_since: float | None = None
    history: tuple[float, ...] = ()  # respawn times inside the restart_limit window
    unready: int = 0  # tries in a row whose process never became ready (restart_limit)
    failed_checks: int = 0  # liveness probes failed in a row since it last passed
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


_SIGNAL_NAMES = {int(sig): sig.name.removeprefix("SIG") for sig in _signal.Signals}


def signal_name(number: int) -> str:
    """``15`` → ``TERM``, as Upstart's ``EXIT_SIGNAL`` spells it (a table: the enum's own
    lookup by value costs microseconds, at every exit)."""
    return _SIGNAL_NAMES.get(number) or str(number)
