"""The scalar value parsers that every key's parser builds on: strings, booleans,
durations, signals, command lines. Each takes a raw TOML value and returns the typed one, or
raises :class:`BadValue` saying what was expected. Pure.
"""

from __future__ import annotations

import re
import shlex
import signal as _signal

from corral.core.definition import Command


class BadValue(Exception):
    """A value is wrong; the message says what was expected."""


def type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def string(value: object) -> str:
    if not isinstance(value, str):
        raise BadValue(f"expected a string, got {type_name(value)}")
    return value


def nonempty_string(value: object) -> str:
    text = string(value)
    if not text.strip():
        raise BadValue("expected a non-empty string")
    return text


def boolean(value: object) -> bool:
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


def duration(value: object) -> float:
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
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise BadValue(f"{_EXPECTED_SECONDS}, got an integer too large") from None
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise BadValue(f"expected a finite number of seconds >= 0, got {value}")
    return seconds


def signal_number(value: object) -> int:
    """A signal as a name (``"INT"``, ``"SIGINT"``) or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(_signal.Signals(value))
        except ValueError:
            raise BadValue(f"{value} is not a signal number") from None
    text = string(value).upper()
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise BadValue(f'expected a signal name such as "TERM" or "INT", got "{value}"') from None


def argv(value: object) -> tuple[str, ...]:
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
    if any("\0" in word for word in words):
        raise BadValue("a command cannot hold a NUL byte (no exec can pass one)")
    return tuple(words)


def hook(value: object) -> Command:
    """A hook or action: a string runs under ``/bin/sh -c``, a list is exec'd directly."""
    if isinstance(value, str):
        if "\0" in value:
            raise BadValue("a command cannot hold a NUL byte (no exec can pass one)")
        return Command(script=nonempty_string(value))
    return Command(argv=argv(value))


def integer(value: object, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    raise BadValue(f"expected an integer from {low} to {high}, got {value!r}")
