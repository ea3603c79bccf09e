"""Hostile request lines for the protocol fuzz, built from the real request list
(``COMMANDS`` in ``corral.control.protocol``): every value of every real request replaced by
every JSON type, random bytes, truncated and overlong lines, deep nesting.

Shared by the full run (``protocol_fuzz.py``), the hypothesis tests in CI and the atheris run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from corral.control.protocol import COMMANDS, PROTOCOL_VERSION

#: The fuzz daemon's configuration: services the real requests name, an action, an instance.
CONFIG = """\
[service.web]
exec = ["sleep", "3600"]
actions = { hello = "echo hello" }
start_grace = 0

[service.db]
exec = ["sleep", "3600"]
start_grace = 0

[service.tty]
exec = ["sleep", "3600"]
instance = "${TTY}"
autostart = false
start_grace = 0
"""

#: One sample of every JSON type, and the edges of each.
SAMPLES: list[Any] = [
    None, True, False, 0, -1, 1.5, -0.0, 2**63, -(2**63) - 1, 1e308, "", "web", "all",
    "x" * 5000, "\u0000", "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "../../../etc/passwd", "é\u202e", [], [None], ["web"], [{}], {}, {"": ""}, {"name": None},
    {"name": "web", "env": {"A": "\u0000"}}, [[[[[]]]]],
]  # fmt: skip

#: Requests as the CLI and the bridges send them, each with every argument it takes.
REAL: list[dict[str, Any]] = [
    {"cmd": "hello"},
    {"cmd": "ping"},
    {"cmd": "status", "names": ["web"], "targets": [{"name": "db"}], "table": True, "colour": False},
    {"cmd": "start", "targets": [{"name": "web", "instance": None, "env": {}}], "wait": True,
     "progress": False},
    {"cmd": "start", "targets": [{"name": "tty", "env": {"TTY": "tty1"}}], "wait": False},
    {"cmd": "stop", "targets": [{"name": "tty", "instance": "tty1"}], "wait": True, "progress": True},
    {"cmd": "restart", "targets": [{"name": "db"}], "wait": True},
    {"cmd": "reload", "targets": [{"name": "web"}]},
    {"cmd": "wait", "names": ["web"], "timeout": 5},
    {"cmd": "logs", "targets": [{"name": "web"}], "lines": 5, "follow": False},
    {"cmd": "logs", "name": "web", "instance": None, "env": {}, "lines": 5},
    {"cmd": "destroy", "targets": [{"name": "tty", "instance": "tty9"}]},
    {"cmd": "action", "target": {"name": "web"}, "action": "hello", "args": ["a"], "chain": []},
    {"cmd": "graph"},
    {"cmd": "emit", "event": "fuzz-event", "env": {"K": "V"}, "wait": True},
    {"cmd": "events", "lines": 5, "follow": False},
    {"cmd": "config_reload"},
    {"cmd": "config_show", "name": "web"},
    {"cmd": "state", "source": "fuzz", "states": [{"name": "fuzz-state", "env": {"A": "1"},
     "holds": True}], "replace": False},
]  # fmt: skip

#: Real requests never sent whole: ``down`` would end the daemon under test.
NEVER = frozenset({"down"})

#: A command added to the protocol since REAL was written is still fuzzed: each argument it
#: takes starts as a plain string, and is then replaced by every sample like the others.
REAL += [
    {"cmd": cmd, **dict.fromkeys(sorted(keys), "web")}
    for cmd, keys in sorted(COMMANDS.items())
    if cmd not in NEVER and cmd not in {request["cmd"] for request in REAL}
]


def covered_commands() -> set[str]:
    """Which commands of the protocol the real requests exercise (all but ``down``)."""
    return {request["cmd"] for request in REAL}


def missing_commands() -> set[str]:
    return set(COMMANDS) - NEVER - covered_commands()


def encode(request: object) -> bytes:
    return json.dumps(request, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def value_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside ``value`` (object members and list items, at any
    depth), the top level excluded."""
    children: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    for key, child in children:
        yield (*path, key)
        yield from value_paths(child, (*path, key))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of ``value`` with the value at ``path`` replaced by ``new``."""
    copy = json.loads(json.dumps(value))
    if not path:
        return new
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = new
    return copy


def type_swaps() -> Iterator[dict[str, Any]]:
    """Every real request with one value (``cmd`` and ``v`` included) replaced by every
    sample; never a whole ``down``."""
    for request in REAL:
        full = {**request, "v": PROTOCOL_VERSION}
        for path in value_paths(full):
            for sample in SAMPLES:
                candidate = replaced(full, path, sample)
                if not isinstance(candidate["cmd"], str) or candidate["cmd"] not in NEVER:
                    yield candidate


def random_bytes(rng: random.Random, size: int) -> bytes:
    """A line of random bytes (no newline inside, one at the end)."""
    return bytes(rng.randrange(256) for _ in range(size)).replace(b"\n", b" ") + b"\n"


def truncated(rng: random.Random) -> bytes:
    """A real request cut short, then a newline."""
    line = encode({**rng.choice(REAL), "v": PROTOCOL_VERSION})
    return line[: rng.randrange(1, len(line) - 1)] + b"\n"


def deep(depth: int, kind: str = "list") -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth + b"\n"
    return b'{"cmd": "status", "names": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}\n"


def is_error(reply: dict[str, Any]) -> bool:
    """An error reply as the protocol defines it: a code the CLI maps, and words."""
    error = reply.get("error")
    return (
        reply.get("ok") is False
        and isinstance(error, dict)
        and error.get("code") in (1, 2, 3, 4)
        and bool(error.get("message"))
    )


def is_reply(reply: dict[str, Any]) -> bool:
    """A reply of either kind, and not an internal error (a handler that failed)."""
    if reply.get("ok") is True:
        return "result" in reply
    return is_error(reply) and not str(reply["error"]["message"]).startswith("internal error")
