"""The value parsers of the configuration: each takes a raw TOML value and returns the typed
one, or raises :class:`BadValue` saying what was expected. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from corral.core.definition import Action, LogConfig
from corral.core.expr import Condition, ExprError, parse_events, parse_states
from corral.core.instances import variables_of
from corral.core.listen import PARSERS as LISTEN_PARSERS
from corral.core.probes import liveness, ready_probe
from corral.core.scalars import BadValue as BadValue
from corral.core.scalars import argv as _argv
from corral.core.scalars import boolean as _boolean
from corral.core.scalars import duration as _duration
from corral.core.scalars import hook as _hook
from corral.core.scalars import nonempty_string as _nonempty_string
from corral.core.scalars import signal_number as _signal_number
from corral.core.scalars import string as _string
from corral.core.scalars import type_name as type_name
from corral.core.states import RestartMode, ServiceType
from corral.core.timer_keys import PARSERS as TIMER_PARSERS

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")


def _env(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadValue(f"expected a table of NAME = value, got {type_name(value)}")
    env: dict[str, str] = {}
    for name, raw in value.items():
        if not ENV_NAME.match(name):
            raise BadValue(f'"{name}" is not a valid environment variable name')
        if isinstance(raw, bool):
            env[name] = "true" if raw else "false"
        elif isinstance(raw, str) and "\0" in raw:
            raise BadValue(f"{name}: a value cannot hold a NUL byte (no exec can pass one)")
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
    "ready": ready_probe,
    "actions": _actions,
    "start_on": _condition(parse_events),
    "stop_on": _condition(parse_events),
    "while": _condition(parse_states),
    "instance": _instance_template,
    "liveness": liveness,
    **LISTEN_PARSERS,
    **TIMER_PARSERS,
}
