"""``corral.Client``: the daemon's commands as Python methods, returning typed records.

Every method opens its own connection to the control socket and closes it when the reply
has come: a connect over a UNIX socket costs microseconds, and so a client outlives a
restarted daemon, may be shared between threads, and never holds a socket while idle. A
waiting command (``start``, ``wait``, ``emit``) blocks its caller until the daemon replies,
as the CLI does; other clients are served meanwhile. Errors are corral's own family
(``corral.errors``): ``NoSuchService``, ``OperationFailed``, ``UsageError``,
``DaemonUnreachable``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from socket import SHUT_RDWR
from typing import Any, Generic, TypeVar

from corral.control import calls
from corral.control.client import Connection, unwrap
from corral.control.paths import client_socket
from corral.control.records import Emitted, Event, LogLine, Outcome, Status
from corral.errors import DaemonUnreachable

__all__ = ["Client", "Stream"]

T = TypeVar("T")


def socket_path(socket: str | os.PathLike[str] | None) -> str:
    """The socket a client talks to: the one given, else the CLI's lookup (``CORRAL_SOCKET``,
    then the nearest ``.corral/control.sock`` upwards from the current directory), made
    absolute so that a later ``chdir`` changes nothing."""
    return os.path.abspath(os.fspath(socket) if socket is not None else client_socket(None))


class Client:
    """A client of one corral daemon.

    ``socket``: the control socket's path; None looks it up as the CLI does. Names are
    addresses as on the command line: ``"web"``, ``"getty:tty1"``, or ``"getty", "TTY=tty1"``.
    """

    def __init__(
        self, socket: str | os.PathLike[str] | None = None, *, connect_timeout: float = 5.0
    ) -> None:
        self.socket = socket_path(socket)
        self.connect_timeout = connect_timeout

    def __repr__(self) -> str:
        return f"Client({self.socket!r})"

    def status(self, *names: str) -> list[Status]:
        """Every service and instance (or the named ones), as ``corral status --json``."""
        return self._run(calls.status(names))

    def start(self, *names: str, wait: bool = True) -> list[Outcome]:
        """Start services; with ``wait``, return once each is running and ready, or raise
        ``OperationFailed`` saying why one is not."""
        return self._run(calls.change("start", names, wait))

    def stop(self, *names: str, wait: bool = True) -> list[Outcome]:
        """Stop services; with ``wait``, return once each is down."""
        return self._run(calls.change("stop", names, wait))

    def restart(self, *names: str, wait: bool = True) -> list[Outcome]:
        """Stop then start services; with ``wait``, return once each is ready again."""
        return self._run(calls.change("restart", names, wait))

    def wait(self, *names: str, timeout: float | None = None) -> list[Outcome]:
        """Until every named instance (none named: every one whose goal is start) is ready;
        ``OperationFailed`` after ``timeout`` seconds, or if one ends stopped or failed."""
        return self._run(calls.wait(names, timeout))

    def emit(self, event: str, /, **env: str) -> Emitted:
        """Emit an event; return once every job it started or stopped has settled."""
        return self._run(calls.emit(event, env))

    def events(self, *, lines: int | None = 0) -> Stream[Event]:
        """The events from now on (``lines``: the last N kept first; None: all kept), until
        the stream is closed or the daemon exits. Subscribed once iterated or entered::

            with client.events() as events:
                for event in events:
                    print(event.name, event.env)
        """
        return Stream(self, calls.events(lines))

    def logs(self, *names: str, lines: int | None = 10) -> list[LogLine]:
        """The last ``lines`` lines (None: all kept) of the named services' output (none
        named: every service's), merged in time order."""
        return self._run(calls.logs(names, lines))

    def follow_logs(self, *names: str, lines: int | None = 10) -> Stream[LogLine]:
        """``logs``, then every new line as it comes, until the stream is closed."""
        return Stream(self, calls.follow_logs(names, lines))

    def connect(self) -> Connection:
        """A raw protocol connection to the daemon (docs/protocol.md), for what the methods
        above do not cover; close it when done."""
        return Connection(self.socket, self.connect_timeout)

    def _run(self, call: calls.Call[T]) -> T:
        with self.connect() as connection:
            return call.parse(connection.request(call.cmd, **call.args))


class Stream(Generic[T]):
    """A subscription (events, followed logs): an iterator of records and a context manager
    whose exit ends it. It ends by itself when the daemon exits."""

    def __init__(self, client: Client, subscription: calls.Subscription[T]) -> None:
        self._client = client
        self._subscription = subscription
        self._connection: Connection | None = None
        self._backlog: Iterator[Any] = iter(())
        self._closed = False
        #: Whether the stream ended because the daemon hung up (it exited), not by ``close``.
        self.daemon_gone = False

    def __enter__(self) -> Stream[T]:
        self._subscribe()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        connection = self._subscribe()
        parse = self._subscription.parse
        for item in self._backlog:
            return parse(item)
        while not self._closed:
            try:
                message = connection.receive()
            except DaemonUnreachable:  # the daemon exited: nothing more will come
                self.daemon_gone = not self._closed
                self.close()
                break
            except ValueError:  # read from a file closed meanwhile by another thread
                if self._closed:
                    break
                raise
            item = message.get(self._subscription.key) if isinstance(message, dict) else None
            if item is not None:
                return parse(item)
        raise StopIteration

    def close(self) -> None:
        """End the subscription; iteration stops (also one blocked in another thread)."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.sock.shutdown(SHUT_RDWR)  # wakes a reader blocked on it
            connection.close()

    def _subscribe(self) -> Connection:
        """Connect and read the backlog, once: from then on nothing is missed."""
        if self._connection is not None:
            return self._connection
        if self._closed:
            raise ValueError("this stream is closed; ask the client for a new one")
        connection = self._client.connect()
        try:
            sub = self._subscription
            connection.send(sub.cmd, **sub.args)
            self._backlog = iter(unwrap(connection.receive()) or ())
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection
