"""When each timer fires: pure, with both clocks given as arguments (``Now``), so the tests
drive it with a clock of their own.

A timer is a ``Plan`` (what the configuration says) and a ``Track`` (where it is: kept in the
bridge's state file, so it outlives the bridge and corral).

* ``every``: by the monotonic clock. The first firing is ``every`` after the timer is set up
  (corral's start, or the reload that added or changed it); each next one ``every`` after the
  last firing (its random delay aside), so firings that were missed (the bridge was down) are
  never made up one by one. Setting the wall clock moves nothing.
* ``on_calendar``: by the wall clock. ``mark`` is the moment up to which the calendar has
  been dealt with (set up, or fired); the timer is due at the first matching moment after it.
  When that moment is already past (the clock was set forward, or the bridge was down), the
  timer fires once, and ``mark`` becomes now: what was passed runs once, not once per missed
  moment. Set back, the clock does not repeat what already ran.
* ``persistent``: a calendar firing missed while corral was down (the track comes from an
  earlier run of corral) runs once at start; without it the missed firing is dropped. A
  firing missed while only the bridge was down (same run of corral) always runs once.
* ``random_delay``: each firing comes up to this much later, a fresh draw each time; the
  schedule itself (the next due moment) is not moved by it.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

from msgspec import Struct, structs

from corral.core.calendar import Calendar, CalendarError, parse_calendar

#: A uniform draw in [0, 1): ``random.random`` in the bridge, a fixed value in tests.
Draw = Callable[[], float]

#: Which clock a due moment is on.
Clock = Literal["wall", "mono"]


class Now(NamedTuple):
    """Both clocks read at one moment."""

    wall: float  # epoch seconds (time.time)
    mono: float  # the monotonic clock (time.monotonic, the bridge loop's clock)


class Plan(Struct, frozen=True):
    """One timer as the configuration gives it (``core/timer_jobs.py``)."""

    name: str
    every: float | None = None
    calendar: Calendar | None = None
    persistent: bool = False
    random_delay: float = 0.0

    @property
    def spec(self) -> str:
        """What identifies this schedule: a track of another spec starts afresh."""
        calendar = self.calendar.text if self.calendar is not None else ""
        return f"every={self.every!r} calendar={calendar!r} delay={self.random_delay!r}"


class Track(Struct, frozen=True):
    """Where a timer is. ``due`` is on the monotonic clock, the rest on the wall clock."""

    spec: str
    last_run: float | None = None  # its last firing
    mark: float = 0.0  # calendar: the moments up to here are dealt with
    due: float | None = None  # every: the next firing, before its random delay
    delay: float = 0.0  # the random delay of the coming firing


def plan_of(name: str, entry: Mapping[str, Any]) -> Plan:
    """A timer from the daemon's ``watched`` answer; ValueError when it cannot be one."""
    every = entry.get("every")
    text = entry.get("on_calendar")
    if (every is None) == (text is None):
        raise ValueError(f"{name}: a timer has every or on_calendar")
    if every is not None and (not isinstance(every, int | float) or every <= 0):
        raise ValueError(f"{name}: every must be a number of seconds above 0")
    try:
        calendar = parse_calendar(text) if isinstance(text, str) else None
    except CalendarError as exc:
        raise ValueError(f"{name}: {exc}") from None
    delay = entry.get("random_delay") or 0.0
    if not isinstance(delay, int | float) or delay < 0:
        raise ValueError(f"{name}: random_delay must be a number of seconds >= 0")
    every = float(every) if every is not None else None
    persistent = bool(entry.get("persistent"))
    return Plan(name, every, calendar, persistent, float(delay))


def resume(plan: Plan, kept: Track | None, same_run: bool, now: Now, draw: Draw) -> Track:
    """The track of a timer being set up: ``kept`` is what the state file had (None: no
    record), ``same_run`` whether that was written in this run of corral (the bridge was
    restarted) rather than an earlier one."""
    delay = draw() * plan.random_delay
    if kept is None or kept.spec != plan.spec:
        last = kept.last_run if kept is not None else None
        due = now.mono + plan.every if plan.every is not None else None
        return Track(plan.spec, last, now.wall, due, delay)
    if same_run:
        return kept  # the schedule goes on; a firing missed meanwhile is due at once
    if plan.every is not None:
        return structs.replace(kept, due=now.mono + plan.every, delay=delay)
    mark = kept.mark if plan.persistent else now.wall
    return structs.replace(kept, mark=mark, delay=delay)


def due_at(plan: Plan, track: Track) -> tuple[Clock, float] | None:
    """When the timer fires next, and on which clock; None for a calendar that never
    comes again."""
    if plan.every is not None:
        assert track.due is not None
        return "mono", track.due + track.delay
    moment = _next_moment(plan, track.mark)
    return None if moment is None else ("wall", moment + track.delay)


def is_due(plan: Plan, track: Track, now: Now) -> bool:
    due = due_at(plan, track)
    return due is not None and due[1] <= (now.wall if due[0] == "wall" else now.mono)


def fired(plan: Plan, track: Track, now: Now, draw: Draw) -> Track:
    """The track after a firing at ``now``."""
    delay = draw() * plan.random_delay
    if plan.every is not None:
        assert track.due is not None
        base = max(track.due, now.mono - track.delay)  # late (bridge down): from now
        return structs.replace(track, last_run=now.wall, due=base + plan.every, delay=delay)
    moment = _next_moment(plan, track.mark)
    mark = now.wall if moment is None else max(now.wall, moment)
    return structs.replace(track, last_run=now.wall, mark=mark, delay=delay)


def next_run(plan: Plan, track: Track, now: Now) -> float | None:
    """When the timer fires next, in epoch seconds (``status``'s ``next_run``)."""
    due = due_at(plan, track)
    if due is None:
        return None
    clock, when = due
    return when if clock == "wall" else now.wall + (when - now.mono)


def _next_moment(plan: Plan, after: float) -> float | None:
    """The calendar's first moment after the epoch time ``after``, as epoch seconds: in
    local time, or UTC for a calendar that says so."""
    calendar = plan.calendar
    assert calendar is not None
    if not math.isfinite(after):
        return None
    if calendar.utc:
        start = _dt.datetime.fromtimestamp(after, _dt.UTC).replace(tzinfo=None)
        moment = calendar.next_after(start)
        return None if moment is None else moment.replace(tzinfo=_dt.UTC).timestamp()
    moment = calendar.next_after(_dt.datetime.fromtimestamp(after))
    return None if moment is None else moment.timestamp()
