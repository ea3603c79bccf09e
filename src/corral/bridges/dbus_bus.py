"""The D-Bus bridge's connection to its bus: which bus, connecting again when it restarts, the
bus's own methods, and the match rules the bridge holds there.

The bridge watches the session bus where ``DBUS_SESSION_BUS_ADDRESS`` is set in its
environment (corral's own, which corral passes on), else the system bus
(``DBUS_SYSTEM_BUS_ADDRESS``, or the standard path). A bus that goes away (dbus-daemon
restarted) or is not there yet is tried again after a delay that doubles up to
``LONGEST_RETRY``: a timer armed only while the bus is missing, so a bridge connected to
its bus waits on the socket alone.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

SESSION = "session"
SYSTEM = "system"
#: Where the system bus listens when ``DBUS_SYSTEM_BUS_ADDRESS`` does not say.
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"

FIRST_RETRY = 0.25
LONGEST_RETRY = 8.0

BUS = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"


def say(text: str) -> None:
    """A line in the bridge's log (its stderr, which corral keeps)."""
    print(f"dbus: {text}", file=sys.stderr, flush=True)


def bus_address(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The address of the bus to watch, and which bus it is (``session``/``system``)."""
    session = environ.get("DBUS_SESSION_BUS_ADDRESS")
    if session:
        return session, SESSION
    return environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS, SYSTEM


async def bus_call(bus: MessageBus, member: str, signature: str = "", *body: Any) -> list[Any]:
    """One method of the bus itself (``org.freedesktop.DBus``); its reply's body, or
    DBusError."""
    message = Message(destination=BUS, path=BUS_PATH, interface=BUS, member=member,
                      signature=signature, body=list(body))  # fmt: skip
    reply = await bus.call(message)
    if reply is None:  # the connection closed before the answer came
        raise EOFError(f"the bus connection closed before {member} was answered")
    if reply.message_type is MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise DBusError(reply.error_name or "org.freedesktop.DBus.Error.Failed", text, reply)
    return list(reply.body)


def rule_text(kind: str, fields: Mapping[str, str]) -> str:
    """A match rule: ``type='signal',interface='org.example.Power',...``."""
    parts = [f"type='{kind}'"]
    parts += [f"{key}={_quoted(value)}" for key, value in fields.items()]
    return ",".join(parts)


def _quoted(value: str) -> str:
    """A value of a match rule: quoted, with a quote inside written ``'\\''``."""
    return "'" + value.replace("'", "'\\''") + "'"


class Matches:
    """The match rules held on one connection, by who wants them: a rule is added once
    somebody wants it and removed once nobody does."""

    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        self._wanted: dict[str, set[str]] = {}
        self._held: set[str] = set()

    async def want(self, owner: str, rules: Iterable[str]) -> None:
        """``owner`` wants exactly these rules now."""
        self._wanted[owner] = set(rules)
        every = set().union(*self._wanted.values())
        for rule in sorted(every - self._held):
            try:
                await bus_call(self._bus, "AddMatch", "s", rule)
            except DBusError as exc:
                say(f"the bus refused the match rule {rule}: {exc.text}")
                continue
            self._held.add(rule)
        for rule in sorted(self._held - every):
            self._held.discard(rule)
            try:
                await bus_call(self._bus, "RemoveMatch", "s", rule)
            except DBusError as exc:
                say(f"the bus did not remove the match rule {rule}: {exc.text}")


class Keeper:
    """Keeps the bridge connected to its bus: ``connected(bus)`` once per connection,
    ``lost()`` once the bus is gone (or could not be reached), then tries again."""

    def __init__(
        self,
        address: str,
        kind: str,
        connected: Callable[[MessageBus], Awaitable[None]],
        lost: Callable[[], None],
    ) -> None:
        self.address = address
        self.kind = kind
        self._connected = connected
        self._lost = lost

    async def run(self) -> None:
        delay = FIRST_RETRY
        said = ""
        while True:
            try:
                bus = await self._connect()
            except Exception as exc:
                if str(exc) != said:  # said once per outage, not at every try
                    said = str(exc)
                    say(f"cannot reach the {self.kind} bus at {self.address}: {exc}; "
                        "trying again until it is there")  # fmt: skip
                self._lost()
                await asyncio.sleep(delay)
                delay = min(delay * 2, LONGEST_RETRY)
                continue
            delay, said = FIRST_RETRY, ""
            say(f"connected to the {self.kind} bus as {bus.unique_name}")
            try:
                why = await self._serve(bus)
            finally:
                bus.disconnect()
                self._lost()
            say(f"the {self.kind} bus went away ({why}); connecting again")

    async def _connect(self) -> MessageBus:
        bus_type = BusType.SESSION if self.kind == SESSION else BusType.SYSTEM
        return await MessageBus(bus_address=self.address, bus_type=bus_type).connect()

    async def _serve(self, bus: MessageBus) -> str:
        """Until the connection ends (an error of the bus's ends it too); what ended it."""
        try:
            await self._connected(bus)
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        except (DBusError, OSError, EOFError) as exc:  # what dbus-fast says of a lost bus
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return "it closed the connection"
