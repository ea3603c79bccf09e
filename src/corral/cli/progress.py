"""The live line of a ``start``, ``stop`` or ``restart`` waiting on a terminal.

The request asks for ``progress``; the daemon then sends ``{"progress": [...]}`` lines, each
saying what every instance still waited for is waiting for and since when, whenever that
changes. This shows them on stderr as one line (``waiting for web: http probe, 3 s``),
redrawn in place each second (the seconds are counted here, not by the daemon) and erased
when the reply comes. Used only when stderr is a terminal, by the quick path and the full
CLI alike, so both draw the same.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any, TextIO

PROGRESS_PREFIX = b'{"progress":'
ERASE = "\r\x1b[K"


class LiveLine:
    """One line on a terminal, rewritten in place; never wider than the terminal, so that
    erasing it erases all of it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._items: list[dict[str, Any]] = []
        self._shown = False

    def update(self, items: list[dict[str, Any]]) -> None:
        self._items = items
        self.draw()

    def draw(self) -> None:
        if not self._items:
            self.erase()
            return
        text = describe(self._items, time.time())
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns
        except OSError:
            columns = 0
        width = (columns or 80) - 1  # a terminal that says no size (0) is taken as 80 wide
        if len(text) > width:
            text = text[: max(width - 3, 0)] + "..."
        self._stream.write(ERASE + text)
        self._stream.flush()
        self._shown = True

    def erase(self) -> None:
        if self._shown:
            self._stream.write(ERASE)
            self._stream.flush()
            self._shown = False

    def next_draw(self) -> float | None:
        """Seconds until a count of seconds shown changes (None: nothing shown)."""
        if not self._items:
            return None
        now = time.time()
        return min(1.0 - (now - float(item["since"])) % 1.0 for item in self._items)


def describe(items: list[dict[str, Any]], now: float) -> str:
    """``waiting for web: http probe, 3 s; db: notify READY=1, 1 s``."""
    parts = []
    for item in items:
        name = item["name"] + (f":{item['instance']}" if item["instance"] else "")
        seconds = max(0, int(now - item["since"]))
        parts.append(f"{name}: {item['waiting_for']}, {seconds} s")
    return "waiting for " + "; ".join(parts)


def receive(sock: Any, stream: TextIO) -> bytes:
    """Read the reply to a request sent with ``progress``: draw each progress line on
    ``stream`` meanwhile; the reply's line (without its end if the daemon hung up)."""
    live = LiveLine(stream)
    buffer = b""
    try:
        while True:
            line, newline, rest = buffer.partition(b"\n")
            if newline:
                buffer = rest
                if not line.startswith(PROGRESS_PREFIX):
                    return line + newline
                live.update(json.loads(line)["progress"])
                continue
            ready, _, _ = select.select([sock], [], [], live.next_draw())
            if not ready:
                live.draw()
                continue
            chunk = sock.recv(1 << 16)
            if not chunk:
                return buffer
            buffer += chunk
    finally:
        live.erase()


def request_showing_progress(client: Any, cmd: str, args: dict[str, Any]) -> Any:
    """``client.request(cmd, **args)`` with ``progress``, its waiting drawn on stderr."""
    import sys

    from corral.control.client import unwrap
    from corral.control.paths import HUNG_UP
    from corral.errors import DaemonUnreachable

    client.send(cmd, progress=True, **args)
    line = receive(client.sock, sys.stderr)
    if not line.endswith(b"\n"):
        raise DaemonUnreachable(HUNG_UP)
    return unwrap(json.loads(line))
