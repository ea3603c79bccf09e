"""What a corral that was killed left running: found and stopped before a new one starts any
service, so no service ever runs twice.

A corral that is SIGKILLed (or whose machine froze) cannot stop its services; they are
reparented to init and keep running, holding their ports and files, and a new corral would
start second copies beside them. Two ways find them, as the daemon's own records and the kernel
allow:

* :class:`Record` keeps ``processes`` in corral's state directory: the main process of every
  running instance, with its start time (so a pid reused since is never taken for it), written
  at most once a second while something changes and removed at a clean exit. A file found at
  start means the last corral did not exit cleanly.
* Only then, a scan of /proc for processes that carry this socket's ``CORRAL_SOCKET`` (every
  process corral starts has it; one that cleared its environment is found through the record).

Each is sent SIGTERM, then SIGKILL after a grace, and the new corral starts clean. (Adopting
them instead is not possible: their output pipes died with the old corral, and they are no
longer its children.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterable

from corral.core.records import Instance
from corral.daemon.forking import start_ticks
from corral.daemon.runtime import Runtime
from corral.daemon.table import InstanceTable
from corral.daemon.tree import environ_marks

RECORD = "processes"
#: How long leftovers get to go after SIGTERM before SIGKILL.
GRACE = 5.0
#: How long the record may lag behind the instances (one write per this while busy).
WRITE_DELAY = 1.0


class Record:
    """The record of running main processes, written lazily: a timer is armed only while the
    file is behind, so an idle corral never wakes for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, state_dir: str, table: InstanceTable):
        self._loop = loop
        self._path = os.path.join(state_dir, RECORD)
        self._table = table
        self._pending: asyncio.TimerHandle | None = None
        #: (pid, the Child record) -> start time, read once per process (a pid reused by a
        #: new process comes with a new record).
        self._ticks: dict[tuple[int, int], int] = {}

    def changed(self, rt: Runtime, before: Instance) -> None:
        """A driver observer: an instance changed state, so its processes may have."""
        if self._pending is None:
            self._pending = self._loop.call_later(WRITE_DELAY, self.write)

    def write(self) -> None:
        self._pending = None
        lines = []
        known, self._ticks = self._ticks, {}
        for rt in self._table.runtimes():
            for child in rt.children.values():
                key = (child.pid, id(child))
                ticks = known.get(key) or start_ticks(child.pid)
                if ticks is not None:
                    self._ticks[key] = ticks
                    lines.append(f"{child.pid} {ticks}\n")
        temporary = self._path + ".new"
        try:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            with open(temporary, "w", encoding="ascii") as handle:
                handle.writelines(lines)
            os.replace(temporary, self._path)
        except OSError:
            pass  # a state directory that cannot be written: no record, the scan remains

    def remove(self) -> None:
        """A clean exit: nothing of ours runs any more."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        with contextlib.suppress(OSError):
            os.unlink(self._path)


def _recorded(path: str) -> list[int]:
    """The processes a record names that still run with the start time it gives."""
    try:
        with open(path, encoding="ascii") as handle:
            entries = [line.split() for line in handle]
    except OSError:
        return []
    alive = []
    for entry in entries:
        if len(entry) == 2 and entry[0].isdigit() and entry[1].isdigit():
            pid = int(entry[0])
            if pid != os.getpid() and start_ticks(pid) == int(entry[1]):
                alive.append(pid)
    return alive


def _marked(socket_path: str) -> list[int]:
    """Processes that carry ``CORRAL_SOCKET=socket_path``: started by a corral on this socket."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            marks = environ_marks(int(entry))
            if marks and marks.get("CORRAL_SOCKET") == socket_path:
                found.append(int(entry))
    return found


def find(state_dir: str, socket_path: str) -> list[int] | None:
    """The leftovers of a corral that did not exit cleanly; None when the last one did (no
    record: nothing to look for, and no cost at a normal start)."""
    path = os.path.join(state_dir, RECORD)
    if not os.path.exists(path):
        return None
    return sorted({*_recorded(path), *_marked(socket_path)})


async def stop(pids: Iterable[int], say: Callable[[str], None]) -> None:
    """SIGTERM each (and the process group it leads), SIGKILL what is left after GRACE."""
    pids = list(pids)
    if not pids:
        return
    say(f"the last corral did not exit cleanly: stopping {len(pids)} process(es) it left")
    _signal_all(pids, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GRACE
    while loop.time() < deadline and any(_alive(pid) for pid in pids):
        await asyncio.sleep(0.05)
    left = [pid for pid in pids if _alive(pid)]
    if left:
        say(f"{len(left)} of them ignored SIGTERM: SIGKILL")
        _signal_all(left, signal.SIGKILL)


def _signal_all(pids: list[int], number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, number)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie waits for its parent, which is no longer corral)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
