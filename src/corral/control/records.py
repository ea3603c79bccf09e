"""What the Python clients hand back: typed, immutable records of the daemon's replies.

Each record's attributes are the keys of the JSON the protocol carries (docs/protocol.md),
so ``client.status()[0].state`` is ``corral status --json``'s ``state``. A key a newer
daemon adds that a record does not know yet is kept in ``extra`` rather than refused, and
``as_dict()`` gives it back as a JSON object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

__all__ = ["Emitted", "Event", "GoalName", "LogLine", "Outcome", "StateName", "Status"]

#: The one thing a command changes (DESIGN.md, "Vocabulary").
GoalName = Literal["start", "stop"]
#: Where an instance is in the state machine (DESIGN.md, "The state machine").
StateName = Literal[
    "waiting",
    "starting",
    "pre-start",
    "spawned",
    "post-start",
    "running",
    "pre-stop",
    "stopping",
    "killed",
    "post-stop",
    "failed",
]


class _FromJson:
    """Building a record from a JSON object: known keys become attributes, the rest ``extra``."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]  # set by @dataclass on each record

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Self:
        known = cls.__dataclass_fields__.keys() - {"extra"}
        args = {key: value for key, value in obj.items() if key in known}
        if "extra" in cls.__dataclass_fields__:
            args["extra"] = {key: value for key, value in obj.items() if key not in known}
        return cls(**args)

    def as_dict(self) -> dict[str, Any]:
        """The record as a JSON object: every attribute, and the ``extra`` keys beside them."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out.update(out.pop("extra", None) or {})
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(_FromJson):
    """One instance (or a service at rest with none), as ``corral status --json`` shows it."""

    name: str
    instance: str  #: ``""`` when the service is not instantiated
    goal: GoalName
    state: StateName
    pid: int | None  #: the main process; None when there is none
    ready: bool
    restarts: int  #: automatic respawns
    exit_status: int | None  #: the last main exit status
    exit_signal: str | None  #: the signal that ended the last main process, without ``SIG``
    since: float  #: epoch seconds of the last state change
    stale: bool  #: runs an older definition than the current one
    description: str = ""
    error: str | None = None  #: the last failure in words
    status_text: str | None = None  #: the last ``STATUS=`` of a notify service
    done: bool = False  #: a oneshot that exited 0: running with no process
    enabled: bool = True  #: False after ``corral disable NAME``
    last_run: float | None = None  #: timer jobs and scheduled runs: epoch seconds
    next_run: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  #: keys this record does not know

    @property
    def address(self) -> str:
        """``NAME`` or ``NAME:INSTANCE``, as the CLI and the client's methods take it."""
        return f"{self.name}:{self.instance}" if self.instance else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome(_FromJson):
    """Where one instance got to after ``start``, ``stop``, ``restart``, ``wait`` or ``emit``."""

    name: str
    instance: str
    state: StateName
    pid: int | None
    done: bool = False  #: a oneshot that exited 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Emitted:
    """What an event started and stopped (once all of it settled, for a waiting emit)."""

    started: list[Outcome]
    stopped: list[Outcome]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Emitted:
        return cls(
            started=[Outcome.from_json(row) for row in obj.get("started") or ()],
            stopped=[Outcome.from_json(row) for row in obj.get("stopped") or ()],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(_FromJson):
    """An event as ``corral events`` shows it: its name and environment, and when it was."""

    name: str
    env: Mapping[str, str]
    time: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine(_FromJson):
    """One line of a service's output (or of corral's words about it, ``process="corral"``)."""

    time: float
    service: str
    instance: str
    process: str  #: ``main``, a hook's name, or ``corral``
    text: str
