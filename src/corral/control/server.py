"""The control socket: a UNIX stream socket, mode 0600 (0660 with a group), peer credentials
checked on every connection, one task per connection, each request answered in order.

A request that waits (``start`` until ready, ``down``) holds only its own connection; every
other client is served meanwhile. A client that sends garbage gets an error reply and keeps
its connection: a line that is not JSON, nests too deeply, is too long (the rest of it is
skipped), or makes a handler fail unexpectedly (an internal error, its traceback on corral's
stderr). A last line without its newline, before the client half-closes, is answered too. One
that disconnects mid-request is simply forgotten, and the operation it asked for carries on.

At most ``limit`` connections are open at once (each may buffer a line of up to MAX_LINE):
past it, the connection idle the longest (between requests) is closed with a line saying
why, so a client that leaks connections never locks the others out; when none is idle, the
newcomer is refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import resource
import socket
import struct
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from corral.control import protocol
from corral.errors import EXIT_FAILED, EXIT_USAGE, CorralError

Handler = Callable[[protocol.Request, "Connection"], Awaitable[Any]]

#: Connections served at once, unless a quarter of the fds corral may open is fewer: the
#: rest are for the services' pipes and sockets.
MAX_CONNECTIONS = 256
#: How long a refused client is given to hang up after the line that says why.
REFUSAL_GRACE = 1.0


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
        self._writer.write(_encoded(message))
        return True

    def close_with(self, message: str) -> None:
        """Say why in one error line, then close at once (for a connection idle between
        requests: none of its input is left unread, so its read sees the line, then EOF)."""
        self.send(protocol.error(EXIT_FAILED, message))
        self._writer.close()

    async def refuse(self, message: str) -> None:
        """Say why in one error line to a client that may have sent its request already.
        Closing with that request unread would make the kernel reset the connection, and
        the client would see ECONNRESET (or EPIPE) instead of the line: so the write side
        is shut first, and what comes in is read and dropped until the client hangs up
        (at most REFUSAL_GRACE seconds and MAX_LINE bytes), then the connection closed."""
        self.send(protocol.error(EXIT_FAILED, message))
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write_eof()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            async with asyncio.timeout(REFUSAL_GRACE):
                left = protocol.MAX_LINE
                while left > 0 and (chunk := await self._reader.read(65536)):
                    left -= len(chunk)
        self._writer.close()

    async def until_peer_closes(self) -> None:
        """For streams: returns when the client hangs up (input meanwhile is ignored)."""
        while await self._reader.read(4096):
            pass


def _encoded(message: object) -> bytes:
    """``message`` as a line, whatever strings it holds: a string the encoder refuses (a
    name of undecodable bytes, as a surrogate escape) must not cost the client its reply."""
    try:
        return protocol.encode(message)
    except UnicodeEncodeError:
        pass
    try:
        return protocol.encode(_encodable(message))
    except UnicodeEncodeError as exc:  # inside a struct: say so rather than send nothing
        return protocol.encode(protocol.error(EXIT_FAILED, f"internal error: unencodable {exc}"))


def _encodable(value: Any) -> Any:
    """``value`` with every string made encodable: the bytes a surrogate escape stands for
    (a file name that is not UTF-8, as os.fsdecode gives it) shown as ``\\xff``."""
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate of another kind
            raw = value.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    return value


class Peer:
    """Who is at the other end, from SO_PEERCRED (pid, uid, gid)."""

    __slots__ = ("_sock", "gid", "groups", "pid", "uid")

    def __init__(self, sock: socket.socket) -> None:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        self.pid, self.uid, self.gid = struct.unpack("3i", creds)
        self.groups: tuple[int, ...] | None = None  # read only when a group is asked about
        self._sock = sock

    def in_group(self, gid: int) -> bool:
        """Whether ``gid`` is the peer's group or one of its supplementary groups, as the
        kernel took them when the peer connected (SO_PEERGROUPS: no pid to reuse, no
        /proc to read)."""
        if self.gid == gid:
            return True
        if self.groups is None:
            self.groups = peer_groups(self._sock)
        return gid in self.groups


#: Linux's SO_PEERGROUPS (4.13), which the socket module does not name.
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


def peer_groups(sock: socket.socket) -> tuple[int, ...]:
    """The supplementary groups of the process at the other end (() where the kernel cannot
    say: then only its primary group counts)."""
    size = 64 * 4
    while True:
        try:
            data = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, size)
        except OSError as exc:
            if exc.errno == errno.ERANGE and size < 65536 * 4:
                size *= 4  # more groups than room: ask again with more
                continue
            return ()
        return struct.unpack(f"{len(data) // 4}I", data[: len(data) // 4 * 4])


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end."""
    return int(Peer(sock).uid)


