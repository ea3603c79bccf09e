"""A bridge's connection to the daemon, for the bridge's own asyncio loop.

Requests go out in the order the bridge makes them, and the daemon answers one connection's
requests in order, so the order of a bridge's reports is the order the daemon applies them.
A report (``emit``, ``hold``, ``release``, ``replace_states``) does not wait for its reply:
one reader takes the replies as they come, and an error among them goes to the bridge's log
(stderr, which corral keeps). ``closed`` is done once the daemon hangs up: a bridge then
exits, and corral, if it still runs (a ``daemon reexec``), starts it again, and its first
report replaces whatever it said before. A bridge never reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from corral.control.client import unwrap
from corral.control.version import PROTOCOL_VERSION
from corral.errors import CorralError, DaemonUnreachable

#: A state of the world: its name and the variables it holds for.
State = tuple[str, Mapping[str, str]]

#: The longest line read from the daemon.
MAX_LINE = 16 * 1024 * 1024


def _line(cmd: str, args: Mapping[str, Any]) -> bytes:
    return json.dumps({"cmd": cmd, "v": PROTOCOL_VERSION, **args}).encode() + b"\n"


async def _connect(path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_unix_connection(path, limit=MAX_LINE)
    except OSError as exc:
        raise DaemonUnreachable(f"a bridge cannot reach corral at {path}: {exc}") from None


def socket_path(explicit: str | None = None) -> str:
    """The daemon's socket: given, else ``CORRAL_SOCKET`` (corral sets it for its children)."""
    path = explicit or os.environ.get("CORRAL_SOCKET")
    if not path:
        raise DaemonUnreachable("a bridge needs CORRAL_SOCKET (corral sets it for its children)")
    return path


class Link:
    """One bridge's connection; made by :meth:`open`."""

    def __init__(
        self, source: str, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.source = source
        self.path = path
        self._reader = reader
        self._writer = writer
        self._replies: deque[asyncio.Future[Any] | None] = deque()  # None: nobody waits
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._reading = loop.create_task(self._read_replies())

    @classmethod
    async def open(cls, source: str, path: str | None = None) -> Link:
        path = socket_path(path)
        reader, writer = await _connect(path)
        return cls(source, path, reader, writer)

    def close(self) -> None:
        self._reading.cancel()
        self._writer.close()

    # -- reports -------------------------------------------------------------------------

    def replace_states(self, states: Iterable[State]) -> None:
        """Everything this bridge holds now; what it held before and is not here, no longer."""
        listed = [{"name": name, "env": dict(env)} for name, env in states]
        self.send("state", source=self.source, states=listed, replace=True)

    def hold(self, name: str, env: Mapping[str, str]) -> None:
        self.states([(name, env, True)])

    def release(self, name: str, env: Mapping[str, str]) -> None:
        self.states([(name, env, False)])

    def states(self, changes: Iterable[tuple[str, Mapping[str, str], bool]]) -> None:
        """Several states that now hold (True) or no longer do, in one request."""
        listed = [{"name": name, "env": dict(env), "holds": holds} for name, env, holds in changes]
        if listed:
            self.send("state", source=self.source, states=listed)

    def emit(self, event: str, env: Mapping[str, str]) -> None:
        """An event; the bridge does not wait for what it starts or stops."""
        self.send("emit", event=event, env=dict(env), wait=False)

    # -- requests ------------------------------------------------------------------------

    def send(self, cmd: str, **args: Any) -> None:
        """A request whose reply nobody waits for (an error in it is logged)."""
        self._write(cmd, args, None)

    async def request(self, cmd: str, **args: Any) -> Any:
        """A request and its result (or the error it maps to)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._write(cmd, args, future)
        return unwrap(await future)

    async def follow(self, cmd: str, **args: Any) -> AsyncIterator[Any]:
        """A streaming request on a connection of its own: its result, then each further
        message; the iteration ends when the daemon hangs up."""
        reader, writer = await _connect(self.path)
        try:
            writer.write(_line(cmd, args))
            first = await reader.readline()
            if not first:
                raise DaemonUnreachable("corral closed the connection before answering")
            yield unwrap(json.loads(first))
            while line := await reader.readline():
                yield json.loads(line)
        finally:
            writer.close()

    def _write(self, cmd: str, args: Mapping[str, Any], future: asyncio.Future[Any] | None) -> None:
        if self.closed.done():
            raise DaemonUnreachable("corral closed the connection")
        self._replies.append(future)
        self._writer.write(_line(cmd, args))

    async def _read_replies(self) -> None:
        try:
            while line := await self._reader.readline():
                self._reply(json.loads(line))
        except (OSError, ValueError) as exc:
            print(f"{self.source}: connection to corral broken: {exc}", file=sys.stderr)
        finally:
            for waiting in self._replies:
                if waiting is not None and not waiting.done():
                    waiting.set_exception(DaemonUnreachable("corral closed the connection"))
            self._replies.clear()
            if not self.closed.done():
                self.closed.set_result(None)

    def _reply(self, reply: Any) -> None:
        waiting = self._replies.popleft() if self._replies else None
        if waiting is not None:
            if not waiting.done():
                waiting.set_result(reply)
            return
        try:
            unwrap(reply)
        except CorralError as exc:
            print(f"{self.source}: corral refused a report: {exc}", file=sys.stderr, flush=True)


def notify_ready() -> None:
    """Tell corral the bridge is ready (systemd's ``READY=1`` on ``NOTIFY_SOCKET``): it has
    said everything it holds. Nothing to do where nobody listens."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        contextlib.suppress(OSError),
    ):
        sock.connect(address)
        sock.send(b"READY=1")
