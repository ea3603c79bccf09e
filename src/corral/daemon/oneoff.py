"""A short-lived command run to completion: an action or an exec probe.

The child is already spawned (in its own process group); this collects its output (up to a
limit), arms its deadline (SIGKILL to the group) and reports one :class:`Outcome` once the
process has exited and its output is drained. Nothing waits: the reaper and the loop's
reader call in.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from msgspec import Struct

from corral.daemon.logs import Capture
from corral.daemon.reaper import Reaper
from corral.daemon.spawn import Child

#: Output kept per one-off command; the rest is counted and dropped.
MAX_OUTPUT = 256 * 1024
#: After the process exits, how long a descendant may keep its output pipe open.
DRAIN_GRACE = 0.5


class Outcome(Struct, frozen=True):
    status: int | None
    signal: int | None
    output: str
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.timed_out


class OneOff:
    """Watches one spawned child until it has exited and its output pipe is closed."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        reaper: Reaper,
        child: Child,
        output_fd: int,
        timeout: float,
        done: Callable[[Outcome], None],
    ) -> None:
        self._loop = loop
        self._child = child  # keeps its Popen alive: a collected Popen would reap it itself
        self._pid = child.pid
        self._done = done
        self._lines: list[str] = []
        self._size = 0
        self._exit: tuple[int | None, int | None] | None = None
        self._eof = False
        self._timed_out = False
        self._finished = False
        self._capture = Capture(loop, output_fd, self._output, on_close=self._closed)
        self._timer: asyncio.TimerHandle | None = loop.call_later(timeout, self._expire)
        reaper.watch(child.pid, self._exited)

    def _output(self, texts: list[str]) -> None:
        for text in texts:
            if self._size < MAX_OUTPUT:
                self._lines.append(text)
                self._size += len(text) + 1

    def _closed(self) -> None:
        self._eof = True
        self._finish_if_done()

    def _exited(self, status: int | None, sig: int | None) -> None:
        self._exit = (status, sig)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(DRAIN_GRACE, self._capture.close)
        self._finish_if_done()

    def _expire(self) -> None:
        self._timer = None
        if self._exit is None:
            self._timed_out = True
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group (the deadline passed, or nobody wants the answer)."""
        try:
            os.killpg(self._pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cancel(self) -> None:
        """Kill it and never report."""
        self._finished = True
        self.kill()

    def _finish_if_done(self) -> None:
        if self._finished or self._exit is None or not self._eof:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        status, sig = self._exit
        output = "\n".join(self._lines) + ("\n" if self._lines else "")
        self._done(Outcome(status, sig, output, self._timed_out))
