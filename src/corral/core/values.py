"""The value parsers of the configuration: each takes a raw TOML value and returns the typed
one, or raises :class:`BadValue` saying what was expected. Pure.
"""

from __future__ import annotations

import re
import shlex
import signal as _signal
from collections.abc import Callable
from typing import Any

from corral.core.definition import Action, Command, LogConfig, Probe
from corral.core.expr import Condition, ExprError, parse_events, parse_states
from corral.core.instances import variables_of
from corral.core.patterns import compile_log_pattern
from corral.core.states import RestartMode, ServiceType

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


class BadValue(Exception):
    """A value is wrong; the message says what was expected."""


# -- value parsers: each takes the raw TOML value and returns the typed one ----------------


def type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise BadValue(f"expected a string, got {type_name(value)}")
    return value


def _nonempty_string(value: object) -> str:
    text = _string(value)
    if not text.strip():
        raise BadValue("expected a non-empty string")
    return text


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise BadValue(f"expected true or false, got {type_name(value)}")
    return value


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_UNIT = r"(ms|min|s|m|h)"
#: One number with an optional unit (``"30"``, ``"30s"``), or several each with its unit
#: (``"1h 30m"``, ``"1m30s"``).
_ONE_DURATION = re.compile(rf"\s*{_NUMBER}\s*{_UNIT}?\s*")
_DURATION_PART = re.compile(rf"{_NUMBER}\s*{_UNIT}\s*")
_DURATION_PARTS = re.compile(rf"\s*(?:{_DURATION_PART.pattern})+")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}
_EXPECTED_SECONDS = 'expected seconds (a number, or a string like "30s" or "1h 30m")'


def _duration(value: object) -> float:
    """Seconds, as a number or a string such as ``"500ms"``, ``"30s"``, ``"1h 30m"``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadValue(f"{_EXPECTED_SECONDS}, got {type_name(value)}")
    if isinstance(value, str):
        if one := _ONE_DURATION.fullmatch(value):
            seconds = float(one.group(1)) * _UNITS[one.group(2)]
        elif _DURATION_PARTS.fullmatch(value):
            seconds = sum(
                float(part.group(1)) * _UNITS[part.group(2)]
                for part in _DURATION_PART.finditer(value)
            )
        else:
            raise BadValue(f'{_EXPECTED_SECONDS}, got "{value}"')
    else:
        seconds = float(value)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise BadValue(f"expected a finite number of seconds >= 0, got {value}")
    return seconds


def _signal_number(value: object) -> int:
    """A signal as a name (``"INT"``, ``"SIGINT"``) or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(_signal.Signals(value))
        except ValueError:
            raise BadValue(f"{value} is not a signal number") from None
    text = _string(value).upper()
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise BadValue(f'expected a signal name such as "TERM" or "INT", got "{value}"') from None


def _argv(value: object) -> tuple[str, ...]:
    """An argv: a list of strings, or a string split like a shell would (no shell runs)."""
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise BadValue(f"cannot split the command line: {exc}") from None
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = list(value)
    else:
        raise BadValue(
            f"expected a command as a string or a list of strings, got {type_name(value)}"
        )
    if not words or not words[0]:
        raise BadValue("expected a command, got an empty one")
    return tuple(words)


def _hook(value: object) -> Command:
    """A hook or action: a string runs under ``/bin/sh -c``, a list is exec'd directly."""
    if isinstance(value, str):
        return Command(script=_nonempty_string(value))
    return Command(argv=_argv(value))


