"""The control protocol: newline-delimited JSON, one request and one reply per line.

Pure: validation and encoding only (cf. dinit's control-cmds.h). docs/protocol.md documents
it for clients in any language. Every request is an object with a ``cmd``; a reply is
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"code": N, "message": "..."}}``
where ``code`` is the CLI exit code the failure maps to (1 failed, 2 usage, 3 no such
service, 4 a client of another protocol version). Streaming commands (``logs`` with
``follow``) send further lines after the reply; a waiting ``start``/``stop``/``restart`` asked
for ``progress`` sends ``{"progress": [...]}`` lines before it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Struct

from corral import __version__
from corral.control.version import PROTOCOL_VERSION as PROTOCOL_VERSION  # re-exported
from corral.errors import EXIT_UNREACHABLE, EXIT_USAGE

MAX_LINE = 1024 * 1024

#: Each command with the argument keys it accepts.
COMMANDS: dict[str, frozenset[str]] = {
    "hello": frozenset(),
    "ping": frozenset(),
    "status": frozenset({"names", "targets", "table", "colour"}),
    "start": frozenset({"targets", "wait", "progress"}),
    "stop": frozenset({"targets", "wait", "progress"}),
    "restart": frozenset({"targets", "wait", "progress"}),
    "reload": frozenset({"targets"}),
    "wait": frozenset({"names", "timeout"}),
    # ``name``/``instance``/``env``: protocol 1's form for one service, still taken.
    "logs": frozenset({"targets", "name", "instance", "env", "lines", "follow"}),
    "down": frozenset(),
    "destroy": frozenset({"targets"}),
    "action": frozenset({"target", "action", "args", "chain"}),
    "graph": frozenset(),
    "emit": frozenset({"event", "env", "wait"}),
    "events": frozenset({"lines", "follow"}),
    "config_reload": frozenset(),
    "config_show": frozenset({"name"}),
    # A bridge's states (docs/protocol.md): what holds now, or (``replace``) all it holds.
    "state": frozenset({"source", "states", "replace"}),
    # What a bridge is to watch (the files bridge: the paths the conditions name).
    "watched": frozenset({"source", "follow"}),
    # Run a timer's job now, as if its timer fired (``corral trigger``).
    "trigger": frozenset({"name", "wait"}),
    # The timers bridge's last and next firing of each timer, for ``status``.
    "schedule": frozenset({"source", "timers"}),
}


#: Arguments a command cannot do without.
REQUIRED: dict[str, frozenset[str]] = {
    "start": frozenset({"targets"}),
    "stop": frozenset({"targets"}),
    "restart": frozenset({"targets"}),
    "reload": frozenset({"targets"}),
    "destroy": frozenset({"targets"}),
    "action": frozenset({"target", "action"}),
    "state": frozenset({"source", "states"}),
    "watched": frozenset({"source"}),
    "emit": frozenset({"event"}),
    "config_show": frozenset({"name"}),
    "trigger": frozenset({"name"}),
    "schedule": frozenset({"source", "timers"}),
}


class ProtocolError(Exception):
    """A request that is not well formed; answered with ``code`` and the connection kept."""

    code = EXIT_USAGE


class VersionMismatch(ProtocolError):
    """A client of another protocol version: it would misread the replies, so nothing it
    asks is done (code 4, as for a daemon it cannot reach)."""

    code = EXIT_UNREACHABLE


class Request(Struct, frozen=True):
    cmd: str
    args: dict[str, Any]


class StatusRow(msgspec.Struct):
    """One row of ``status`` (DESIGN.md's ``status --json`` fields, in this order). A struct
    because a thousand of them are built and encoded per full status, twice as fast as dicts."""

    name: str
    instance: str
    goal: str
    state: str
    pid: int | None
    ready: bool
    restarts: int
    exit_status: int | None
    exit_signal: str | None
    since: float
    stale: bool
    description: str
    error: str | None
    status_text: str | None
    done: bool = False  # a oneshot that exited 0: running with no process (the table: done)
    last_run: float | None = None  # a timer job: when it last fired (epoch seconds)
    next_run: float | None = None  # a timer job: when it fires next (epoch seconds)


_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def encode(message: object) -> bytes:
    """One message as one line."""
    return _encoder.encode(message) + b"\n"


def encoded(value: object) -> msgspec.Raw:
    """``value`` encoded now, to be sent as it is in later replies (a result kept while
    what it shows has not changed)."""
    return msgspec.Raw(_encoder.encode(value))


def ok(result: object = None) -> dict[str, object]:
    return {"ok": True, "result": result}


def error(code: int, message: str) -> dict[str, object]:
    return {"ok": False, "error": {"code": code, "message": message}}


def decode_request(line: bytes) -> Request:
    """Parse and check one request line; raise ProtocolError saying what is wrong."""
    try:
        data = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec lets the second out
        raise ProtocolError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a request is a JSON object with a 'cmd' key")
    cmd = data.pop("cmd", None)
    if not isinstance(cmd, str):
        raise ProtocolError("a request needs 'cmd', a string")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r}; known: {', '.join(sorted(COMMANDS))}")
    data.pop("id", None)
    _check_version(data.pop("v", PROTOCOL_VERSION))
    if cmd == "logs" and "name" in data and "targets" in data:
        raise ProtocolError("logs: give 'targets' or 'name', not both")
    unknown = set(data) - COMMANDS[cmd]
    if unknown:
        raise ProtocolError(f"{cmd}: unknown argument(s) {', '.join(sorted(unknown))}")
    missing = REQUIRED.get(cmd, frozenset()) - set(data)
    if missing:
        raise ProtocolError(f"{cmd}: missing argument(s) {', '.join(sorted(missing))}")
    for key, value in data.items():
        _CHECKS[key](cmd, value)
    return Request(cmd, data)


def hello() -> dict[str, object]:
    """What ``hello`` answers: the protocol's version and corral's."""
    return {"protocol": PROTOCOL_VERSION, "corral": __version__}


def _check_version(version: object) -> None:
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise VersionMismatch(
            f"protocol version mismatch: the client speaks corral protocol {version!r}, this "
            f"daemon protocol {PROTOCOL_VERSION} (corral {__version__}); use the corral that "
            "started the daemon"
        )


def _named_objects(
    cmd: str, value: object, key: str, what: str, keys: tuple[str, ...], empty_ok: bool = True
) -> list[dict[str, Any]]:
    """A list of objects, each with a ``name`` string and no other keys than ``keys``."""
    if not isinstance(value, list) or (not value and not empty_ok):
        raise ProtocolError(f"{cmd}: '{key}' must be a {'' if empty_ok else 'non-empty '}list")
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProtocolError(f"{cmd}: each {what} is an object with a 'name' string")
        if set(item) - {"name", *keys}:
            raise ProtocolError(f"{cmd}: a {what} has only name, {' and '.join(keys)}")
    return value


def _check_targets(cmd: str, value: object) -> None:
    targets = _named_objects(cmd, value, "targets", "target", ("instance", "env"), cmd == "logs")
    for target in targets:
        instance = target.get("instance")
        if instance is not None and not isinstance(instance, str):
            raise ProtocolError(f"{cmd}: a target's 'instance' is a string or null")
        _check_env(cmd, target.get("env", {}))


def _check_env(cmd: str, value: object) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError(f"{cmd}: 'env' maps strings to strings")


def _check_names(cmd: str, value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise ProtocolError(f"{cmd}: 'names' must be a list of strings")


def _check_strings(key: str) -> Any:
    def check(cmd: str, value: object) -> None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProtocolError(f"{cmd}: '{key}' must be a list of strings")

    return check


def _check_bool(key: str) -> Any:
    def check(cmd: str, value: object) -> None:
        if not isinstance(value, bool):
            raise ProtocolError(f"{cmd}: '{key}' must be true or false")

    return check


def _check_string(key: str, nullable: bool = False) -> Any:
    def check(cmd: str, value: object) -> None:
        if not (isinstance(value, str) or (nullable and value is None)):
            raise ProtocolError(f"{cmd}: '{key}' must be a string")

    return check


def _check_number(cmd: str, value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or value < 0
    ):
        raise ProtocolError(f"{cmd}: 'timeout' must be a number of seconds >= 0, or null")


def _check_states(cmd: str, value: object) -> None:
    for state in _named_objects(cmd, value, "states", "state", ("env", "holds")):
        if not isinstance(state.get("holds", True), bool):
            raise ProtocolError(f"{cmd}: a state's 'holds' is true or false")
        _check_env(cmd, state.get("env", {}))


def _check_timers(cmd: str, value: object) -> None:
    """``{NAME: {"last_run": seconds or null, "next_run": seconds or null}}``."""
    if not isinstance(value, dict):
        raise ProtocolError(f"{cmd}: 'timers' maps names to {{last_run, next_run}}")
    for runs in value.values():
        if not isinstance(runs, dict) or set(runs) - {"last_run", "next_run"}:
            raise ProtocolError(f"{cmd}: a timer's entry has only last_run and next_run")
        for when in runs.values():
            if when is not None and (isinstance(when, bool) or not isinstance(when, int | float)):
                raise ProtocolError(f"{cmd}: last_run and next_run are epoch seconds, or null")


def _check_lines(cmd: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ProtocolError(f"{cmd}: 'lines' must be an integer >= 0, or null")


_CHECKS = {
    "targets": _check_targets,
    "names": _check_names,
    "wait": _check_bool("wait"),
    "progress": _check_bool("progress"),
    "follow": _check_bool("follow"),
    "table": _check_bool("table"),
    "colour": _check_bool("colour"),
    "timeout": _check_number,
    "lines": _check_lines,
    "name": _check_string("name"),
    "action": _check_string("action"),
    "target": lambda cmd, value: _check_targets(cmd, [value]),
    "args": _check_strings("args"),
    "chain": _check_strings("chain"),
    "instance": _check_string("instance", nullable=True),
    "event": _check_string("event"),
    "env": _check_env,
    "source": _check_string("source"),
    "replace": _check_bool("replace"),
    "states": _check_states,
    "timers": _check_timers,
}
