"""``corral.AsyncClient``: ``corral.Client`` for asyncio, method for method.

The same requests and records (``corral.control.calls``), carried by asyncio's streams: each
call opens its own connection, so many may wait at once (``asyncio.gather`` of several
``start``\\ s) and a cancelled one simply hangs up, which the daemon takes as a client gone
away (the operation it asked for carries on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from typing import Any, Generic, TypeVar

from corral.control import calls
from corral.control.api import socket_path
from corral.control.client import unwrap
from corral.control.paths import HUNG_UP, unreachable
from corral.control.records import Emitted, Event, LogLine, Outcome, Status
from corral.control.version import PROTOCOL_VERSION
from corral.errors import DaemonUnreachable

__all__ = ["AsyncClient", "AsyncStream"]

T = TypeVar("T")

#: The longest reply line read (a status of thousands of services is a few MiB).
MAX_REPLY = 64 * 1024 * 1024


class AsyncClient:
    """A client of one corral daemon, for asyncio; see ``corral.Client`` for each method."""

    def __init__(
        self, socket: str | os.PathLike[str] | None = None, *, connect_timeout: float = 5.0
    ) -> None:
        self.socket = socket_path(socket)
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"AsyncClient({self.socket!r})"

    async def status(self, *names: str) -> list[Status]:
        return await self._run(calls.status(names))

    async def start(self, *names: str, wait: bool = True) -> list[Outcome]:
        return await self._run(calls.change("start", names, wait))

    async def stop(self, *names: str, wait: bool = True) -> list[Outcome]:
        return await self._run(calls.change("stop", names, wait))

    async def restart(self, *names: str, wait: bool = True) -> list[Outcome]:
        return await self._run(calls.change("restart", names, wait))

    async def wait(self, *names: str, timeout: float | None = None) -> list[Outcome]:
        return await self._run(calls.wait(names, timeout))

    async def emit(self, event: str, /, **env: str) -> Emitted:
        return await self._run(calls.emit(event, env))

    def events(self, *, lines: int | None = 0) -> AsyncStream[Event]:
        """Subscribed once iterated or entered::

        async with client.events() as events:
            async for event in events:
                ...
        """
        return AsyncStream(self, calls.events(lines))

    async def logs(self, *names: str, lines: int | None = 10) -> list[LogLine]:
        return await self._run(calls.logs(names, lines))

    def follow_logs(self, *names: str, lines: int | None = 10) -> AsyncStream[LogLine]:
        return AsyncStream(self, calls.follow_logs(names, lines))

    async def connect(self) -> AsyncConnection:
        """A raw protocol connection (docs/protocol.md); close it when done."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket, limit=MAX_REPLY), self.connect_timeout
            )
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise DaemonUnreachable(unreachable(self.socket, exc.strerror or str(exc))) from None
        except (OSError, TimeoutError) as exc:
            raise DaemonUnreachable(f"cannot reach corral at {self.socket}: {exc}") from None
        return AsyncConnection(reader, writer)

    async def _run(self, call: calls.Call[T]) -> T:
        connection = await self.connect()
        try:
            return call.parse(await connection.request(call.cmd, **call.args))
        finally:
            await connection.close()


class AsyncConnection:
    """One connection to the daemon over asyncio's streams; requests answered in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send(self, cmd: str, **args: Any) -> None:
        request = {"cmd": cmd, "v": PROTOCOL_VERSION, **args}
        try:
            self._writer.write(json.dumps(request).encode() + b"\n")
            await self._writer.drain()
        except OSError as exc:
            raise DaemonUnreachable(f"{HUNG_UP} ({exc.strerror or exc})") from None

    async def receive(self) -> Any:
        try:
            line = await self._reader.readline()
        except (OSError, ValueError) as exc:  # ValueError: a line past MAX_REPLY
            raise DaemonUnreachable(f"{HUNG_UP} ({exc})") from None
        if not line.endswith(b"\n"):
            raise DaemonUnreachable(HUNG_UP)
        return json.loads(line)

    async def request(self, cmd: str, **args: Any) -> Any:
        await self.send(cmd, **args)
        return unwrap(await self.receive())

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class AsyncStream(Generic[T]):
    """A subscription for asyncio: an async iterator of records and an async context manager
    whose exit ends it. It ends by itself when the daemon exits."""

    def __init__(self, client: AsyncClient, subscription: calls.Subscription[T]) -> None:
        self._client = client
        self._subscription = subscription
        self._connection: AsyncConnection | None = None
        self._backlog: deque[Any] = deque()
        self._closed = False
        #: Whether the stream ended because the daemon hung up (it exited), not by ``aclose``.
        self.daemon_gone = False

    async def __aenter__(self) -> AsyncStream[T]:
        await self._subscribe()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        connection = await self._subscribe()
        parse = self._subscription.parse
        if self._backlog:
            return parse(self._backlog.popleft())
        while not self._closed:
            try:
                message = await connection.receive()
            except DaemonUnreachable:  # the daemon exited: nothing more will come
                self.daemon_gone = not self._closed
                await self.aclose()
                break
            item = message.get(self._subscription.key) if isinstance(message, dict) else None
            if item is not None:
                return parse(item)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """End the subscription; iteration stops."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _subscribe(self) -> AsyncConnection:
        """Connect and read the backlog, once: from then on nothing is missed."""
        if self._connection is not None:
            return self._connection
        if self._closed:
            raise ValueError("this stream is closed; ask the client for a new one")
        connection = await self._client.connect()
        try:
            sub = self._subscription
            await connection.send(sub.cmd, **sub.args)
            self._backlog = deque(unwrap(await connection.receive()) or ())
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        return connection
