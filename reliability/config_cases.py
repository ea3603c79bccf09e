"""Mutated configurations for the config fuzz, from one real one (``BASE``): every key's
value replaced by every TOML type and by huge, unicode and deeply nested values; cycles;
bad expressions; invalid UTF-8 and cut files; odd file names and files that are not files.

A case is a directory of files (the source ``config check -c`` and the daemon read), made
by ``Case.write``. Everything is drawn from a seeded ``random.Random``: a run is repeatable.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgspec import Struct

Table = dict[str, Any]

#: Every kind of key a real install uses, one service each (or a few), all of them valid.
BASE: dict[str, Table] = {
    "db": {"exec": ["sleep", "3600"], "type": "simple", "stop_signal": "INT",
           "stop_timeout": 5, "restart": "on-failure", "restart_limit": [5, 10],
           "env": {"PGDATA": "data", "N": "1"}, "description": "the database",
           "log": {"max_size": 1048576, "keep": 2, "lines": 100}, "start_grace": 0},
    "web": {"script": "exec sleep 3600", "requires": ["db"], "after": ["db"],
            "ready": {"exec": "true", "interval": "100ms", "timeout": "5s"},
            "actions": {"hello": "echo hello", "slow": {"command": ["true"], "timeout": 2}},
            "pre_start": "true", "post_stop": ["true"], "restart_delay": "200ms",
            "umask": "022", "timeout_start": "30s", "normal_exit": [0, "TERM"]},
    "getty": {"exec": ["sleep", "3600"], "instance": "${TTY}", "while": "tty(TTY=*)"},
    "tty": {"start_on": "tty-added TTY=*", "stop_on": "tty-removed TTY=$TTY",
            "instance": "${TTY}"},
    "worker": {"exec": "sleep 3600", "wants": ["web"], "provides": ["jobs"],
               "autostart": False, "restart": "always", "reload_signal": "USR1"},
    "batch": {"exec": ["true"], "type": "oneshot", "start_on": "started web or startup",
              "autostart": False},
}  # fmt: skip

#: Samples of every TOML type and the edges of each (None: the key is removed).
SAMPLES: list[Any] = [
    None, "", "x", "sleep 1", 0, 1, -1, 2**63 - 1, -(2**63), 1.5, -0.0, math.inf, -math.inf,
    math.nan, 1e308, True, False, [], [1], ["a", 1], [[]], [{}], {}, {"a": 1}, {"": ""},
    "1979-05-27T07:32:00Z", "\u202eevil", "é", "\u0000", "\u001b[31m", "${NOPE}", "$$", "../x",
]  # fmt: skip

#: Words an expression is made of, right and wrong.
TOKENS = ["and", "or", "not", "(", ")", "db", "web", "started", "stopped", "tty-added",
          "KEY=*", "KEY!=x", "=", "!=", "$", "$TTY", "${TTY}", "*", "all", "2", "of", "|",
          "tty(TTY=*)", "tty(", "'", '"', ",", "é", "\u0000"]  # fmt: skip


class Case(Struct):
    """One mutated configuration: files (name → bytes) in a directory, and special files
    (name → ``fifo``, ``dir``, ``loop``, ``dangling``, ``zero``, ``big``) beside them."""

    kind: str
    what: str
    files: dict[bytes, bytes]
    special: dict[bytes, str] = {}

    def write(self, directory: Path) -> None:
        os.makedirs(directory, exist_ok=True)
        base = os.fsencode(directory)
        for name, data in self.files.items():
            with open(os.path.join(base, name), "wb") as handle:
                handle.write(data)
        for name, kind in self.special.items():
            _make_special(os.path.join(base, name), kind)


def _make_special(path: bytes, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        os.mkdir(path)
    elif kind == "loop":
        os.symlink(path, path)
    elif kind == "dangling":
        os.symlink(b"/nonexistent/corral-fuzz", path)
    elif kind == "zero":
        os.symlink(b"/dev/zero", path)


# --- TOML text ---------------------------------------------------------------------------


def toml(services: dict[str, Table]) -> bytes:
    """``services`` as a TOML file of ``[service.NAME]`` tables (values inline)."""
    out = []
    for name, table in services.items():
        out.append(f"[service.{_key(name)}]")
        out += [f"{_key(key)} = {_value(value)}" for key, value in table.items()]
        out.append("")
    return "\n".join(out).encode("utf-8", "surrogatepass")


def _key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else _string(key)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if value == "1979-05-27T07:32:00Z" else _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


# --- the mutations -----------------------------------------------------------------------


def _copy() -> dict[str, Table]:
    copied: dict[str, Table] = json.loads(json.dumps(BASE))
    return copied


def _paths(services: dict[str, Table]) -> list[tuple[str, ...]]:
    """Every (service, key, sub-key...) of ``services``, nested tables and lists included."""
    found: list[tuple[str, ...]] = []

    def walk(value: Any, path: tuple[str, ...]) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            found.append((*path, str(key)))
            if isinstance(child, dict | list) and child:
                walk(child, (*path, str(key)))

    for name, table in services.items():
        walk(table, (name,))
    return found


def _set(services: dict[str, Table], path: tuple[str, ...], value: Any) -> None:
    holder: Any = services
    for key in path[:-1]:
        holder = holder[int(key)] if isinstance(holder, list) else holder[key]
    last = path[-1]
    if isinstance(holder, list) and value is None:
        del holder[int(last)]
    elif isinstance(holder, list):
        holder[int(last)] = value
    elif value is None:
        holder.pop(last, None)
    else:
        holder[last] = value


def type_swap(rng: random.Random) -> Case:
    services = _copy()
    path = rng.choice(_paths(services))
    sample = rng.choice(SAMPLES)
    _set(services, path, sample)
    return Case("type", f"{'.'.join(path)} = {sample!r:.40}", {b"main.toml": toml(services)})


def huge(rng: random.Random) -> Case:
    services = _copy()
    path = rng.choice(_paths(services))
    value: Any = rng.choice(
        ["x" * 1_000_000, list(range(100_000)), 10**400, 2**64, "1" * 5000 + "h",
         {f"K{i}": "v" for i in range(50_000)}]
    )  # fmt: skip
    _set(services, path, value)
    what = f"{'.'.join(path)} = {type(value).__name__} of {len(str(value))} characters"
    return Case("huge", what, {b"main.toml": toml(services)})


def many_services(rng: random.Random) -> Case:
    count = rng.choice((2000, 10_000))
    services = {f"s{i}": {"exec": ["sleep", "1"], "requires": [f"s{i - 1}"] if i else []}
                for i in range(count)}  # fmt: skip
    return Case("huge", f"{count} services in one requires chain", {b"main.toml": toml(services)})


def unicode_names(rng: random.Random) -> Case:
    services = _copy()
    odd = rng.choice(["é", "\u202edb", "db\u200b", "\uff24\uff22", "d b", "-db", ".db", "@db", "db\n",
                      "日本", "a" * 300, "", "all", "corral", "db:1", "db/x", "..", "db\u0000"])  # fmt: skip
    services[odd] = services.pop("worker")
    services["web"]["requires"] = [odd]
    return Case("unicode", f"a service named {odd!r:.40}", {b"main.toml": toml(services)})


def deep(rng: random.Random) -> Case:
    depth = rng.choice((100, 10_000, 100_000))
    kind = rng.choice(("array", "table", "expression"))
    if kind == "array":
        text = f'[service.db]\nexec = ["sleep", "1"]\nenv = {{A = {"[" * depth}{"]" * depth}}}\n'
    elif kind == "table":
        text = f'[service.db]\nexec = ["sleep", "1"]\nenv = {"{A = " * depth}1{"}" * depth}\n'
    else:
        expr = "(" * depth + "started db" + ")" * depth
        text = f'[service.db]\nexec = ["sleep", "1"]\nstart_on = "{expr}"\n'
    return Case("deep", f"{kind} nested {depth} deep", {b"main.toml": text.encode()})


def cycle(rng: random.Random) -> Case:
    length = rng.choice((1, 2, 3, 50))
    key = rng.choice(("requires", "wants", "after", "provides"))
    services = _copy()
    names = [f"c{i}" for i in range(length)]
    for index, name in enumerate(names):
        services[name] = {"exec": ["sleep", "1"], key: [names[(index + 1) % length]]}
    if rng.random() < 0.3:
        services["c0"]["while"] = "c0"
        services["c0"].pop(key)
    return Case("cycle", f"{key} cycle of {length}", {b"main.toml": toml(services)})


def bad_expression(rng: random.Random) -> Case:
    services = _copy()
    key = rng.choice(("start_on", "stop_on", "while"))
    expr = " ".join(rng.choice(TOKENS) for _ in range(rng.randrange(1, 12)))
    services["worker"][key] = expr
    return Case("expression", f"{key} = {expr!r:.60}", {b"main.toml": toml(services)})


def bad_bytes(rng: random.Random) -> Case:
    data = bytearray(toml(_copy()))
    how = rng.choice(("flip", "cut", "bom", "nul", "crlf", "latin-1"))
    if how == "flip":
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif how == "cut":
        del data[rng.randrange(len(data)) :]
    elif how == "bom":
        data[:0] = b"\xef\xbb\xbf"
    elif how == "nul":
        data.insert(rng.randrange(len(data)), 0)
    elif how == "crlf":
        data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
    else:
        data = bytearray(bytes(data).replace(b"database", "d\xe9j\xe0".encode("latin-1")))
    return Case("bytes", how, {b"main.toml": bytes(data)})


def odd_files(rng: random.Random) -> Case:
    """Odd names and files that are not regular files, beside a good one."""
    good = toml({"db": BASE["db"]})
    bad = toml({"web": {"exec": 5}})
    name = rng.choice([b"a b.toml", b"new\nline.toml", b"\xff\xfe.toml", b"-c.toml",
                       b"x" * 250 + b".toml", "é😀.toml".encode(), b"..toml",
                       b"web.override.toml", b"%s%n.toml", b"\x1b[31m.toml"])  # fmt: skip
    files = {b"main.toml": good, name: bad if rng.random() < 0.7 else good}
    special: dict[bytes, str] = {}
    if rng.random() < 0.5:
        special[b"odd.toml"] = rng.choice(["dir", "loop", "dangling", "fifo", "zero"])
    what = f"{name!r:.40} beside {', '.join(special.values()) or 'nothing else'}"
    return Case("files", what, files, special)


def two_files(rng: random.Random) -> Case:
    """One service in two files, overrides of what no file defines, of unknown keys."""
    override = {"override": True, rng.choice(("stop_timeout", "nope", "exec")): rng.choice(SAMPLES)}
    override = {k: v for k, v in override.items() if v is not None}
    files = {b"a.toml": toml({"db": BASE["db"]}),
             b"b.toml": toml({rng.choice(("db", "ghost")): override})}  # fmt: skip
    return Case("files", f"override {override!r:.60}", files)


MUTATIONS: list[Callable[[random.Random], Case]] = [
    type_swap, type_swap, type_swap, huge, many_services, unicode_names, deep, cycle,
    bad_expression, bad_expression, bad_bytes, bad_bytes, odd_files, two_files,
]  # fmt: skip


def cases(count: int, seed: int) -> list[Case]:
    """``count`` cases: every mutation in turn, each drawn from the seeded generator."""
    rng = random.Random(seed)
    return [MUTATIONS[index % len(MUTATIONS)](rng) for index in range(count)]


def base_case() -> Case:
    return Case("base", "the real configuration", {b"main.toml": toml(_copy())})
