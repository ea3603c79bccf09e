"""The one SIGCHLD handler: every exit of every child (and of orphans) is collected here.

The signal router calls ``reap`` once however many SIGCHLDs arrived; it calls
``waitpid(-1, WNOHANG)`` until nothing is left and hands each status to the pid's owner.
Exits of pids nobody owns (orphans reparented to corral as subreaper or PID 1) are just reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
from collections.abc import Callable

from corral.daemon.signals import SignalRouter

PR_SET_CHILD_SUBREAPER = 36

ExitCallback = Callable[[int | None, int | None], None]


def become_subreaper() -> bool:
    """Ask the kernel to reparent orphaned descendants to us (no-op need as PID 1)."""
    if os.getpid() == 1:
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def decode_status(status: int) -> tuple[int | None, int | None]:
    """A wait status as (exit status, signal): exactly one of them is set."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status), None


class Reaper:
    """Owns SIGCHLD. ``watch(pid, callback)`` before returning to the loop after a spawn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._owners: dict[int, ExitCallback] = {}
        self._pidfds: dict[int, int] = {}
        self._suspects: list[int] = []  # pids whose output ended: looked at first (poll)
        self.orphans_reaped = 0

    def install(self, signals: SignalRouter) -> None:
        signals.on(signal.SIGCHLD, self.reap)

    def watch(self, pid: int, callback: ExitCallback) -> None:
        self._owners[pid] = callback

    def adopt(self, pid: int, callback: ExitCallback) -> None:
        """Watch a process that may not be corral's child (``MAINPID=``, a pid file).

        Its exit comes through waitpid if it is (or, orphaned, becomes) our child, else
        through a pidfd; then its status is unknown and the callback gets (None, None).
        """
        self._owners[pid] = callback
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            self._loop.call_soon(self._pidfd_ready, pid)  # already gone (or no pidfds)
            return
        self._pidfds[pid] = fd
        self._loop.add_reader(fd, self._pidfd_ready, pid)

    def forget(self, pid: int) -> None:
        """Stop reporting this pid's exit to its owner (it is reaped all the same)."""
        self._owners.pop(pid, None)
        self._close_pidfd(pid)

    def _close_pidfd(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            self._loop.remove_reader(fd)
            os.close(fd)

    def _pidfd_ready(self, pid: int) -> None:
        self._close_pidfd(pid)
        if pid not in self._owners:
            return
        try:
            self._collect(pid)
        except ChildProcessError:
            self._owners.pop(pid)(None, None)  # not our child: its status is not ours to know

    def reap(self) -> None:
        suspects, self._suspects = self._suspects, []
        for pid in suspects:  # one lookup each, before the walk below (see poll)
            if pid in self._owners:
                with contextlib.suppress(ChildProcessError):
                    self._collect(pid)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._collected(pid, status)

    def poll(self, pid: int) -> None:
        """A child's output pipe has ended, as it does when the child exits. Collect it now
        if it is gone, else first thing at the next SIGCHLD: ``waitpid(-1)`` walks every
        child the kernel knows (70-180 µs with a thousand), on the way of a respawn, where
        a pid is one lookup. (The pipe ends before the exit is complete; when both are seen
        in one turn, the signal router runs this first, see ``SignalRouter._tripped``.)"""
        if pid not in self._owners:
            return
        try:
            if not self._collect(pid):
                self._suspects.append(pid)
        except ChildProcessError:
            pass  # adopted, not our child: its pidfd reports its end

    def _collect(self, pid: int) -> bool:
        """Collect this one child if it has exited (ChildProcessError: it is not ours)."""
        found, status = os.waitpid(pid, os.WNOHANG)
        if found != pid:
            return False
        self._collected(pid, status)
        return True

    def _collected(self, pid: int, status: int) -> None:
        owner = self._owners.pop(pid, None)
        self._close_pidfd(pid)
        if owner is None:
            self.orphans_reaped += 1
            return
        owner(*decode_status(status))
