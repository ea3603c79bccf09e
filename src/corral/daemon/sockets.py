"""The listening sockets corral holds for its services (``sockets = [...]``).

Each is bound when a definition that lists it becomes current (at ``up``, at a reload) and
kept open while that definition is current or an instance still runs one that lists it, so
a restart of the service never closes it: a client connecting meanwhile waits in the
backlog instead of being refused. A socket that cannot be bound is said in the service's
log and tried again at each start, which fails with the reason while it still cannot.

Sockets are made close-on-exec (no other child inherits them) and blocking (what a service
expects of an fd it is handed); only those corral accepts on itself (``accept = true``) are
non-blocking. A unix socket's file is replaced if a dead one is in the way, given its
``mode``, and removed when corral closes it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterable

from corral.core.definition import Definition, SocketSpec

#: A socket of a service: (the service's name, its place: kind, address, port).
Key = tuple[str, tuple[str, str, int]]


class BindError(Exception):
    """A socket could not be bound; the message says which and why."""


def bind(spec: SocketSpec, nonblocking: bool = False) -> socket.socket:
    """A socket listening (or, for udp, bound) where ``spec`` says. Raises BindError."""
    family = socket.AF_UNIX if spec.kind == "unix" else _inet_family(spec.address)
    kind = socket.SOCK_DGRAM if spec.kind == "udp" else socket.SOCK_STREAM
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
    try:
        if spec.kind == "unix":
            _bind_unix(sock, spec)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((spec.address, spec.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot listen on {spec.where}: {exc.strerror or exc}") from None
    sock.setblocking(not nonblocking)
    return sock


def _inet_family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _bind_unix(sock: socket.socket, spec: SocketSpec) -> None:
    path = spec.address
    if path.startswith("@"):
        sock.bind("\0" + path[1:])
        return
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode) and not _answers(path):
            os.unlink(path)  # a socket file left by a corral that is gone
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    sock.bind(path)
    os.chmod(path, spec.mode)


def _answers(path: str) -> bool:
    """Someone listens on this socket file (then it is not ours to replace)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.setblocking(False)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def close(spec: SocketSpec, sock: socket.socket) -> None:
    """Close a listening socket and remove its file."""
    sock.close()
    if spec.kind == "unix" and not spec.address.startswith("@"):
        with contextlib.suppress(OSError):
            os.unlink(spec.address)


class Listeners:
    """Every socket corral holds, by service and place; ``errors`` says, for each that
    could not be bound, why."""

    def __init__(self) -> None:
        self._held: dict[Key, tuple[SocketSpec, socket.socket]] = {}
        self.errors: dict[Key, str] = {}

    def sync(self, wanted: Iterable[tuple[str, Definition]]) -> list[tuple[str, str]]:
        """Hold exactly the sockets of these (service, definition) pairs: bind the new ones,
        close those no longer wanted. Returns (service, message) for each that failed."""
        specs: dict[Key, SocketSpec] = {}
        accepting: set[Key] = set()
        for name, definition in wanted:
            for spec in definition.sockets:
                specs.setdefault((name, spec.place), spec)
                if definition.accept:
                    accepting.add((name, spec.place))
        for key in [k for k in self._held if k not in specs]:
            close(*self._held.pop(key))
        self.errors = {k: v for k, v in self.errors.items() if k in specs}
        failed = []
        for key, spec in specs.items():
            if key in self._held:
                held_spec, sock = self._held[key]
                if held_spec.mode != spec.mode and spec.kind == "unix":
                    with contextlib.suppress(OSError):
                        os.chmod(spec.address, spec.mode)
                self._held[key] = (spec, sock)
                continue
            try:
                self._held[key] = (spec, bind(spec, nonblocking=key in accepting))
                self.errors.pop(key, None)
            except BindError as exc:
                if self.errors.get(key) != str(exc):
                    failed.append((key[0], str(exc)))
                self.errors[key] = str(exc)
        return failed

    def fds(self, name: str, definition: Definition) -> list[int]:
        """The fds of a definition's sockets, in its order; binds again one that could not
        be bound before. Raises BindError while one still cannot."""
        fds = []
        for spec in definition.sockets:
            key = (name, spec.place)
            if key not in self._held:
                self._held[key] = (spec, bind(spec, nonblocking=definition.accept))
                self.errors.pop(key, None)
            fds.append(self._held[key][1].fileno())
        return fds

    def sockets(self, name: str, definition: Definition) -> list[socket.socket]:
        """The held sockets of a definition (those bound), for watching."""
        held = (self._held.get((name, spec.place)) for spec in definition.sockets)
        return [entry[1] for entry in held if entry is not None]

    def close_all(self) -> None:
        for spec, sock in self._held.values():
            close(spec, sock)
        self._held.clear()
