"""One cgroup per instance, where the machine gives corral a writable cgroup v2 hierarchy.

A sweep or a ``destroy`` writes ``cgroup.kill``. A child is spawned where corral is and then
moved into its cgroup by one mover thread: a move takes the kernel's global cgroup lock, whose
first taking after a quiet spell waits for an RCU grace period (about 12 ms here), so moving
corral itself in and out around each spawn cost every isolated respawn that wait, on the loop.
The mover then also moves anything with the instance's ``CORRAL_*`` environment that forked in
the moment before (a double fork at start-up). Without cgroups, :mod:`corral.daemon.tree`
finds an instance's processes in /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Iterable

from corral.core.instances import escaped, label_of
from corral.daemon.tree import environ_marks, started_by


def _unified_mount() -> str | None:
    """Where the cgroup v2 hierarchy is mounted, if anywhere."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        pass
    return None


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def _write(path: str, text: str) -> None:
    """One write to a cgroup control file (no text layer: the mover does thousands)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode("ascii"))
    finally:
        os.close(fd)


_MOVE, _KILL, _REMOVE = 0, 1, 2  # what the mover does with a cgroup


def probe_cgroups() -> CgroupProbe | None:
    """Start the test of ``CgroupProbe``, unless ``CORRAL_CGROUPS=0`` turns cgroups off."""
    return None if os.environ.get("CORRAL_CGROUPS") == "0" else CgroupProbe()


class CgroupProbe:
    """Whether corral may create cgroups and move processes out of its own, found out while
    the caller does other work (the configuration's parse). The test, moving corral to where
    it already is, takes the kernel's cgroup lock, whose first taking waits for an RCU grace
    period: 5 to 12 ms here, on the way of every start. Only that write runs in the thread,
    so it needs the GIL once, at its end."""

    def __init__(self) -> None:
        self._home = self._root = ""
        self._moved = False
        self._thread: threading.Thread | None = None
        mount, own = _unified_mount(), _own_cgroup()
        if mount is None or own is None:
            return
        home = os.path.join(mount, own.lstrip("/"))
        root = os.path.join(home, f"corral-{os.getpid()}")
        try:
            os.makedirs(root, exist_ok=True)
            fd = os.open(os.path.join(home, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(root)
            return
        self._home, self._root = home, root
        self._thread = threading.Thread(target=self._move_self, args=(fd,), daemon=True)
        self._thread.start()

    def _move_self(self, fd: int) -> None:
        try:
            os.write(fd, b"0")
            self._moved = True
        except OSError:
            pass
        finally:
            os.close(fd)

    def cgroups(self, socket: str, loop: asyncio.AbstractEventLoop) -> Cgroups | None:
        """The hierarchy, once the test is done, if it passed (else None, nothing left)."""
        if self._thread is None:
            return None
        self._thread.join()
        if self._moved and os.path.exists(os.path.join(self._root, "cgroup.kill")):
            return Cgroups(self._home, self._root, socket, loop)
        self.discard()
        return None

    def discard(self) -> None:
        """Not wanted after all (the daemon does not start): remove what the probe made."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            with contextlib.suppress(OSError):
                os.rmdir(self._root)


class Cgroups:
    """One cgroup per instance under ``<corral's own cgroup>/corral-<pid>``."""

    # How long the mover waits for more moves before it looks for strays: one look per
    # burst of spawns (a cold start of thousands, a restart) rather than one per spawn.
    SETTLE_SECONDS = 0.02
    # How many more looks a process in corral's cgroup with an empty environment gets.
    BLANK_LOOKS = 5

    def __init__(self, home: str, root: str, socket: str, loop: asyncio.AbstractEventLoop) -> None:
        self.home = home  # corral's own cgroup directory, shared with whatever started it
        self.root = root
        self.socket = socket  # the CORRAL_SOCKET that marks our own processes
        self._loop = loop
        # What this turn of the loop asked for, in order: (_MOVE, pid, cgroup) moves a child
        # there, (_KILL, 0, cgroup) kills what is in it, (_REMOVE, 0, cgroup) removes it.
        self._batch: list[tuple[int, int, str]] = []
        # Batches for the mover; an Event is set once every batch before it is done.
        self._moves: queue.SimpleQueue[list[tuple[int, int, str]] | threading.Event] = (
            queue.SimpleQueue()
        )
        self._mover: threading.Thread | None = None
        self._blank: dict[int, int] = {}  # pid -> looks that found its environment empty

    def path(self, label: str) -> str:
        return os.path.join(self.root, escaped(label))

    def place(self, pid: int, label: str) -> None:
        """Have a child just spawned moved into the instance's cgroup, off the loop; where
        the cgroup cannot be made, the child keeps its process group. The children placed
        in one turn of the loop go to the mover together, at the end of the turn: one
        handover for a thousand spawns, not a thread switch at every system call of each."""
        self._queue(_MOVE, pid, label)

    def kill_soon(self, label: str) -> None:
        """``kill``, by the mover, in order with the moves: a child placed after this call
        is moved in after the kill, so it survives it (the sweep after a main's exit need
        not wait on the loop for the kernel's cgroup lock)."""
        self._queue(_KILL, 0, label)

    def remove_soon(self, label: str) -> None:
        """Remove the instance's cgroup (if empty) by the mover, in order with the moves: a
        removal takes the kernel's cgroup lock too, 50 µs each on the loop at a stop of all."""
        self._queue(_REMOVE, 0, label)

    def _queue(self, op: int, pid: int, label: str) -> None:
        if not self._batch:
            self._loop.call_soon(self._hand_over)
        self._batch.append((op, pid, self.path(label)))

    def _hand_over(self) -> None:
        if self._mover is None:
            self._mover = threading.Thread(target=self._move_all, name="cgroup-mover", daemon=True)
            self._mover.start()
        self._moves.put(self._batch)
        self._batch = []

    def _move_all(self) -> None:
        settle: float | None = None  # None: nothing moved since the last look for strays
        while True:
            try:
                batch = self._moves.get(timeout=settle)
            except queue.Empty:
                settle = self.SETTLE_SECONDS if self._move_strays() else None
                continue
            if isinstance(batch, threading.Event):
                batch.set()
                continue
            moves_into = self._moves_into(batch)
            for index, (op, pid, path) in enumerate(batch):
                if op == _MOVE:
                    self._move(pid, path)
                    continue
                if op == _KILL:
                    self._spare(moves_into.get(path, ()), index, path)
                with contextlib.suppress(OSError):  # gone, or (a removal) not empty
                    if op == _KILL:
                        _write(os.path.join(path, "cgroup.kill"), "1")
                    else:
                        os.rmdir(path)
            settle = self.SETTLE_SECONDS

    @staticmethod
    def _moves_into(batch: list[tuple[int, int, str]]) -> dict[str, list[tuple[int, int]]]:
        """For a batch with kills: each killed cgroup's moves in, as (position, pid)."""
        killed = {path for op, _, path in batch if op == _KILL}
        moves: dict[str, list[tuple[int, int]]] = {}
        if killed:
            for index, (op, pid, path) in enumerate(batch):
                if op == _MOVE and path in killed:
                    moves.setdefault(path, []).append((index, pid))
        return moves

    def _spare(self, moves: Iterable[tuple[int, int]], kill_at: int, path: str) -> None:
        """Before a kill, take back out of its cgroup the children that this batch moves in
        after the kill, and what they started meanwhile: a look for strays may have put one
        there early (a main started at its predecessor's exit is a stray until its move),
        its own children are born where it is, and the kill would take them all. What it
        started is what descends from it, or shares its process group. Only what is found
        there is moved: every move waits on the kernel's cgroup lock, and so does every
        fork meanwhile. A fork lands beside its parent, so once a look finds none of them
        inside, none can come in before the kill."""
        later = {pid for index, pid in moves if index > kill_at}
        if not later:
            return
        for _ in range(8):  # each round moves out what the last one's forks left inside
            inside = [pid for pid in self._members(path) if started_by(pid, later)]
            if not inside:
                return
            for pid in inside:
                with contextlib.suppress(OSError):
                    _write(os.path.join(self.home, "cgroup.procs"), str(pid))

    @staticmethod
    def _move(pid: int, path: str) -> None:
        """Write the pid into the cgroup, making the cgroup the first time it is used."""
        procs = os.path.join(path, "cgroup.procs")
        try:
            _write(procs, str(pid))
        except FileNotFoundError:
            try:
                os.mkdir(path)
                _write(procs, str(pid))
            except FileExistsError:
                with contextlib.suppress(OSError):
                    _write(procs, str(pid))
            except ProcessLookupError:  # gone already: leave no cgroup made for it
                with contextlib.suppress(OSError):
                    os.rmdir(path)
            except OSError:
                pass
        except OSError:  # gone already, or its cgroup is being removed
            pass

    def _move_strays(self) -> bool:
        """Processes of ours still in corral's own cgroup: forked before their parent moved.
        True: look again soon, for a process whose environment read empty. The kernel shows
        none while a process is inside execve, and a stray caught there is one of ours as
        often as not; a process that keeps an empty one is looked at only a few times."""
        me = os.getpid()
        try:
            with open(os.path.join(self.home, "cgroup.procs"), encoding="ascii") as procs:
                pids = [pid for pid in map(int, procs.read().split()) if pid != me]
        except (OSError, ValueError):
            return False
        blank: dict[int, int] = {}
        for pid in pids:
            marks = environ_marks(pid)
            if marks is None:
                blank[pid] = self._blank.get(pid, 0) + 1
                continue
            if marks.get("CORRAL_SOCKET") != self.socket or "CORRAL_JOB" not in marks:
                continue
            label = label_of(marks["CORRAL_JOB"], marks.get("CORRAL_INSTANCE", ""))
            self._move(pid, self.path(label))
        self._blank = blank
        return any(looks <= self.BLANK_LOOKS for looks in blank.values())

    def pids(self, label: str) -> list[int]:
        return self._members(self.path(label))

    @staticmethod
    def _members(path: str) -> list[int]:
        try:
            with open(os.path.join(path, "cgroup.procs"), encoding="ascii") as procs:
                return [int(line) for line in procs if line.strip()]
        except OSError:
            return []

    def kill(self, label: str) -> None:
        with contextlib.suppress(OSError):
            _write(os.path.join(self.path(label), "cgroup.kill"), "1")

    #: How long ``close`` waits for the mover to finish what was asked of it.
    CLOSE_SECONDS = 5.0

    def close(self) -> None:
        """At the daemon's end: let the mover finish every move, sweep and removal asked for
        (the last sweeps of ``corral down`` among them), SIGKILL whatever is still in an
        instance's cgroup, and remove them all and the root."""
        if self._batch:
            self._hand_over()
        if self._mover is not None:
            finished = threading.Event()
            self._moves.put(finished)
            finished.wait(self.CLOSE_SECONDS)
        try:
            names = [n for n in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, n))]
        except OSError:
            return
        for name in names:
            with contextlib.suppress(OSError):  # gone, or (a v2 without cgroup.kill) no kill
                if self._members(os.path.join(self.root, name)):
                    _write(os.path.join(self.root, name, "cgroup.kill"), "1")
        for _ in range(100):  # killed processes leave their cgroups as the kernel ends them
            for name in list(names):
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(self.root, name))
                    names.remove(name)
            if not names:
                break
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            os.rmdir(self.root)
