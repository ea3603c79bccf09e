"""Signals into the loop, one callback per signal however many arrive.

asyncio's ``add_signal_handler`` dispatches one callback per byte of its self-pipe. When a
thousand children exit at once, the SIGCHLD bytes fill that pipe: Python then prints a
traceback per lost byte, and a SIGTERM arriving in the flood is dropped with its byte.
Here the Python-level handler is the record (it runs in the main thread between bytecodes,
so it can queue a callback directly and coalesce repeats); the wakeup pipe only interrupts
the loop's wait, so a byte lost to a full pipe loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from types import FrameType


class SignalRouter:
    """Owns the process's signal dispositions and the loop's signal wakeup pipe."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._pending: dict[int, None] = {}  # in arrival order, each signal once
        self._scheduled = False
        self._read_fd, self.wakeup_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        loop.add_reader(self._read_fd, self._drain)
        signal.set_wakeup_fd(self.wakeup_fd, warn_on_full_buffer=False)

    def on(self, number: int, callback: Callable[[], None]) -> None:
        self._callbacks[number] = callback
        signal.signal(number, self._tripped)

    def _tripped(self, number: int, frame: FrameType | None) -> None:
        self._pending[number] = None
        if not self._scheduled:
            self._scheduled = True
            # Behind the I/O callbacks of this turn, which the handler (run inside the loop's
            # select) precedes: a child's exit ends its output pipe first, and the pipe's end
            # lets the reaper collect that one pid, where a SIGCHLD has it walk every child.
            self._loop.call_soon(self._loop.call_soon, self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._pending:
            number = next(iter(self._pending))
            del self._pending[number]
            self._callbacks[number]()

    def _drain(self) -> None:
        try:
            while os.read(self._read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        for number in self._callbacks:
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        self._loop.remove_reader(self._read_fd)
        os.close(self._read_fd)
        os.close(self.wakeup_fd)
