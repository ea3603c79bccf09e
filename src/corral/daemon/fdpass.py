"""Handing a main process what a socket-activated or watched service gets beyond its command:
fds at fixed numbers from 3 on (its sockets, its stored fds), a connection on fds 0 and 1,
and variables that must hold its own pid (``LISTEN_PID``, ``WATCHDOG_PID``).

Both spawn paths exec without running Python in the child (posix_spawn), or run it only
where corral must anyway (Popen, for cwd, credentials and umask), so a pid cannot be put
in the environment after the fork by corral itself. A tiny wrapper does it instead: the
process is ``/bin/sh -c 'export LISTEN_PID=$$ ...; exec "$@"'``, whose ``$$`` is the pid
the command keeps once exec'd over the shell. It costs one exec of sh (half a millisecond)
and only where a key asks for such a variable; every other spawn is untouched.

The fds are placed by dup2 in the child: as posix_spawn file actions, or in Popen's
``preexec_fn`` (Popen can pass fds only under their own numbers). A source may itself sit
on a number another source must go to, so each is first copied above every target.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from msgspec import Struct

#: The wrapper's script: the variables named after it get the process's own pid.
_OWN_PID = 'export {assignments}; exec "$@"'


class Handed(Struct, frozen=True):
    """What a main process is given beyond its command."""

    fds: tuple[int, ...] = ()  # corral's fds, placed at 3, 4, ... in order
    stdio: int | None = None  # a connection, placed at fds 0 and 1
    own_pid: tuple[str, ...] = ()  # variables set to the process's own pid

    @property
    def empty(self) -> bool:
        return not self.fds and self.stdio is None and not self.own_pid


def with_own_pid(argv: list[str], names: Sequence[str]) -> list[str]:
    """``argv`` run through the wrapper that sets ``names`` to its own pid (none: as is)."""
    if not names:
        return argv
    assignments = " ".join(f"{name}=$$" for name in names)
    return ["/bin/sh", "-c", _OWN_PID.format(assignments=assignments), argv[0], *argv]


def placements(handed: Handed, extra_fd: tuple[int, int] | None) -> list[tuple[int, int]]:
    """(target, source) of every fd above stdio the child gets."""
    placed = [(3 + number, fd) for number, fd in enumerate(handed.fds)]
    if extra_fd is not None:
        placed.append(extra_fd)
    return placed


@contextlib.contextmanager
def raised(placed: list[tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """The same placements with each source copied above every target (close-on-exec, in
    corral), so that no dup2 in the child overwrites a source still to be placed; the
    copies are closed again once the child is spawned."""
    floor = max((target for target, _ in placed), default=2) + 1
    copies: list[int] = []
    try:
        for _, source in placed:
            copies.append(fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, floor))
        yield [(target, copy) for (target, _), copy in zip(placed, copies, strict=True)]
    finally:
        for copy in copies:
            os.close(copy)


def spawn_actions(
    output_fd: int, stdio: int | None, placed: list[tuple[int, int]]
) -> list[tuple[Any, ...]]:
    """posix_spawn file actions: stdin and stdout on the connection (else stdin on
    /dev/null and stdout on the output pipe), stderr on the output pipe, then the fds."""
    if stdio is None:
        actions: list[tuple[Any, ...]] = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, output_fd, 1),
        ]
    else:
        actions = [(os.POSIX_SPAWN_DUP2, stdio, 0), (os.POSIX_SPAWN_DUP2, stdio, 1)]
    actions.append((os.POSIX_SPAWN_DUP2, output_fd, 2))
    actions += [(os.POSIX_SPAWN_DUP2, source, target) for target, source in placed]
    return actions


def placer(placed: list[tuple[int, int]]) -> Callable[[], None] | None:
    """Popen's ``preexec_fn`` that places the fds (after Popen set up stdio and the
    credentials); it calls nothing but dup2, so no lock another thread holds is needed."""
    if not placed:
        return None
    pairs = tuple(placed)

    def place() -> None:
        for target, source in pairs:
            os.dup2(source, target)

    return place