def _env(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadValue(f"expected a table of NAME = value, got {type_name(value)}")
    env: dict[str, str] = {}
    for name, raw in value.items():
        if not ENV_NAME.match(name):
            raise BadValue(f'"{name}" is not a valid environment variable name')
        if isinstance(raw, bool):
            env[name] = "true" if raw else "false"
        elif isinstance(raw, int | float | str):
            env[name] = str(raw)
        else:
            raise BadValue(f"{name}: expected a string or a number, got {type_name(raw)}")
    return env


def _paths(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_nonempty_string(value),)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise BadValue(f"expected a path or a list of paths, got {type_name(value)}")


def _user_or_group(value: object) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise BadValue(f"expected a name or a numeric id >= 0, got {value}")
        return value
    return _nonempty_string(value)


def _umask(value: object) -> int:
    """An octal mask: ``"022"`` or ``"0o022"``; an integer is read as written in octal digits."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        text = value.removeprefix("0o")
    if text is None or not re.fullmatch(r"[0-7]{1,4}", text):
        raise BadValue(f'expected an octal mask such as "022", got {value!r}')
    mask = int(text, 8)
    if mask > 0o777:
        raise BadValue(f"expected an octal mask up to 0777, got {value!r}")
    return mask


def _choice(enum: type[ServiceType] | type[RestartMode]) -> Callable[[object], Any]:
    def parse(value: object) -> Any:
        text = _string(value)
        try:
            return enum(text)
        except ValueError:
            allowed = " | ".join(f'"{m.value}"' for m in enum)
            raise BadValue(f'expected one of {allowed}, got "{text}"') from None

    return parse


def _restart_limit(value: object) -> tuple[int, float]:
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and value[0] >= 1
    ):
        return value[0], _duration(value[1])
    raise BadValue("expected [BURST, SECONDS]: at most BURST restarts within SECONDS, e.g. [5, 10]")


def _normal_exit(value: object) -> tuple[frozenset[int], frozenset[int]]:
    """Exit statuses (0-255) and signal names that count as a normal end."""
    items = value if isinstance(value, list) else [value]
    statuses: set[int] = set()
    signals: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item <= 255:
                raise BadValue(f"exit statuses are 0 to 255, got {item}")
            statuses.add(item)
        elif isinstance(item, str):
            signals.add(_signal_number(item))
        else:
            raise BadValue('expected exit statuses and signal names, e.g. [0, 2, "TERM"]')
    return frozenset(statuses), frozenset(signals)


_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)i?[bB]?\s*$")


def _size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
        if int(match.group(1)) > 0:
            return int(match.group(1)) * scale
    raise BadValue(f'expected a size in bytes such as 10485760 or "10M", got {value!r}')


def _log(value: object) -> LogConfig:
    """``log = false`` (memory only), ``log = "path"``, or a table of file/max_size/keep/lines."""
    if value is False:
        return LogConfig(file=None)
    if isinstance(value, str):
        return LogConfig(file=_nonempty_string(value))
    if not isinstance(value, dict):
        raise BadValue(f"expected false, a path, or a table, got {type_name(value)}")
    unknown = set(value) - {"file", "max_size", "keep", "lines"}
    if unknown:
        raise BadValue(
            f"unknown log key(s) {sorted(unknown)}: expected file, max_size, keep, lines"
        )
    config = LogConfig()
    file = value.get("file", "")
    if file is not False and not isinstance(file, str):
        raise BadValue("log.file: expected a path or false")
    keep, lines = value.get("keep", config.keep), value.get("lines", config.lines)
    for name, number in (("keep", keep), ("lines", lines)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise BadValue(f"log.{name}: expected an integer >= 0")
    return LogConfig(
        file=None if file is False else file,
        max_size=_size(value.get("max_size", config.max_size)),
        keep=keep,
        lines=lines,
    )


def names(value: object) -> tuple[str, ...]:
    """Service names (or aliases): a list of strings, or one string."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadValue(f"expected a list of service names, got {type_name(value)}")
    for item in items:
        if not SERVICE_NAME.match(item):
            raise BadValue(f'"{item}" is not a valid service name')
    return tuple(dict.fromkeys(items))


def _condition(parse: Callable[[str], Any]) -> Callable[[object], Condition]:
    def parse_condition(value: object) -> Condition:
        text = _nonempty_string(value)
        try:
            return Condition(text, parse(text))
        except ExprError as exc:
            raise BadValue(f'cannot read the condition "{text}" {exc}') from None

    return parse_condition


def _instance_template(value: object) -> str:
    text = _nonempty_string(value)
    if not variables_of(text):
        raise BadValue(
            f'expected a template that uses a variable, such as "${{TTY}}", got "{text}"'
        )
    return text


def _ready_fd(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 3 <= value <= 1023:
        return value
    raise BadValue(f"expected a file descriptor number from 3 to 1023, got {value!r}")


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _host_port(text: str) -> str:
    match = _HOST_PORT.match(text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise BadValue(f'ready.tcp: expected "HOST:PORT" such as "127.0.0.1:8000", got "{text}"')
    return text


def _probe(value: object) -> Probe:
    if not isinstance(value, dict):
        raise BadValue(
            f'expected a table such as {{ tcp = "127.0.0.1:8000" }}, got {type_name(value)}'
        )
    kinds = [k for k in ("tcp", "http", "exec", "log") if k in value]
    unknown = set(value) - {"tcp", "http", "exec", "log", "interval", "timeout"}
    if unknown:
        raise BadValue(f"unknown ready key(s) {sorted(unknown)}: expected tcp, http, exec or log, "
                   "with interval and timeout")  # fmt: skip
    if len(kinds) != 1:
        raise BadValue("expected exactly one of tcp, http, exec, log")
    kind = kinds[0]
    raw = value[kind]
    interval = _duration(value.get("interval", 0.2))
    timeout = _duration(value["timeout"]) if "timeout" in value else None
    if interval <= 0:
        raise BadValue("ready.interval: expected a duration above 0")
    if kind == "exec":
        return Probe(kind, command=_hook(raw), interval=interval, timeout=timeout)
    target = _nonempty_string(raw)
    if kind == "tcp":
        _host_port(target)
    elif kind == "http":
        if not re.match(r"^http://[^/\s]+(/\S*)?$", target):
            raise BadValue(
                f'ready.http: expected a URL such as "http://127.0.0.1:8000/health", got "{target}"'
            )
    else:
        try:
            compile_log_pattern(target)
        except ValueError as exc:
            raise BadValue(f"ready.log: {exc}") from None
    return Probe(kind, target=target, interval=interval, timeout=timeout)


ACTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _actions(value: object) -> dict[str, Action]:
    if not isinstance(value, dict):
        raise BadValue(f"expected a table of NAME = command, got {type_name(value)}")
    actions: dict[str, Action] = {}
    for name, raw in value.items():
        if not ACTION_NAME.match(name):
            raise BadValue(f'"{name}" is not a valid action name (letters, digits, _ and -)')
        if isinstance(raw, dict):
            unknown = set(raw) - {"command", "timeout"}
            if unknown or "command" not in raw:
                raise BadValue(f"{name}: expected {{ command = ..., timeout = ... }}")
            timeout = _duration(raw.get("timeout", 60.0))
            actions[name] = Action(_hook(raw["command"]), timeout)
        else:
            try:
                actions[name] = Action(_hook(raw))
            except BadValue as exc:
                raise BadValue(f"{name}: {exc}") from None
    return actions


PARSERS: dict[str, Callable[[object], Any]] = {
    "description": _string,
    "exec": _argv,
    "script": _nonempty_string,
    "type": _choice(ServiceType),
    "env": _env,
    "env_file": _paths,
    "cwd": _nonempty_string,
    "user": _user_or_group,
    "group": _user_or_group,
    "umask": _umask,
    "restart": _choice(RestartMode),
    "restart_delay": _duration,
    "restart_limit": _restart_limit,
    "normal_exit": _normal_exit,
    "stop_signal": _signal_number,
    "stop_timeout": _duration,
    "reload_signal": _signal_number,
    "timeout_start": _duration,
    "start_grace": _duration,
    "pre_start": _hook,
    "post_start": _hook,
    "pre_stop": _hook,
    "post_stop": _hook,
    "autostart": _boolean,
    "log": _log,
    "requires": names,
    "wants": names,
    "after": names,
    "provides": names,
    "ready_fd": _ready_fd,
    "pid_file": _nonempty_string,
    "ready": _probe,
    "actions": _actions,
    "start_on": _condition(parse_events),
    "stop_on": _condition(parse_events),
    "while": _condition(parse_states),
    "instance": _instance_template,
}
