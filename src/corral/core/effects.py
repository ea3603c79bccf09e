"""What the daemon must do on the machine's behalf: the outputs of the state machine."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.core.states import ProcessKind, TimerKind


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start this process; answer with ``Spawned`` or ``SpawnFailed``."""

    process: ProcessKind


@dataclass(frozen=True, slots=True)
class Signal:
    """Send ``signal`` to the whole process group of this process (if it is still there)."""

    process: ProcessKind
    signal: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Arm the instance's one timer (replacing any armed one); answer with ``TimerFired``."""

    timer: TimerKind
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Disarm the instance's timer."""


@dataclass(frozen=True, slots=True)
class Emit:
    """Emit a lifecycle event; when ``hold``, answer with ``Released`` once it has settled."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    hold: bool = False


@dataclass(frozen=True, slots=True)
class Note:
    """Something worth a line in the instance's log (a hook failed, a limit was hit)."""

    text: str


Effect = Spawn | Signal | SetTimer | CancelTimer | Emit | Note
