"""D-Bus names as corral's ``dbus-name(NAME=...)`` state: it holds while the name has an owner.

The names are those the bridge is told to watch (``core/dbus_jobs.py``: the ``NAME=`` values
of the conditions, every ``bus_name``, the senders that conditions name); a glob among them
(``org.mpris.MediaPlayer2.*``) watches every name it matches, unique names (``:1.42``) only
where the glob itself starts with ``:``. The bus says when an owner changes
(``NameOwnerChanged``, a match rule per name, or one for all names where a glob needs it);
at each connection the bridge first adds those rules, then asks who owns what now, and
reports exactly that (``replace``), so owners that exist at start count, and a change during
the asking is applied after it. When the bus goes away, every name goes with it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError

from corral.bridges.dbus_bus import BUS, BUS_PATH, bus_call, rule_text, say
from corral.bridges.link import Link

STATE = "dbus-name"

_OWNER_CHANGED = {"sender": BUS, "path": BUS_PATH, "interface": BUS, "member": "NameOwnerChanged"}
_GLOB_CHARS = frozenset("*?[")


def owner_changed(msg: Message) -> tuple[str, str] | None:
    """(name, new owner or "") of a ``NameOwnerChanged`` from the bus, else None."""
    if (
        msg.message_type is not MessageType.SIGNAL
        or msg.member != "NameOwnerChanged"
        or msg.sender != BUS
        or msg.interface != BUS
        or msg.signature != "sss"
    ):
        return None
    name, _old, new = msg.body
    return str(name), str(new)


class Names:
    """Which names are watched, who owns them, and what corral was told."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.exact: set[str] = set()
        self.globs: list[str] = []
        self.owners: dict[str, str] = {}  # watched name -> its owner's unique name
        self._asking: list[tuple[str, str]] | None = None  # changes seen while asking
        self._told_none = False  # corral knows that no name holds (no bus)

    def want(self, patterns: Iterable[str]) -> None:
        """The names (and globs) to watch from now on."""
        patterns = set(patterns)
        self.globs = sorted(p for p in patterns if _GLOB_CHARS & set(p))
        self.exact = patterns - set(self.globs)

    def rules(self) -> set[str]:
        if self.globs:
            return {rule_text("signal", _OWNER_CHANGED)}
        return {rule_text("signal", {**_OWNER_CHANGED, "arg0": name}) for name in self.exact}

    def watches(self, name: str) -> bool:
        if name in self.exact:
            return True
        unique = name.startswith(":")
        return any(
            fnmatch.fnmatchcase(name, glob) for glob in self.globs if glob.startswith(":") == unique
        )

    def owned_by(self, unique: str) -> list[str]:
        """The watched names that ``unique`` owns, sorted."""
        return sorted(name for name, owner in self.owners.items() if owner == unique)

    # -- the bus ---------------------------------------------------------------------------

    async def survey(self, bus: MessageBus, replace: bool) -> None:
        """Ask the bus who owns the watched names now, and tell corral: everything
        (``replace``, a new connection) or what changed (a reload changed the names)."""
        self._asking = []
        try:
            found = await self._ask(bus)
        finally:
            changes, self._asking = self._asking, None
        for name, owner in changes:
            if owner:
                found[name] = owner
            else:
                found.pop(name, None)
        if replace:
            self.owners = found
            self._told_none = False
            self._link.replace_states((STATE, {"NAME": name}) for name in sorted(found))
            return
        gone = sorted(set(self.owners) - set(found))
        new = sorted(set(found) - set(self.owners))
        self.owners = found
        self._link.states(
            [(STATE, {"NAME": name}, False) for name in gone]
            + [(STATE, {"NAME": name}, True) for name in new]
        )

    async def _ask(self, bus: MessageBus) -> dict[str, str]:
        candidates = set(self.exact)
        if self.globs:
            (listed,) = await bus_call(bus, "ListNames")
            candidates |= {name for name in listed if self.watches(name)}
        found: dict[str, str] = {}
        for name in sorted(candidates):
            try:
                (owner,) = await bus_call(bus, "GetNameOwner", "s", name)
            except DBusError as exc:
                if exc.type != "org.freedesktop.DBus.Error.NameHasNoOwner":
                    say(f"cannot ask who owns {name}: {exc.text}")
                continue
            found[name] = str(owner)
        return found

    def received(self, msg: Message) -> None:
        """A message from the bus: a watched name's owner changed?"""
        change = owner_changed(msg)
        if change is None or not self.watches(change[0]):
            return
        if self._asking is not None:
            self._asking.append(change)  # applied, and told, once the answers are in
            return
        name, owner = change
        if owner:
            self.owners[name] = owner
            self._link.hold(STATE, {"NAME": name})  # a new owner is told even if one was
        elif self.owners.pop(name, None) is not None:
            self._link.release(STATE, {"NAME": name})

    def lost(self) -> None:
        """The bus is gone (or was never reached), and with it every owner: told once."""
        if self._told_none:
            return
        self.owners = {}
        self._told_none = True
        self._link.replace_states(())
