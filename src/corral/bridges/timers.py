"""The timers bridge: ``every`` and ``on_calendar`` as the event ``timer JOB=NAME``, which
starts the job (``daemon/activation.py``).

The daemon's ``watched`` answer names the timers (``core/timer_jobs.py``) and comes again
after each reload that changes them; a timer whose plan did not change keeps its schedule.
When each fires is decided in ``timer_schedule.py``; here are the clocks: an asyncio timer
(the monotonic clock) per ``every``, and one wall-clock alarm (``timer_clock.py``) for the
earliest calendar moment, which also rings when the clock is set. Nothing else wakes the
bridge: idle, it uses no CPU. Each firing is written to the state file (``timer_store.py``)
before it is emitted, so a bridge killed at any moment never fires twice; after each firing
and each change the bridge reports every timer's ``last_run`` and ``next_run`` (the
``schedule`` request), which ``corral status --json`` shows.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Mapping
from typing import Any

from corral.bridges.link import Link, notify_ready
from corral.bridges.timer_clock import WallAlarm
from corral.bridges.timer_schedule import (
    Draw,
    Now,
    Plan,
    Track,
    due_at,
    fired,
    is_due,
    next_run,
    plan_of,
    resume,
)
from corral.bridges.timer_store import TimerStore, daemon_run, state_path

#: The event of a firing (``daemon/activation.py`` TIMER_EVENT).
EVENT = "timer"


def now() -> Now:
    return Now(time.time(), time.monotonic())


class Timers:
    """The plans, their tracks, and what is armed for them."""

    def __init__(
        self, link: Link, store: TimerStore, alarm: WallAlarm, draw: Draw = random.random
    ) -> None:
        self._link = link
        self._store = store
        self._alarm = alarm
        self._draw = draw
        self._loop = asyncio.get_running_loop()
        self.plans: dict[str, Plan] = {}
        self.tracks: dict[str, Track] = {}
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._same_run, self._kept = store.load()

    def plan(self, entries: Mapping[str, Any]) -> None:
        """The timers to run now (the daemon's ``watched``)."""
        plans: dict[str, Plan] = {}
        for name, entry in entries.items():
            try:
                plans[name] = plan_of(name, entry)
            except ValueError as exc:
                print(f"timers: {exc}", file=sys.stderr)
        at = now()
        for name in set(self.plans) - set(plans):
            self._disarm(name)
            del self.tracks[name]
        for name, plan in plans.items():
            if self.plans.get(name) == plan:
                continue
            known = self.tracks.get(name)
            kept = known if known is not None else self._kept.pop(name, None)
            same_run = known is not None or self._same_run
            self.tracks[name] = resume(plan, kept, same_run, at, self._draw)
            self._disarm(name)
        self.plans = plans
        self._store.save(self.tracks)
        self._fire_due()  # what was missed and is to be made up: at once
        self._arm()
        self._report()

    # -- arming ------------------------------------------------------------------------

    def _arm(self) -> None:
        """An asyncio timer for each ``every`` not yet armed; the alarm at the earliest
        calendar moment."""
        earliest: float | None = None
        at = now()
        for name, plan in self.plans.items():
            due = due_at(plan, self.tracks[name])
            if due is None:
                continue
            clock, when = due
            if clock == "wall":
                earliest = when if earliest is None else min(earliest, when)
            elif name not in self._handles:
                delay = max(0.0, when - at.mono)
                self._handles[name] = self._loop.call_at(
                    self._loop.time() + delay, self._ring, name
                )
        if earliest != self._alarm.at:
            self._alarm.arm(earliest)

    def _disarm(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _ring(self, name: str) -> None:
        """An ``every`` timer is due."""
        self._handles.pop(name, None)
        if name in self.plans:
            self._fire(name, now())
        self._arm()
        self._report()

    def alarm(self) -> None:
        """The wall-clock alarm rang, or the clock was set: fire what is due, arm again."""
        if self._alarm.read() is None:
            return
        self._alarm.at = None  # rung or cancelled: armed again below
        self._fire_due()
        self._arm()
        self._report()

    # -- firing ------------------------------------------------------------------------

    def _fire_due(self) -> None:
        at = now()
        for name, plan in self.plans.items():
            if is_due(plan, self.tracks[name], at):
                self._disarm(name)
                self._fire(name, at)

    def _fire(self, name: str, at: Now) -> None:
        self.tracks[name] = fired(self.plans[name], self.tracks[name], at, self._draw)
        self._store.save(self.tracks)  # first: a bridge killed now does not fire it again
        self._link.emit(EVENT, {"JOB": name})

    def _report(self) -> None:
        at = now()
        runs = {
            name: {"last_run": track.last_run, "next_run": next_run(self.plans[name], track, at)}
            for name, track in self.tracks.items()
        }
        self._link.send("schedule", source="timers", timers=runs)


async def serve(link: Link) -> None:
    loop = asyncio.get_running_loop()
    alarm = WallAlarm()
    timers = Timers(link, TimerStore(state_path(link.path), daemon_run()), alarm)
    loop.add_reader(alarm.fileno(), timers.alarm)
    try:
        first = True
        async for message in link.follow("watched", source="timers", follow=True):
            values = message if first else message.get("watched")
            if not isinstance(values, dict):
                continue
            timers.plan(values.get("timers") or {})
            if first:
                notify_ready()
                first = False
    finally:
        loop.remove_reader(alarm.fileno())
        alarm.close()
