"""Socket activation: services started by a connection to the sockets corral holds for them.

* ``activate = "on-connection"``: nothing starts at ``up``; the first connection (or
  datagram) to one of the service's sockets starts it, and the service accepts it from the
  socket it is handed. While the service is started, corral does not look at its sockets;
  once it is stopped again (at rest in ``waiting``), the next connection starts it again. A
  service that failed is not started by connections: a user's start leaves ``failed``.
* ``accept = true``: corral accepts each connection itself and starts one instance for it,
  keyed by the peer (``ADDR:PORT``, ``[V6]:PORT``, ``unix-PID`` for a unix peer), with the
  connection on fds 0 and 1 and ``REMOTE_ADDR``/``REMOTE_PORT`` in its environment. Past
  ``max_connections`` instances under way, a new connection is closed at once.

The sockets themselves are in ``sockets.py``; this keeps them bound to what the
configuration and the running instances list (``sync``), and watches them on the loop:
a reader per watched socket, nothing armed while nothing comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

from corral.core import inputs as ins
from corral.core.states import Goal, State
from corral.daemon.journal import Journal
from corral.daemon.runtime import Job, Runtime
from corral.daemon.sockets import Listeners
from corral.daemon.table import InstanceTable, at_rest

Feed = Callable[[Runtime, ins.Input], None]

#: Connections accepted in one turn of the loop, so that one busy socket never starves it.
ACCEPT_BATCH = 64


class SocketActivation:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        table: InstanceTable,
        listeners: Listeners,
        feed: Feed,
        journal: Journal,
    ) -> None:
        self._loop = loop
        self._table = table
        self._listeners = listeners
        self._feed = feed
        self._journal = journal
        self._watched: dict[str, list[int]] = {}  # service name -> fds with a reader
        table.on_rebuilt.append(self.sync)
        table.on_rest.append(self._rested)

    def sync(self) -> None:
        """Hold the sockets of every current definition and of every instance under way,
        close the others, and watch what should be watched."""
        table = self._table
        wanted = [(n, j.definition) for n, j in table.jobs.items() if not j.removed]
        wanted += [(rt.inst.job, rt.definition) for rt in table.runtimes() if not at_rest(rt)]
        for name, message in self._listeners.sync(wanted):
            job = table.jobs.get(name)
            if job is not None:
                self._journal.say_job(job, message)
        for name in list(self._watched):
            self._unwatch(name)
        for job in table.jobs.values():
            if not job.removed:
                self._watch_if_due(job)

    def _rested(self, rt: Runtime) -> None:
        """An instance came to rest: its old definition's sockets may go; an on-connection
        service that stopped waits for the next connection again."""
        job = self._table.jobs.get(rt.inst.job)
        if job is None or not (rt.definition.sockets or job.definition.sockets):
            return
        if rt.definition is not job.definition:
            self.sync()
        elif not job.removed:
            self._watch_if_due(job)

    def _watch_if_due(self, job: Job) -> None:
        definition = job.definition
        name = definition.name
        if name in self._watched or not definition.socket_activated:
            return
        if not definition.accept:
            rt = job.instances.get("")
            if rt is None or rt.inst.state is not State.WAITING or rt.inst.goal is not Goal.STOP:
                return
        fds = []
        for sock in self._listeners.sockets(name, definition):
            handler = self._accept if definition.accept else self._connected
            self._loop.add_reader(sock.fileno(), handler, name, sock)
            fds.append(sock.fileno())
        self._watched[name] = fds

    def _unwatch(self, name: str) -> None:
        for fd in self._watched.pop(name, []):
            self._loop.remove_reader(fd)

    # -- on-connection ---------------------------------------------------------------------

    def _connected(self, name: str, sock: socket.socket) -> None:
        """A connection waits on a socket of an on-connection service: start it."""
        self._unwatch(name)
        job = self._table.jobs.get(name)
        rt = job.instances.get("") if job is not None else None
        if rt is None or rt.inst.state is not State.WAITING or rt.inst.goal is not Goal.STOP:
            return  # started meanwhile by someone else: it accepts the connection itself
        self._journal.say(rt, "a connection came: starting")
        self._table.prepare_start(rt)
        self._feed(rt, ins.SetGoal(Goal.START))

    # -- accept = true ---------------------------------------------------------------------

    def _accept(self, name: str, sock: socket.socket) -> None:
        """Connections wait on a socket of an accept service: an instance for each."""
        job = self._table.jobs.get(name)
        if job is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                connection, peer = sock.accept()
            except OSError:  # drained (BlockingIOError), or out of fds: the next turn
                return
            definition = job.definition
            busy = sum(1 for rt in job.instances.values() if not at_rest(rt))
            if busy >= definition.max_connections:
                connection.close()
                limit = definition.max_connections
                self._journal.say_job(job, f"max_connections ({limit}) reached: closed one")
                continue
            env, key = _peer(connection, peer)
            rt = self._table.new_instance(job, _unique(job, key))
            rt.connection = connection.detach()
            self._table.prepare_start(rt, env)
            self._feed(rt, ins.SetGoal(Goal.START))


def _peer(connection: socket.socket, peer: object) -> tuple[dict[str, str], str]:
    """The environment (``REMOTE_ADDR``, ``REMOTE_PORT``) and instance key of a connection;
    a unix peer has neither address nor port, and is named by its pid."""
    if connection.family == socket.AF_UNIX:
        pid = 0
        with contextlib.suppress(OSError):
            creds = connection.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
            pid = struct.unpack("3i", creds)[0]
        return {}, f"unix-{pid}"
    assert isinstance(peer, tuple)
    addr, port = str(peer[0]), str(peer[1])
    shown = f"[{addr}]" if ":" in addr else addr
    return {"REMOTE_ADDR": addr, "REMOTE_PORT": port}, f"{shown}:{port}"


def _unique(job: Job, key: str) -> str:
    """``key``, or ``key-2``, ``key-3``... while an instance of that key is still there."""
    if key not in job.instances:
        return key
    number = 2
    while f"{key}-{number}" in job.instances:
        number += 1
    return f"{key}-{number}"
