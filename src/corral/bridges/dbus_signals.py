"""D-Bus signals as corral's ``dbus-signal`` events.

The bridge adds one match rule per ``dbus-signal`` term of the conditions
(``core/dbus_jobs.py`` says which keys a rule can carry), and emits each signal that one of
them matches, with ``INTERFACE``, ``MEMBER``, ``OBJECT_PATH``, ``SENDER`` and ``ARG0``,
``ARG1``, ... in that order (positional values in a condition match them in that order).
The bus delivers a connection one copy of a message whatever number of its rules match,
and some messages whatever the rules (the owner changes the names part asked for, signals
sent to the bridge itself): so the bridge checks its rules again before it emits.

``SENDER`` is the sender's unique name (``:1.42``), except where a condition asks for the
sender by a well-known name that this sender owns now: then that name, so that
``SENDER=org.freedesktop.UPower`` matches. Arguments become text: numbers and strings as
they are, booleans ``true``/``false``, a byte array as its text (or hex where it is not
UTF-8), and containers as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dbus_fast import Message, MessageType, Variant

from corral.bridges.dbus_bus import rule_text
from corral.bridges.link import Link

EVENT = "dbus-signal"

#: A match rule's keys and the message's fields they compare.
_FIELDS = {"interface": "interface", "member": "member", "path": "path"}


def text_of(value: Any) -> str:
    """One argument of a signal as the text of an environment variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, bytes):
        return _bytes_text(value)
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)


def _bytes_text(value: bytes) -> str:
    """A byte array (often a path or a name ending in NUL): its text, or hex."""
    stripped = value.rstrip(b"\0")
    try:
        text = stripped.decode()
    except UnicodeDecodeError:
        return value.hex()
    return value.hex() if "\0" in text else text


def _plain(value: Any) -> Any:
    """A value of a container, as JSON can hold it."""
    if isinstance(value, Variant):
        return _plain(value.value)
    if isinstance(value, bytes):
        return _bytes_text(value)
    if isinstance(value, dict):
        return {str(_plain(key)): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def env_of(msg: Message, sender: str) -> dict[str, str]:
    """A signal's event environment, its keys in the order positional values match."""
    env = {
        "INTERFACE": msg.interface or "",
        "MEMBER": msg.member or "",
        "OBJECT_PATH": msg.path or "",
        "SENDER": sender,
    }
    for number, value in enumerate(msg.body):
        env[f"ARG{number}"] = text_of(value.value if isinstance(value, Variant) else value)
    return env


class Signals:
    """The signals the conditions ask for, turned into events."""

    def __init__(self, link: Link, owner_of: Callable[[str], str | None],
                 owned_by: Callable[[str], list[str]]) -> None:  # fmt: skip
        self._link = link
        self._owner_of = owner_of  # a watched name's owner now, if known
        self._owned_by = owned_by  # the watched names a unique name owns
        self.wanted: list[Mapping[str, str]] = []
        self._senders: set[str] = set()

    def want(self, rules: Iterable[Mapping[str, str]], senders: Iterable[str]) -> None:
        self.wanted = [dict(rule) for rule in rules]
        self._senders = set(senders)

    def rules(self) -> set[str]:
        return {rule_text("signal", rule) for rule in self.wanted}

    def received(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL:
            return
        if any(self._matches(rule, msg) for rule in self.wanted):
            self._link.emit(EVENT, env_of(msg, self._sender_name(msg.sender or "")))

    def _matches(self, rule: Mapping[str, str], msg: Message) -> bool:
        for key, value in rule.items():
            if key == "sender":
                if value != msg.sender and self._owner_of(value) != msg.sender:
                    return False
            elif getattr(msg, _FIELDS[key]) != value:
                return False
        return True

    def _sender_name(self, unique: str) -> str:
        """The well-known name a condition knows this sender by, else its unique name."""
        named = [name for name in self._owned_by(unique) if name in self._senders]
        return named[0] if named else unique
