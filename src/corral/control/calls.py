"""What each method of the Python clients sends, and how its reply becomes records.

Kept apart from any I/O (cf. httpx's transports, sans-I/O): ``corral.Client`` and
``corral.AsyncClient`` differ only in how they carry a ``Call`` over the socket, so both say
and understand exactly the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from corral.control.address import parse_targets
from corral.control.records import Emitted, Event, LogLine, Outcome, Status

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and what its result becomes."""

    cmd: str
    args: dict[str, Any]
    parse: Callable[[Any], T]


@dataclass(frozen=True, slots=True)
class Subscription(Generic[T]):
    """A streaming request: its backlog, then each ``{key: item}`` line, as records."""

    cmd: str
    args: dict[str, Any]
    key: str
    parse: Callable[[Any], T]


def _rows(parse: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def each(result: Any) -> list[T]:
        return [parse(item) for item in result or ()]

    return each


def status(names: Iterable[str]) -> Call[list[Status]]:
    words = list(names)
    args = {"targets": parse_targets(words)} if words else {}
    return Call("status", args, _rows(Status.from_json))


def change(verb: str, names: Iterable[str], wait: bool) -> Call[list[Outcome]]:
    """``start``, ``stop`` or ``restart``."""
    return Call(verb, {"targets": parse_targets(names), "wait": wait}, _rows(Outcome.from_json))


def wait(names: Iterable[str], timeout: float | None) -> Call[list[Outcome]]:
    return Call("wait", {"names": list(names), "timeout": timeout}, _rows(Outcome.from_json))


def emit(event: str, env: Mapping[str, str]) -> Call[Emitted]:
    return Call("emit", {"event": event, "env": dict(env), "wait": True}, Emitted.from_json)


def logs(names: Iterable[str], lines: int | None) -> Call[list[LogLine]]:
    return Call("logs", _logs_args(names, lines), _rows(LogLine.from_json))


def follow_logs(names: Iterable[str], lines: int | None) -> Subscription[LogLine]:
    return Subscription("logs", {**_logs_args(names, lines), "follow": True}, "log",
                        LogLine.from_json)  # fmt: skip


def events(lines: int | None) -> Subscription[Event]:
    return Subscription("events", {"lines": lines, "follow": True}, "event", Event.from_json)


def _logs_args(names: Iterable[str], lines: int | None) -> dict[str, Any]:
    words = list(names)
    return {"targets": parse_targets(words) if words else [], "lines": lines}
