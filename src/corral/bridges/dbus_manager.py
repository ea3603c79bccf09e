"""``org.corral.Manager1``: corral's commands as D-Bus methods.

At ``/org/corral/Manager1``, interface ``org.corral.Manager1``: ``Start(s)``, ``Stop(s)``,
``Restart(s)`` (the name as the CLI takes it: ``web``, ``web:KEY``, ``web KEY=VALUE``),
``Emit(s event, a{ss} env)``, ``Shutdown()`` and ``ListServices()`` -> ``a(sssib)`` (name,
instance, state, pid or 0, ready). Each call is a request to the daemon over the control
socket, on a connection of its own, and is answered when the command would return; a
failure is ``org.corral.Error.NoSuchService`` or ``org.corral.Error.Failed`` with the
message the CLI prints.

Callers are checked as the control socket checks its peers: root, corral's own uid, or a
member of the socket's group where it has one (a socket of mode 0660); the bus says who the
caller is (``GetConnectionCredentials``). ``Shutdown`` stops everything, this bridge too:
its answer goes out when the bridge is told to stop, with the rest still stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Iterable
from typing import Any

from dbus_fast import Message, MessageFlag, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from corral.bridges.dbus_bus import bus_call, say
from corral.control.aio import AsyncClient
from corral.errors import CorralError, NoSuchService

NAME = "org.corral.Manager1"
PATH = "/org/corral/Manager1"
INTERFACE = "org.corral.Manager1"
FAILED = "org.corral.Error.Failed"
NO_SUCH_SERVICE = "org.corral.Error.NoSuchService"
DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"

#: Each method and its arguments' signature.
METHODS = {"Start": "s", "Stop": "s", "Restart": "s", "Emit": "sa{ss}", "Shutdown": "",
           "ListServices": ""}  # fmt: skip

INTROSPECTION = f"""<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
 <interface name="{INTERFACE}">
  <method name="Start"><arg name="name" type="s" direction="in"/></method>
  <method name="Stop"><arg name="name" type="s" direction="in"/></method>
  <method name="Restart"><arg name="name" type="s" direction="in"/></method>
  <method name="Emit"><arg name="event" type="s" direction="in"/>
   <arg name="env" type="a{{ss}}" direction="in"/></method>
  <method name="Shutdown"/>
  <method name="ListServices"><arg name="services" type="a(sssib)" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.DBus.Peer">
  <method name="Ping"/>
  <method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method>
 </interface>
