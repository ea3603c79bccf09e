"""The keys of timers (``every``, ``on_calendar``, ``persistent``, ``random_delay``) and of
D-Bus (``bus_name``): their value parsers, which ``values.PARSERS`` takes in. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from corral.core.calendar import Calendar, CalendarError, parse_calendar
from corral.core.scalars import BadValue, boolean, duration, nonempty_string

#: A well-known D-Bus name: two or more dot-separated elements, none starting with a digit.
BUS_NAME = re.compile(r"^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$")


def _every(value: object) -> float:
    seconds = duration(value)
    if seconds <= 0:
        raise BadValue("expected a duration above 0")
    return seconds


def _calendar(value: object) -> Calendar:
    text = nonempty_string(value)
    try:
        calendar = parse_calendar(text)
    except CalendarError as exc:
        raise BadValue(f'cannot read the calendar "{text}": {exc}') from None
    return calendar


def _bus_name(value: object) -> str:
    name = nonempty_string(value)
    if len(name) > 255 or not BUS_NAME.match(name):
        raise BadValue(f'"{name}" is not a D-Bus name such as "org.example.Foo"')
    return name


PARSERS: dict[str, Callable[[object], Any]] = {
    "every": _every,
    "on_calendar": _calendar,
    "persistent": boolean,
    "random_delay": duration,
    "bus_name": _bus_name,
}