def connection_limit() -> int:
    """MAX_CONNECTIONS, or a quarter of the fds corral may open if that is fewer."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft // 4))


class ControlServer:
    """Serves the protocol on ``path`` with ``handler`` answering each request. With
    ``group`` (a gid), members of that group may connect too, and the socket is 0660."""

    def __init__(
        self, path: str, handler: Handler, group: int | None = None, limit: int | None = None
    ) -> None:
        self.path = path
        self._handler = handler
        self._group = group
        self.limit = connection_limit() if limit is None else limit
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: dict[Connection, None] = {}  # between requests, longest idle first

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            self._server = await asyncio.start_unix_server(
                self._connected, path=self.path, limit=protocol.MAX_LINE
            )
        finally:
            os.umask(old)
        if self._group is not None:
            os.chown(self.path, -1, self._group)
        os.chmod(self.path, 0o600 if self._group is None else 0o660)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @property
    def connections(self) -> tuple[int, int]:
        """How many connections are open, and how many of them idle between requests."""
        return len(self._tasks), len(self._idle)

    def allowed(self, peer: Peer) -> bool:
        """Root, corral's own user, or (with a group) a member of the socket's group."""
        if peer.uid in (0, os.getuid()):
            return True
        return self._group is not None and peer.in_group(self._group)

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        connection = Connection(reader, writer)
        try:
            peer = Peer(writer.get_extra_info("socket"))
            if not self.allowed(peer):
                await connection.refuse(
                    f"permission denied: uid {peer.uid} may not use this corral "
                    f"(it serves root and uid {os.getuid()}"
                    + (f", and group {self._group})" if self._group is not None else ")")
                )
                return
            if not self._room_for_one_more():
                await connection.refuse(
                    f"too many connections: corral serves at most {self.limit} at once and "
                    "all are busy; try again once some have finished"
                )
                return
            await self._serve(reader, writer, connection)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._idle.pop(connection, None)
            self._tasks.discard(task)
            writer.close()

    def _room_for_one_more(self) -> bool:
        """Below the limit, or made so by closing the longest idle connection."""
        if len(self._tasks) <= self.limit:
            return True
        if not self._idle:
            return False
        oldest = next(iter(self._idle))
        del self._idle[oldest]
        oldest.close_with(
            f"corral closed this idle connection: {self.limit} connections were open, the "
            "most it serves at once, and this one had waited longest for a request"
        )
        return True

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: Connection
    ) -> None:
        while True:
            self._idle[connection] = None
            line, last = await _next_line(reader, connection)
            self._idle.pop(connection, None)
            if line is not None and line.strip():
                sent = connection.send(await self._answer(line, connection))
                if sent:
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                callbacks, connection.after_reply = connection.after_reply, []
                for callback in callbacks:
                    callback()  # also for a client gone meanwhile (down: the daemon exits)
                if not sent:
                    return
            if last:
                return

    async def _answer(self, line: bytes, connection: Connection) -> dict[str, object]:
        """The reply to one line: the handler's result, or an error saying what is wrong."""
        try:
            request = protocol.decode_request(line)
        except protocol.ProtocolError as exc:
            return protocol.error(exc.code, str(exc))
        except RecursionError:
            return protocol.error(EXIT_USAGE, "not valid JSON: nested too deeply")
        except ValueError as exc:  # what the decoder let through (invalid UTF-8, say)
            return protocol.error(EXIT_USAGE, f"not valid JSON: {exc}")
        except Exception as exc:  # a bug must cost one reply, never the connection or loop
            return _internal_error("reading a request", exc)
        try:
            return protocol.ok(await self._handler(request, connection))
        except CorralError as exc:
            return protocol.error(exc.exit_code, str(exc))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            return _internal_error(f"answering {request.cmd!r}", exc)


def _internal_error(doing: str, exc: Exception) -> dict[str, object]:
    """A bug's reply; its traceback goes to corral's stderr."""
    print(f"corral: internal error {doing}:", file=sys.stderr)
    traceback.print_exc(file=sys.stderr)
    return protocol.error(
        EXIT_FAILED,
        f"internal error: {exc.__class__.__name__}: {exc} (the traceback is in corral's output)",
    )


async def _next_line(
    reader: asyncio.StreamReader, connection: Connection
) -> tuple[bytes | None, bool]:
    """The next request line and whether it is the last (the client sent EOF). A line past
    MAX_LINE is answered with an error here and skipped to its end; None: nothing to answer."""
    try:
        return await reader.readuntil(b"\n"), False
    except asyncio.IncompleteReadError as exc:
        return exc.partial, True  # a last line without newline, or nothing (b"")
    except asyncio.LimitOverrunError as exc:
        connection.send(
            protocol.error(
                EXIT_USAGE, f"request line too long: a line is at most {protocol.MAX_LINE} bytes"
            )
        )
        return None, await _skip_line(reader, exc.consumed)


async def _skip_line(reader: asyncio.StreamReader, consumed: int) -> bool:
    """Drop the rest of an overlong line; True if the client sent EOF before its end."""
    while True:
        try:
            await reader.readexactly(consumed)
            await reader.readuntil(b"\n")
            return False
        except asyncio.IncompleteReadError:
            return True
        except asyncio.LimitOverrunError as exc:
            consumed = exc.consumed