</node>
"""

#: The object's parents, each with its child, for ``busctl tree`` and introspection.
_PARENTS = {"/": "org", "/org": "corral", "/org/corral": "Manager1"}


class Manager:
    """The object on one bus connection at a time; its calls run as tasks of their own."""

    def __init__(self, socket: str) -> None:
        self._socket = socket
        self._client = AsyncClient(socket, connect_timeout=10.0)
        self._bus: MessageBus | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._shutdowns: list[tuple[MessageBus, Message]] = []

    async def attach(self, bus: MessageBus) -> None:
        """Serve on this connection, and ask for the name (queued behind an owner)."""
        self._bus = bus
        try:
            await bus_call(bus, "RequestName", "su", NAME, 0)
        except DBusError as exc:
            say(f"cannot own {NAME}: {exc.text} (on the system bus a policy file must allow "
                "it; see docs/dbus.md)")  # fmt: skip

    def handle(self, msg: Message) -> Message | bool | None:
        """A message of the bus: a call of ours is answered (now, or by a task later)."""
        if msg.message_type is not MessageType.METHOD_CALL or self._bus is None:
            return None
        if msg.member == "Introspect" and msg.interface in (None, _INTROSPECTABLE):
            return self._introspected(msg)
        if msg.path != PATH or msg.interface not in (None, INTERFACE):
            return None
        signature = METHODS.get(msg.member or "")
        if signature is None:
            return None
        if msg.signature != signature:
            return Message.new_error(msg, INVALID_ARGS, f"{msg.member} takes ({signature})")
        task = asyncio.get_running_loop().create_task(self._answer(self._bus, msg))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return True

    @staticmethod
    def _introspected(msg: Message) -> Message | None:
        if msg.path == PATH:
            xml = INTROSPECTION
        elif msg.path in _PARENTS:
            xml = f'<node>\n <node name="{_PARENTS[msg.path]}"/>\n</node>\n'
        else:
            return None
        return Message.new_method_return(msg, "s", [xml])

    async def close(self) -> None:
        """The bridge stops: a ``Shutdown`` waiting for this is answered, the rest dropped."""
        sent = [bus.send(Message.new_method_return(msg)) for bus, msg in self._shutdowns
                if _wants_reply(msg) and bus.connected]  # fmt: skip
        self._shutdowns.clear()
        if sent:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*sent, return_exceptions=True), 2.0)
        for task in list(self._calls):
            task.cancel()

    # -- one call --------------------------------------------------------------------------

    async def _answer(self, bus: MessageBus, msg: Message) -> None:
        try:
            refusal = await self._refusal(bus, msg.sender or "")
            if refusal is not None:
                reply = Message.new_error(msg, DENIED, refusal)
            elif msg.member == "Shutdown":
                if await self._shut_down(bus, msg):
                    return  # answered by close(), when corral stops this bridge
                reply = Message.new_method_return(msg)
            else:
                signature, body = await self._run(msg.member or "", msg.body)
                reply = Message.new_method_return(msg, signature, body)
        except NoSuchService as exc:
            reply = Message.new_error(msg, NO_SUCH_SERVICE, str(exc))
        except CorralError as exc:
            reply = Message.new_error(msg, FAILED, str(exc))
        except DBusError as exc:
            reply = Message.new_error(msg, FAILED, f"cannot tell who is calling: {exc.text}")
        if _wants_reply(msg) and bus.connected:
            bus.send(reply)

    async def _run(self, member: str, body: list[Any]) -> tuple[str, list[Any]]:
        """The command a method is; the signature and body of its answer."""
        client = self._client
        if member == "ListServices":
            rows = [(s.name, s.instance, str(s.state), s.pid or 0, s.ready)
                    for s in await client.status()]  # fmt: skip
            return "a(sssib)", [rows]
        if member == "Emit":
            event, env = body
            await client.emit(event, **env)
            return "", []
        words = str(body[0]).split()
        if member == "Start":
            await client.start(*words)
        elif member == "Stop":
            await client.stop(*words)
        else:
            await client.restart(*words)
        return "", []

    async def _shut_down(self, bus: MessageBus, msg: Message) -> bool:
        """``down``; whether the answer is left to :meth:`close` (corral stops this bridge
        before it answers ``down``)."""
        pending = (bus, msg)
        self._shutdowns.append(pending)
        try:
            connection = await self._client.connect()
            try:
                await connection.request("down")
            finally:
                await connection.close()
        finally:
            still = pending in self._shutdowns
            if still:
                self._shutdowns.remove(pending)
        return not still

    async def _refusal(self, bus: MessageBus, sender: str) -> str | None:
        """Why this caller may not use corral, or None: the control socket's rule."""
        (credentials,) = await bus_call(bus, "GetConnectionCredentials", "s", sender)
        uid = int(credentials["UnixUserID"].value)
        if uid in (0, os.getuid()):
            return None
        group = self._socket_group()
        if group is not None:
            groups = credentials.get("UnixGroupIDs")
            if groups is not None and group in _ints(groups.value):
                return None
        served = f"root and uid {os.getuid()}" + (
            f", and group {group}" if group is not None else ""
        )
        return f"permission denied: uid {uid} may not use this corral (it serves {served})"

    def _socket_group(self) -> int | None:
        """The socket's group, where members of it may use corral (mode 0660)."""
        try:
            info = os.stat(self._socket)
        except OSError:
            return None
        return info.st_gid if info.st_mode & stat.S_IRWXG else None


_INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"


def _wants_reply(msg: Message) -> bool:
    return not msg.flags & MessageFlag.NO_REPLY_EXPECTED


def _ints(values: Iterable[Any]) -> set[int]:
    return {int(value) for value in values}
