"""The D-Bus bridge: signals as ``dbus-signal`` events, names as the ``dbus-name(NAME=...)``
state, corral's commands as ``org.corral.Manager1``, and bus activation of ``bus_name``.

``python -m corral.bridges dbus`` (corral runs it as ``corral-bridge-dbus`` while some
definition uses D-Bus). It asks the daemon what to watch (``watched``, answered by
``core/dbus_jobs.py``) and follows that across reloads; it keeps a connection to its bus
(``dbus_bus.py``: the session bus where ``DBUS_SESSION_BUS_ADDRESS`` is set, else the system
bus), connecting again when the bus restarts. The parts, one a module:

    dbus_bus.py         the connection, the bus's own methods, match rules
    dbus_signals.py     signals -> events
    dbus_names.py       names -> states
    dbus_manager.py     the org.corral.Manager1 object
    dbus_activation.py  service files for bus activation

The bridge is ready (``notify``) once it has told corral which names hold: at its first
connection, or, where the bus cannot be reached, that none does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from dbus_fast import Message
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from corral.bridges.dbus_activation import ServiceFiles, services_dir
from corral.bridges.dbus_bus import Keeper, Matches, bus_address, say
from corral.bridges.dbus_manager import Manager
from corral.bridges.dbus_names import Names
from corral.bridges.dbus_signals import Signals
from corral.bridges.link import Link, notify_ready


class Wanted(NamedTuple):
    """The daemon's ``watched`` answer (``core/dbus_jobs.py``)."""

    signals: list[Mapping[str, str]]
    names: list[str]
    senders: list[str]
    services: Mapping[str, str]

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Wanted:
        return cls(
            [dict(rule) for rule in values.get("signals") or ()],
            [str(name) for name in values.get("names") or ()],
            [str(name) for name in values.get("senders") or ()],
            {str(k): str(v) for k, v in (values.get("services") or {}).items()},
        )


class DbusBridge:
    """The parts, wired to one bus connection at a time."""

    def __init__(self, link: Link, environ: Mapping[str, str] = os.environ) -> None:
        self._link = link
        socket = os.path.abspath(link.path)
        address, kind = bus_address(environ)
        self.names = Names(link)
        self.signals = Signals(link, lambda name: self.names.owners.get(name), self.names.owned_by)
        self.manager = Manager(socket)
        self.files = ServiceFiles(services_dir(kind, environ), socket, kind)
        self.keeper = Keeper(address, kind, self._connected, self._lost)
        self._bus: MessageBus | None = None
        self._matches: Matches | None = None
        self._lock = asyncio.Lock()  # one change of rules and names at a time
        self._ready = False

    async def want(self, wanted: Wanted) -> None:
        """What to watch from now on (the first answer, or a reload's)."""
        self.files.write(wanted.services)
        self.signals.want(wanted.signals, [*wanted.senders])
        self.names.want([*wanted.names, *wanted.senders])
        async with self._lock:
            if self._bus is None:
                return
            try:
                await self._apply(self._bus, first=False)
            except (DBusError, OSError, EOFError) as exc:  # the bus went meanwhile
                say(f"could not follow the new configuration on the bus: {exc}")

    async def close(self) -> None:
        """The bridge stops: a ``Shutdown`` caller hears back; the files go."""
        await self.manager.close()
        self.files.remove_all()

    # -- the connection ----------------------------------------------------------------------

    async def _connected(self, bus: MessageBus) -> None:
        async with self._lock:
            self._matches = Matches(bus)
            bus.add_message_handler(self._received)
            await self._apply(bus, first=True)
            self._bus = bus
        await self.manager.attach(bus)
        self._ready_now()

    async def _apply(self, bus: MessageBus, first: bool) -> None:
        """Match rules for what is wanted, then who owns the names now."""
        matches = self._matches
        if matches is None:
            return
        await matches.want("signals", self.signals.rules())
        await matches.want("names", self.names.rules())
        await self.names.survey(bus, replace=first)

    def _lost(self) -> None:
        self._bus = None
        self._matches = None
        self.names.lost()
        self._ready_now()

    def _received(self, msg: Message) -> Message | bool | None:
        self.names.received(msg)
        self.signals.received(msg)
        return self.manager.handle(msg)

    def _ready_now(self) -> None:
        if not self._ready:
            self._ready = True
            notify_ready()


async def serve(link: Link) -> None:
    bridge = DbusBridge(link)
    keeping: asyncio.Task[None] | None = None
    try:
        first = True
        async for message in link.follow("watched", source="dbus", follow=True):
            values = message if first else message.get("watched")
            if not isinstance(values, dict):
                continue
            await bridge.want(Wanted.of(values))
            if first:
                keeping = asyncio.get_running_loop().create_task(bridge.keeper.run())
                keeping.add_done_callback(_fail_loudly)
                first = False
    finally:
        await bridge.close()
        if keeping is not None:
            keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping


def _fail_loudly(task: asyncio.Task[None]) -> None:
    """The connection's task ended by an error: raised here, it ends the bridge (the runner
    says what it was, and corral starts the bridge again)."""
    if not task.cancelled():
        task.result()
