"""What the daemon must do on the machine's behalf: the outputs of the state machine."""

from __future__ import annotations

from msgspec import Struct, field

from corral.core.states import ProcessKind, TimerKind


class Spawn(Struct, frozen=True):
    """Start this process; answer with ``Spawned`` or ``SpawnFailed``."""

    process: ProcessKind


class Signal(Struct, frozen=True):
    """Send ``signal`` to the whole process group of this process (if it is still there)."""

    process: ProcessKind
    signal: int


class SetTimer(Struct, frozen=True):
    """Arm the instance's one timer (replacing any armed one); answer with ``TimerFired``."""

    timer: TimerKind
    seconds: float


class CancelTimer(Struct, frozen=True):
    """Disarm the instance's timer."""


class Emit(Struct, frozen=True):
    """Emit a lifecycle event; when ``hold``, answer with ``Released`` once it has settled."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    hold: bool = False


class Note(Struct, frozen=True):
    """Something worth a line in the instance's log (a hook failed, a limit was hit)."""

    text: str


Effect = Spawn | Signal | SetTimer | CancelTimer | Emit | Note
