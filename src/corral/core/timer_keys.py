"""The keys of timers (``every``, ``on_calendar``, ``persistent``, ``random_delay``) and of
D-Bus (``bus_name``): their value parsers, which ``values.PARSERS`` takes in, and the timer
keys that make no sense together (:func:`problems`). Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from corral.core.calendar import Calendar, CalendarError, parse_calendar
from corral.core.scalars import BadValue, boolean, duration, nonempty_string

#: A well-known D-Bus name: two or more dot-separated elements, none starting with a digit.
BUS_NAME = re.compile(r"^[A-Za-z_-][A-Za-z0-9_-]*(\.[A-Za-z_-][A-Za-z0-9_-]*)+$")

#: The keys that make a service a timer job.
SCHEDULES = ("every", "on_calendar")


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


def problems(values: Mapping[str, Any], table: Mapping[str, object]) -> list[tuple[str, str]]:
    """Timer keys that make no sense together, as (message, key): ``values`` are the parsed
    keys of one service, ``table`` its raw table."""
    schedule = next((key for key in SCHEDULES if key in table), None)
    if schedule is None:
        return [
            (f"{key} is for timers: it needs every or on_calendar", key)
            for key in ("persistent", "random_delay")
            if key in table
        ]
    found: list[tuple[str, str]] = []
    if all(key in table for key in SCHEDULES):
        found.append(("give either every or on_calendar, not both (one job per schedule)",
                      "on_calendar"))  # fmt: skip
    if values.get("persistent") and "on_calendar" not in table:
        found.append(("persistent is for on_calendar: an every timer counts from corral's "
                      "start, so it misses nothing while corral is down", "persistent"))  # fmt: skip
    if "exec" not in table and "script" not in table:
        found.append(("a timer runs its job's process; a state (no exec or script) has none",
                      schedule))  # fmt: skip
    for key in ("instance", "accept"):
        if values.get(key):
            found.append((f"a timer starts one instance; with {key} a firing would not know "
                          "which", key))  # fmt: skip
    if "while" in table:
        found.append(("a timer job is started by its timer, and while would start and stop "
                      "it too; give it start_on, or put the while on another job", "while"))  # fmt: skip
    return found
