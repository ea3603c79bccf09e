"""One connection to the daemon, synchronous: what the CLI, the bridges and ``corral.Client``
speak the protocol through. Cheap to import.

It uses the standard json module rather than msgspec: msgspec loads in ~10 ms, json in ~2,
and the CLI's start-up time is what a script calling ``corral status`` in a loop pays. Every
request carries the protocol version (``"v"``): a daemon of another version refuses it
plainly rather than being misread. A socket error after connecting (the daemon went away
mid-request) is ``DaemonUnreachable``, like one before it.

with Connection(path) as connection:
    rows = connection.request("status")
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

from corral.control.paths import HUNG_UP, unreachable
from corral.control.version import OLDER_DAEMON, PROTOCOL_VERSION, older_daemon
from corral.errors import (
    EXIT_NO_SUCH_SERVICE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CorralError,
    DaemonUnreachable,
    NoSuchService,
    OperationFailed,
    UsageError,
)

_ERRORS: dict[int, type[CorralError]] = {
    EXIT_USAGE: UsageError,
    EXIT_NO_SUCH_SERVICE: NoSuchService,
    EXIT_UNREACHABLE: DaemonUnreachable,
}


class Connection:
    """One connection to the daemon; requests are answered in order."""

    def __init__(self, path: str, connect_timeout: float = 5.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(connect_timeout)
        try:
            self._sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._sock.close()
            raise DaemonUnreachable(unreachable(path, exc.strerror or str(exc))) from None
        except OSError as exc:
            self._sock.close()
            raise DaemonUnreachable(f"cannot reach corral at {path}: {exc}") from None
        self._sock.settimeout(None)
        self._file = self._sock.makefile("rb")

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def send(self, cmd: str, **args: Any) -> None:
        request = {"cmd": cmd, "v": PROTOCOL_VERSION, **args}
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:  # the daemon went away (a broken pipe here is not stdout's)
            raise DaemonUnreachable(f"{HUNG_UP} ({exc.strerror or exc})") from None

    def receive(self) -> Any:
        line = self.read_line()
        if line is None:
            raise DaemonUnreachable(HUNG_UP)
        return json.loads(line)

    def read_line(self) -> bytes | None:
        """The next line the daemon sent; None once it has hung up."""
        try:
            line = self._file.readline()
        except OSError as exc:
            raise DaemonUnreachable(f"{HUNG_UP} ({exc.strerror or exc})") from None
        return line or None

    def request(self, cmd: str, **args: Any) -> Any:
        """Send one request and return its result, raising the error it maps to."""
        self.send(cmd, **args)
        return unwrap(self.receive())

    @property
    def sock(self) -> socket.socket:
        """The connection itself, for a caller that reads a reply its own way (the CLI's
        live progress line); replies read through ``receive`` are buffered apart."""
        return self._sock

    def stream(self, cmd: str, **args: Any) -> Iterator[Any]:
        """Send a streaming request: yields the first result, then each further message."""
        self.send(cmd, **args)
        yield unwrap(self.receive())
        while (line := self.read_line()) is not None:
            yield json.loads(line)


#: The name the CLI and the bridges import; ``corral.Client`` is the public client.
Client = Connection


def unwrap(reply: Any) -> Any:
    """A reply's result, or the error of corral's family that its code maps to."""
    if not isinstance(reply, dict) or "ok" not in reply:
        raise OperationFailed(f"unexpected reply from corral: {reply!r}")
    if reply["ok"]:
        return reply.get("result")
    err = reply.get("error") or {}
    code = err.get("code", 1)
    message = err.get("message", "failed")
    if code == EXIT_USAGE and older_daemon(message):
        raise DaemonUnreachable(OLDER_DAEMON)
    raise _ERRORS.get(code, OperationFailed)(message)
