"""What can happen to an instance: the inputs of the state machine.

The daemon turns OS happenings (a child exited, a readiness message arrived, a timer fired)
and commands into these values and hands them to :func:`corral.core.machine.step`.
"""

from __future__ import annotations

from msgspec import Struct

from corral.core.states import Goal, ProcessKind, TimerKind


class SetGoal(Struct, frozen=True):
    """A command changed the goal (``start`` / ``stop``)."""

    goal: Goal


class Restart(Struct, frozen=True):
    """An atomic stop-then-start; the goal stays ``start``."""


class Spawned(Struct, frozen=True):
    """A process the machine asked for was forked and exec'd."""

    process: ProcessKind


class SpawnFailed(Struct, frozen=True):
    """A process could not be started at all (missing binary, unknown user...)."""

    process: ProcessKind
    error: str


class Exited(Struct, frozen=True):
    """A process of the instance ended; exactly one of ``status`` / ``signal`` is set."""

    process: ProcessKind
    status: int | None = None
    signal: int | None = None


class Ready(Struct, frozen=True):
    """The main process reported readiness (notify, ready_fd, pid file, probe)."""


class TimerFired(Struct, frozen=True):
    """The instance's armed timer expired."""

    timer: TimerKind


class Released(Struct, frozen=True):
    """Every job the held lifecycle event (``starting``/``stopping``) touched has settled."""


class Adopted(Struct, frozen=True):
    """A ``forking`` service's pid file named a live process, which is now the main one."""


class NotReady(Struct, frozen=True):
    """A readiness probe gave up (its own timeout); the start fails like a timeout."""

    reason: str


class RequirementFailed(Struct, frozen=True):
    """A service this instance ``requires`` failed or was stopped while it was starting."""

    reason: str


class ExtendTimeout(Struct, frozen=True):
    """``EXTEND_TIMEOUT_USEC``: the armed start (or stop) deadline moves to ``seconds`` away."""

    seconds: float


class WatchdogPing(Struct, frozen=True):
    """``WATCHDOG=1``: the main process is alive; its ``watchdog`` deadline starts again."""


class Liveness(Struct, frozen=True):
    """One ``liveness`` probe's answer while running; ``failures`` in a row abort the main."""

    ok: bool
    detail: str = ""


class Reloading(Struct, frozen=True):
    """``RELOADING=1``: the service reloads; not ready until its next ``READY=1``."""


class Destroy(Struct, frozen=True):
    """``corral destroy``: every process was SIGKILLed; go down at once, no stop hooks."""


Input = (
    SetGoal | Restart | Spawned | SpawnFailed | Exited | Ready | TimerFired | Released
    | Adopted | NotReady | RequirementFailed | ExtendTimeout | WatchdogPing | Liveness
    | Reloading | Destroy
)  # fmt: skip
