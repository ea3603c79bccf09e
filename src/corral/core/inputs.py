"""What can happen to an instance: the inputs of the state machine.

The daemon turns OS happenings (a child exited, a readiness message arrived, a timer fired)
and commands into these values and hands them to :func:`corral.core.machine.step`.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.core.states import Goal, ProcessKind, TimerKind


@dataclass(frozen=True, slots=True)
class SetGoal:
    """A command changed the goal (``start`` / ``stop``)."""

    goal: Goal


@dataclass(frozen=True, slots=True)
class Restart:
    """An atomic stop-then-start; the goal stays ``start``."""


@dataclass(frozen=True, slots=True)
class Spawned:
    """A process the machine asked for was forked and exec'd."""

    process: ProcessKind


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    """A process could not be started at all (missing binary, unknown user...)."""

    process: ProcessKind
    error: str


@dataclass(frozen=True, slots=True)
class Exited:
    """A process of the instance ended; exactly one of ``status`` / ``signal`` is set."""

    process: ProcessKind
    status: int | None = None
    signal: int | None = None


@dataclass(frozen=True, slots=True)
class Ready:
    """The main process reported readiness (notify, ready_fd, pid file, probe)."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The instance's armed timer expired."""

    timer: TimerKind


@dataclass(frozen=True, slots=True)
class Released:
    """Every job the held lifecycle event (``starting``/``stopping``) touched has settled."""


@dataclass(frozen=True, slots=True)
class Adopted:
    """A ``forking`` service's pid file named a live process, which is now the main one."""


@dataclass(frozen=True, slots=True)
class NotReady:
    """A readiness probe gave up (its own timeout); the start fails like a timeout."""

    reason: str


@dataclass(frozen=True, slots=True)
class RequirementFailed:
    """A service this instance ``requires`` failed or was stopped while it was starting."""

    reason: str


@dataclass(frozen=True, slots=True)
class ExtendTimeout:
    """``EXTEND_TIMEOUT_USEC``: the armed start (or stop) deadline moves to ``seconds`` away."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Destroy:
    """``corral destroy``: every process was SIGKILLed; go down at once, no stop hooks."""


Input = (
    SetGoal | Restart | Spawned | SpawnFailed | Exited | Ready | TimerFired | Released
    | Adopted | NotReady | RequirementFailed | ExtendTimeout | Destroy
)  # fmt: skip
