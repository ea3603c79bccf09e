"""The control socket: a UNIX stream socket, mode 0600, peer credentials checked on every
connection, one task per connection, each request answered in order.

A request that waits (``start`` until ready, ``down``) holds only its own connection; every
other client is served meanwhile. A client that sends garbage gets an error reply and keeps
its connection; one that disconnects mid-request is simply forgotten, and the operation it
asked for carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from corral.control import protocol
from corral.errors import EXIT_USAGE, CorralError

Handler = Callable[[protocol.Request, "Connection"], Awaitable[Any]]


class Connection:
    """One client; streaming handlers write further lines through ``send``."""

    HIGH_WATER = 1024 * 1024

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.dropped = 0
        #: Called once the current reply has been written out (``down`` exits only then).
        self.after_reply: list[Callable[[], None]] = []

    def send(self, message: object) -> bool:
        """Queue one line; past HIGH_WATER unsent bytes drop it (a slow reader never
        stalls the daemon). Returns False once the client is gone."""
        if self._writer.is_closing():
            return False
        transport = self._writer.transport
        if transport.get_write_buffer_size() > self.HIGH_WATER:
            self.dropped += 1
            return True
        self._writer.write(protocol.encode(message))
        return True

    async def until_peer_closes(self) -> None:
        """For streams: returns when the client hangs up (input meanwhile is ignored)."""
        while await self._reader.read(4096):
            pass


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end, from SO_PEERCRED (pid, uid, gid)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    """Serves the protocol on ``path`` with ``handler`` answering each request."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._connected, path=self.path, limit=protocol.MAX_LINE
            )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            sock = writer.get_extra_info("socket")
            uid = peer_uid(sock)
            if uid not in (0, os.getuid()):
                writer.write(protocol.encode(protocol.error(1, "permission denied: other user")))
                return
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(reader, writer)
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return  # the client went away, perhaps mid-request: nothing to answer
            except asyncio.LimitOverrunError:
                writer.write(protocol.encode(protocol.error(EXIT_USAGE, "request line too long")))
                await writer.drain()
                return
            if not line.strip():
                continue
            try:
                request = protocol.decode_request(line)
                reply = protocol.ok(await self._handler(request, connection))
            except protocol.ProtocolError as exc:
                reply = protocol.error(exc.code, str(exc))
            except CorralError as exc:
                reply = protocol.error(exc.exit_code, str(exc))
            if not connection.send(reply):
                return
            await writer.drain()
            callbacks, connection.after_reply = connection.after_reply, []
            for callback in callbacks:
                callback()
