"""``corral up --health ADDR``: ``/healthz``, ``/readyz`` and ``/metrics`` over HTTP, for the
probes and scrapers that Kubernetes, Nomad and Prometheus send to a container's PID 1.

The server runs on the daemon's own loop (asyncio streams, no thread), so it answers only
while the loop does: a ``/healthz`` that answers is a daemon that answers. Each connection
carries one request (``Connection: close``, as probes and scrapers accept); its head is
bounded in size (``MAX_HEAD``) and in time (``HEAD_TIMEOUT``), its reply in time
(``REPLY_TIMEOUT``), and at most ``MAX_CONNECTIONS`` are open at once, so a slow or hostile
client costs a socket and a timer, never the loop. Nothing is armed while no request is
open: an idle daemon with ``--health`` still sleeps in its selector.

The metrics themselves live in ``metrics.py``; this module knows only a function that
renders them, so it works (and is tested) without the library.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from corral.control.protocol import StatusRow
from corral.core.instances import label_of

#: Bytes of a request's head (request line and headers); a longer one gets 431.
MAX_HEAD = 8192
#: Seconds a client has to send its request head, and to take the whole reply.
HEAD_TIMEOUT = 10.0
REPLY_TIMEOUT = 10.0
#: Connections served at once; one more is closed at once (a probe retries).
MAX_CONNECTIONS = 64

#: Renders the metrics for an ``Accept`` header: (body, content type).
Render = Callable[[str], tuple[bytes, str]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
_TEXT = "text/plain; charset=utf-8"


class BadRequest(Exception):
    """A request this server answers with an error status, and then closes."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def listen(host: str, port: int) -> socket.socket:
    """Bind the endpoint's socket before anything starts (so a port in use is an error at
    start, not after the services are up). An empty host means every address: IPv6 and
    IPv4 together where the machine has IPv6. OSError says why it could not."""
    if not host:
        try:
            return _bound(socket.AF_INET6, "::", port, dual=True)
        except OSError:
            return _bound(socket.AF_INET, "0.0.0.0", port)
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return _bound(family, str(address[0]), port)


def _bound(family: int, host: str, port: int, dual: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dual:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


def where(sock: socket.socket) -> str:
    """The address a bound socket listens on, as a URL's authority (the port a port 0 got)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def not_ready(rows: list[StatusRow]) -> list[str]:
    """Each instance with goal start that is not ready, with its state: ``web: starting``."""
    return [
        f"{label_of(r.name, r.instance)}: {r.state}"
        for r in rows
        if r.goal == "start" and not r.ready
    ]


class HealthServer:
    """The three endpoints on one listening socket (from ``listen``)."""

    def __init__(
        self,
        sock: socket.socket,
        rows: Callable[[], list[StatusRow]],
        shutting_down: Callable[[], bool],
        render: Render,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        reply_timeout: float = REPLY_TIMEOUT,
    ) -> None:
        self._sock = sock
        self._head_timeout = head_timeout
        self._reply_timeout = reply_timeout
        self._rows = rows
        self._shutting_down = shutting_down
        self._render = render
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        return len(self._open)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self._sock, limit=MAX_HEAD)

    async def close(self) -> None:
        """Stop listening, and drop every connection still open."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._open.add(writer)
        method = "GET"  # until the request says otherwise: what an error reply assumes
        try:
            try:
                async with asyncio.timeout(self._head_timeout):
                    method, path, accept = await _read_head(reader)
                status, content_type, body = self._answer(method, path, accept)
            except BadRequest as exc:
                status, content_type = exc.status, _TEXT
                body = f"{_REASONS[status].lower()}\n".encode()
            except TimeoutError:
                status, content_type, body = 408, _TEXT, b"request timeout\n"
            writer.write(_head(status, content_type, len(body)))
            if method != "HEAD":
                writer.write(body)
            async with asyncio.timeout(self._reply_timeout):
                await writer.drain()
        except (OSError, TimeoutError):
            writer.transport.abort()  # gone, or too slow to take the reply
        finally:
            self._open.discard(writer)
            writer.close()

    def _answer(self, method: str, path: str, accept: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        if path not in ("/healthz", "/readyz", "/metrics"):
            raise BadRequest(404)
        if method not in ("GET", "HEAD"):
            raise BadRequest(405)
        if path == "/healthz":
            return 200, _TEXT, b"ok\n"
        if path == "/readyz":
            return self._readiness()
        body, content_type = self._render(accept)
        return 200, content_type, body

    def _readiness(self) -> tuple[int, str, bytes]:
        if self._shutting_down():
            return 503, _TEXT, b"not ready: corral is stopping every service\n"
        waiting = not_ready(self._rows())
        if not waiting:
            return 200, _TEXT, b"ready\n"
        return 503, _TEXT, ("not ready:\n" + "".join(f"{w}\n" for w in waiting)).encode()


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str, str]:
    """(method, path, Accept) of one request head, read line by line up to its empty line
    (CRLF or a bare LF); BadRequest for what is malformed, too long or cut short."""
    size = 0
    lines: list[bytes] = []
    while True:
        try:
            line = await reader.readline()
        except (ValueError, asyncio.LimitOverrunError):  # one line past the reader's limit
            raise BadRequest(431) from None
        size += len(line)
        if size > MAX_HEAD:
            raise BadRequest(431)
        if not line.endswith(b"\n"):
            raise BadRequest(400)  # the client closed before the head ended
        if not line.strip():
            break
        lines.append(line)
    if not lines:
        raise BadRequest(400)
    words = lines[0].decode("latin-1").split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise BadRequest(400)
    accept = ""
    for line in lines[1:]:
        name, colon, value = line.decode("latin-1").partition(":")
        if colon and name.strip().lower() == "accept":
            accept = value.strip()
    return words[0], words[1].partition("?")[0], accept


def _head(status: int, content_type: str, length: int) -> bytes:
    allow = "Allow: GET, HEAD\r\n" if status == 405 else ""
    return (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n"
        f"Cache-Control: no-store\r\n{allow}"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
