"""Log probes' lines matched against the user's pattern, never on the loop.

A log probe's pattern is the user's, and the loop never runs the user's code: with Python's
``re`` (backtracking), ``(a+)+$`` against a line of 24 ``a`` and a ``!`` takes a second, twice
that with each ``a`` more. So patterns are RE2's (``google-re2``): no backreferences or
lookaround, and matching time linear in the line, at most ``logs.MAX_LINE`` (16 KiB). Linear is not small, though: a
pattern whose DFA does not fit RE2's cache (``[ab]*a[ab]{20}c``) runs at about 0.4 µs a byte,
6 ms a 16 KiB line, and one read of a pipe hands up to 64 KiB at once. So the lines are not
matched on the loop either but in :class:`LogMatch`'s one worker thread, which RE2 runs
without the GIL; the loop only queues them (at most ``LOG_BACKLOG`` per probe) and hears back.
``regex``'s ``timeout=`` was not chosen because its backtracking would still run until that
timeout on the loop for every line; a child process would cost a process per probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: Characters of output one log probe may have waiting for the matcher thread; lines beyond
#: it are not checked (and the probe's failure says how many), so a service that prints
#: faster than its pattern can be matched never grows corral's memory.
LOG_BACKLOG = 1024 * 1024


def _block_signals() -> None:
    """Signals are the main thread's: its loop wakes on them."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


_matcher: ThreadPoolExecutor | None = None


def _matcher_thread() -> ThreadPoolExecutor:
    """The one thread that matches log probes' lines, started at its first use."""
    global _matcher
    if _matcher is None:
        _matcher = ThreadPoolExecutor(1, "corral-log-match", initializer=_block_signals)
    return _matcher


def _any_match(pattern: Any, texts: list[str]) -> bool:
    return any(pattern.search(text) is not None for text in texts)


class LogMatch:
    """A log probe's lines, matched in the matcher thread; ``matched`` is called on the loop
    once one line matched (and never after ``cancel``)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pattern: Any, matched: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._pattern = pattern
        self._matched = matched
        self._pending: set[Future[bool]] = set()
        self._backlog = 0
        self._cancelled = False
        self.skipped = 0  # lines not checked: the backlog was full

    def add(self, texts: list[str]) -> None:
        size = sum(len(text) for text in texts)
        if self._backlog + size > LOG_BACKLOG:
            self.skipped += len(texts)
            return
        self._backlog += size
        future = _matcher_thread().submit(_any_match, self._pattern, texts)
        self._pending.add(future)
        future.add_done_callback(lambda done: self._from_thread(done, size))

    def _from_thread(self, future: Future[bool], size: int) -> None:
        """Called in the matcher thread (or in the loop's, for a cancelled future)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: corral is exiting
            self._loop.call_soon_threadsafe(self._settled, future, size)

    def _settled(self, future: Future[bool], size: int) -> None:
        self._pending.discard(future)
        self._backlog -= size
        if self._cancelled or future.cancelled() or future.exception() is not None:
            return
        if future.result():
            self._matched()

    def cancel(self) -> None:
        self._cancelled = True
        for future in self._pending:
            future.cancel()  # those not begun yet; a running one is ignored when it ends
