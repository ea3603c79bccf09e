"""Waiting out a ``corral reload`` of a notify service that says when its reload is done
(systemd's notify-reload: ``RELOADING=1`` when it begins, ``READY=1`` when it is over).

corral cannot know beforehand whether a service speaks this, so after sending the reload
signal it gives the service RELOAD_ACK seconds to say ``RELOADING=1``: one that does is
waited for until ``READY=1`` (at most ``timeout_start``, like a start), one that does not
is taken to have reloaded when signalled, as before. A main process that exits meanwhile
fails the reload.
"""

from __future__ import annotations

import asyncio

#: How long a notify service has, after its reload signal, to say ``RELOADING=1``.
RELOAD_ACK = 1.0


class ReloadWait:
    """One reload of one instance; ``future`` gives None when it is done, else why not."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self.future: asyncio.Future[str | None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = loop.call_later(RELOAD_ACK, self.settle, None)
        self.acknowledged = False

    def reloading(self) -> None:
        """``RELOADING=1`` came: wait for ``READY=1`` now, within the timeout."""
        if self.future.done() or self.acknowledged:
            return
        self.acknowledged = True
        if self._timer is not None:
            self._timer.cancel()
        why = f"not ready again within timeout_start ({self._timeout:g}s) after RELOADING=1"
        self._timer = self._loop.call_later(self._timeout, self.settle, why)

    def settle(self, why: str | None) -> None:
        """The reload is over: None when it went well, else why not."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.future.done():
            self.future.set_result(why)
