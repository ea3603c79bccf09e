"""The keys of socket activation and of a service's health: ``sockets``, ``activate``,
``accept``, ``max_connections``, ``fd_store_max``, ``watchdog``; their parsers and the
checks that span several keys (or several services). Pure: addresses are checked as text,
never resolved (a name lookup could block the daemon), so a host is an IP address or
``localhost``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from corral.core.definition import Definition, SocketSpec
from corral.core.graph import GraphProblem
from corral.core.scalars import (
    BadValue,
    boolean,
    duration,
    integer,
    nonempty_string,
    type_name,
)
from corral.core.states import ServiceType

#: ``LISTEN_FDNAMES`` entries: printable ASCII but ``:`` (the separator), as systemd's.
FD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,255}$")
#: At most this many fds in one service's store.
FD_STORE_LIMIT = 1024

_EXPECTED_LISTEN = '"HOST:PORT", "udp:HOST:PORT" or "unix:PATH"'


def _host(text: str) -> str:
    """An IP address (IPv6 in brackets) or ``localhost``, without the brackets."""
    if text == "localhost":
        return "127.0.0.1"
    try:
        if text.startswith("[") and text.endswith("]"):
            return str(ipaddress.IPv6Address(text[1:-1]))
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise BadValue(
            f'"{text}" is not an IP address (write IPv6 in brackets, "[::1]"); names are not '
            "looked up, but localhost"
        ) from None


def _inet(kind: str, text: str) -> tuple[str, str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadValue(f'expected {_EXPECTED_LISTEN}, with a port from 1 to 65535, got "{text}"')
    return kind, _host(host), int(port)


def listen_address(text: str) -> tuple[str, str, int]:
    """``listen``: (kind, address, port) of ``"HOST:PORT"``, ``"udp:HOST:PORT"`` or
    ``"unix:PATH"`` (``unix:@NAME`` in the abstract namespace)."""
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if not path.strip() or "\0" in path:
            raise BadValue(f'expected "unix:PATH" with a path, got "{text}"')
        return "unix", path, 0
    if text.startswith("udp:"):
        return _inet("udp", text.removeprefix("udp:"))
    return _inet("tcp", text)


def _mode(value: object) -> int:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        text = value.removeprefix("0o")
    if text is None or not re.fullmatch(r"[0-7]{1,4}", text) or int(text, 8) > 0o777:
        raise BadValue(f'mode: expected octal permissions such as "0660", got {value!r}')
    return int(text, 8)


def _socket(value: object) -> SocketSpec:
    if not isinstance(value, dict):
        raise BadValue(f'expected tables such as {{ listen = "127.0.0.1:8000" }}, got '
                       f"{type_name(value)}")  # fmt: skip
    unknown = set(value) - {"listen", "name", "mode"}
    if unknown or "listen" not in value:
        raise BadValue(f"expected {{ listen = ..., name = ..., mode = ... }}, got keys "
                       f"{sorted(value)}")  # fmt: skip
    kind, address, port = listen_address(nonempty_string(value["listen"]))
    name = ""
    if "name" in value:
        name = nonempty_string(value["name"])
        if not FD_NAME.match(name):
            raise BadValue(f'name: up to 255 printable characters but ":" and spaces, '
                           f'got "{name}"')  # fmt: skip
    spec = SocketSpec(kind, address, port, name)
    if "mode" in value:
        if kind != "unix" or address.startswith("@"):
            raise BadValue(f"mode is for a unix socket's file, not {spec.where}")
        spec = SocketSpec(kind, address, port, name, _mode(value["mode"]))
    return spec


def sockets(value: object) -> tuple[SocketSpec, ...]:
    """``sockets = [{ listen, name, mode }, ...]``, in the order of their fds."""
    if not isinstance(value, list) or not value:
        raise BadValue(f'expected a list of tables such as [{{ listen = "127.0.0.1:8000" }}], '
                       f"got {type_name(value)}")  # fmt: skip
    specs: list[SocketSpec] = []
    for number, raw in enumerate(value, 1):
        try:
            spec = _socket(raw)
        except BadValue as exc:
            raise BadValue(f"socket {number}: {exc}") from None
        if any(other.place == spec.place for other in specs):
            raise BadValue(f"socket {number}: {spec.where} is listed twice")
        specs.append(spec)
    return tuple(specs)


def activate(value: object) -> bool:
    """``activate = "on-connection"`` (the one way there is, besides starting as usual)."""
    if value != "on-connection":
        raise BadValue(f'expected "on-connection", got {value!r}')
    return True


def max_connections(value: object) -> int:
    return integer(value, 1, 65536)


def fd_store_max(value: object) -> int:
    return integer(value, 0, FD_STORE_LIMIT)


def watchdog(value: object) -> float:
    seconds = duration(value)
    if seconds <= 0:
        raise BadValue("expected a duration above 0")
    return seconds


#: Each key and its parser, for the configuration's table of parsers.
PARSERS: dict[str, Callable[[object], Any]] = {
    "sockets": sockets,
    "activate": activate,
    "accept": boolean,
    "max_connections": max_connections,
    "fd_store_max": fd_store_max,
    "watchdog": watchdog,
}


def key_problems(values: Mapping[str, Any], table: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(message, key) for each way these keys contradict the rest of a service's table:
    ``values`` are the parsed keys, ``table`` the raw ones."""
    specs: tuple[SocketSpec, ...] = values.get("sockets", ())
    kind = values.get("type", ServiceType.SIMPLE)
    for key in ("activate", "accept"):
        if key in table and not specs:
            yield f"{key} needs sockets: it is about connections to them", key
    accept = values.get("accept", False)
    if "max_connections" in table and not accept:
        yield (
            "max_connections is for accept = true (one instance per connection)",
            "max_connections",
        )
    if accept and any(spec.kind == "udp" for spec in specs):
        yield "accept = true takes connections, and a udp socket has none", "accept"
    if specs and "instance" in table:
        why = "each connection's instance is named by its peer" if accept else (
            "its instances cannot share its sockets")  # fmt: skip
        yield f"a service with sockets has no instance template: {why}", "instance"
    ready_fd = values.get("ready_fd")
    if ready_fd is not None and specs and ready_fd < 3 + len(specs):
        yield f"ready_fd {ready_fd} is one of its sockets' fds (3 to {2 + len(specs)})", "ready_fd"
    for key in ("fd_store_max", "watchdog"):
        if key in table and kind is not ServiceType.NOTIFY:
            yield f'{key} is for type "notify": it is told on the notify socket', key
    if "liveness" in table and kind is ServiceType.ONESHOT:
        yield "a oneshot does not run on: liveness is for long-running types", "liveness"


def shared_sockets(definitions: Mapping[str, Definition]) -> list[GraphProblem]:
    """A place two services both listen on: only one can hold it."""
    holders: dict[tuple[str, str, int], str] = {}
    problems = []
    for name, definition in definitions.items():
        for spec in definition.sockets:
            other = holders.setdefault(spec.place, name)
            if other != name:
                problems.append(GraphProblem(name, "sockets", f"{spec.where} is also a socket "
                                             f"of {other}; only one service can listen there"))  # fmt: skip
    return problems
