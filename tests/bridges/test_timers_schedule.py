"""When timers fire (``bridges/timer_schedule.py``), under a clock the test controls: no
sleeps, days pass in microseconds. The bridge around it is ``test_timers.py``; corral running
it, ``tests/system/test_timers.py``."""

from __future__ import annotations

import datetime as dt
import random

import pytest

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
from corral.core.calendar import parse_calendar

UTC = dt.UTC
DAY = 86400.0
#: 2027-03-10 00:00:00 UTC, a Wednesday.
MIDNIGHT = dt.datetime(2027, 3, 10, tzinfo=UTC).timestamp()


def zero() -> float:
    return 0.0


class Clock:
    """Both clocks: they advance together, and the wall clock can also be set."""

    def __init__(self, wall: float, mono: float = 1000.0) -> None:
        self.wall, self.mono = wall, mono

    def now(self) -> Now:
        return Now(self.wall, self.mono)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def run_until(
    plan: Plan, track: Track, clock: Clock, wall_end: float, draw: Draw = zero
) -> tuple[Track, list[float]]:
    """Let time pass until ``wall_end``, firing the timer whenever it is due, as the bridge
    does; the wall times of the firings."""
    fires: list[float] = []
    while True:
        due = due_at(plan, track)
        if due is None:
            break
        kind, when = due
        wait = max(0.0, when - (clock.wall if kind == "wall" else clock.mono))
        if clock.wall + wait > wall_end:
            break
        clock.advance(wait)
        assert is_due(plan, track, clock.now())
        fires.append(clock.wall)
        track = fired(plan, track, clock.now(), draw)
    clock.advance(wall_end - clock.wall)
    return track, fires


def every(seconds: float, delay: float = 0.0) -> Plan:
    return Plan("tick", every=seconds, random_delay=delay)


def calendar(text: str, persistent: bool = False, delay: float = 0.0) -> Plan:
    return Plan("nightly", calendar=parse_calendar(text), persistent=persistent, random_delay=delay)


# -- every ---------------------------------------------------------------------------------


def test_every_fires_first_one_period_after_set_up_then_each_period() -> None:
    clock = Clock(MIDNIGHT)
    plan = every(300)
    track = resume(plan, None, False, clock.now(), zero)
    _, fires = run_until(plan, track, clock, MIDNIGHT + 1000)
    assert fires == [MIDNIGHT + 300, MIDNIGHT + 600, MIDNIGHT + 900]


def test_every_follows_the_monotonic_clock_whatever_the_wall_clock_does() -> None:
    clock = Clock(MIDNIGHT)
    plan = every(300)
    track = resume(plan, None, False, clock.now(), zero)
    clock.wall += 5 * 3600  # the wall clock set forward five hours
    assert not is_due(plan, track, clock.now())
    clock.wall -= 10 * 3600  # and back ten
    assert due_at(plan, track) == ("mono", 1300.0)
    clock.advance(300)
    assert is_due(plan, track, clock.now())


def test_every_makes_up_no_missed_firing_one_by_one() -> None:
    """The bridge was down for ten periods: one firing at its return, then the next a full
    period later."""
    clock = Clock(MIDNIGHT)
    plan = every(60)
    track = resume(plan, None, False, clock.now(), zero)
    clock.advance(600)
    track = resume(plan, track, True, clock.now(), zero)  # the bridge restarted, same run
    assert is_due(plan, track, clock.now())
    track = fired(plan, track, clock.now(), zero)
    assert not is_due(plan, track, clock.now())
    assert due_at(plan, track) == ("mono", clock.mono + 60)


def test_a_restarted_bridge_keeps_the_every_schedule_and_fires_nothing_twice() -> None:
    clock = Clock(MIDNIGHT)
    plan = every(60)
    track, fires = run_until(plan, resume(plan, None, False, clock.now(), zero), clock,
                             MIDNIGHT + 130)  # fmt: skip
    assert fires == [MIDNIGHT + 60, MIDNIGHT + 120]
    track = resume(plan, track, True, clock.now(), zero)
    _, fires = run_until(plan, track, clock, MIDNIGHT + 250)
    assert fires == [MIDNIGHT + 180, MIDNIGHT + 240]


def test_a_new_run_of_corral_counts_every_from_its_start() -> None:
    clock = Clock(MIDNIGHT)
    plan = every(60)
    track = resume(plan, None, False, clock.now(), zero)
    clock.advance(45)
    track = resume(plan, track, False, clock.now(), zero)  # corral restarted
    assert due_at(plan, track) == ("mono", clock.mono + 60)


# -- on_calendar ---------------------------------------------------------------------------


def test_a_calendar_timer_fires_at_each_matching_moment() -> None:
    clock = Clock(MIDNIGHT)
    plan = calendar("03:00 UTC")
    track = resume(plan, None, False, clock.now(), zero)
    _, fires = run_until(plan, track, clock, MIDNIGHT + 3 * DAY)
    assert fires == [MIDNIGHT + 3 * 3600 + n * DAY for n in range(3)]


def test_a_calendar_in_local_time_fires_at_the_local_moment() -> None:
    start = dt.datetime(2027, 3, 10, 12, 0).timestamp()  # local noon
    clock = Clock(start)
    plan = calendar("Thu 08:30")
    track = resume(plan, None, False, clock.now(), zero)
    assert due_at(plan, track) == ("wall", dt.datetime(2027, 3, 11, 8, 30).timestamp())


def test_the_wall_clock_set_forward_fires_what_was_passed_once() -> None:
    clock = Clock(MIDNIGHT + 30)
    plan = calendar("hourly UTC")
    track = resume(plan, None, False, clock.now(), zero)
    clock.wall += 5 * 3600  # five hourly moments passed at once
    assert is_due(plan, track, clock.now())
    track = fired(plan, track, clock.now(), zero)
    assert not is_due(plan, track, clock.now())
    assert due_at(plan, track) == ("wall", MIDNIGHT + 6 * 3600)


def test_the_wall_clock_set_back_repeats_nothing() -> None:
    clock = Clock(MIDNIGHT)
    plan = calendar("03:00 UTC")
    track, fires = run_until(plan, resume(plan, None, False, clock.now(), zero), clock,
                             MIDNIGHT + 4 * 3600)  # fmt: skip
    assert fires == [MIDNIGHT + 3 * 3600]
    clock.wall -= 2 * 3600  # back to 02:00: 03:00 comes again, but ran already
    _, fires = run_until(plan, track, clock, MIDNIGHT + 6 * 3600)
    assert fires == []
    assert due_at(plan, track) == ("wall", MIDNIGHT + DAY + 3 * 3600)


def test_persistent_runs_a_firing_missed_while_corral_was_down_once_at_start() -> None:
    clock = Clock(MIDNIGHT + 3600)  # 01:00, before the day's 03:00
    plan = calendar("03:00 UTC", persistent=True)
    track = resume(plan, None, False, clock.now(), zero)
    clock.advance(2 * DAY + 4 * 3600)  # corral was down over two 03:00s
    track = resume(plan, track, False, clock.now(), zero)
    assert is_due(plan, track, clock.now())
    track = fired(plan, track, clock.now(), zero)
    assert not is_due(plan, track, clock.now())
    assert due_at(plan, track) == ("wall", MIDNIGHT + 3 * DAY + 3 * 3600)


def test_without_persistent_a_firing_missed_while_corral_was_down_is_dropped() -> None:
    clock = Clock(MIDNIGHT + 3600)
    plan = calendar("03:00 UTC")
    track = resume(plan, None, False, clock.now(), zero)
    clock.advance(2 * DAY + 4 * 3600)
    track = resume(plan, track, False, clock.now(), zero)
    assert not is_due(plan, track, clock.now())
    assert due_at(plan, track) == ("wall", MIDNIGHT + 3 * DAY + 3 * 3600)


def test_a_firing_missed_while_only_the_bridge_was_down_runs_once() -> None:
    clock = Clock(MIDNIGHT + 2 * 3600)
    plan = calendar("03:00 UTC")  # not persistent: corral itself never stopped
    track = resume(plan, None, False, clock.now(), zero)
    clock.advance(2 * 3600)
    track = resume(plan, track, True, clock.now(), zero)
    assert is_due(plan, track, clock.now())
    track = fired(plan, track, clock.now(), zero)
    assert not is_due(plan, track, clock.now())


def test_a_calendar_that_never_comes_again_is_never_due() -> None:
    clock = Clock(MIDNIGHT)
    plan = calendar("2020-01-01 00:00 UTC")
    track = resume(plan, None, False, clock.now(), zero)
    assert due_at(plan, track) is None and next_run(plan, track, clock.now()) is None
    assert not is_due(plan, track, clock.now())


# -- random_delay, next_run, changes ---------------------------------------------------------


def test_random_delay_puts_each_calendar_firing_within_its_bounds() -> None:
    draws = random.Random(26)
    clock = Clock(MIDNIGHT)
    plan = calendar("03:00 UTC", delay=600)
    track = resume(plan, None, False, clock.now(), draws.random)
    _, fires = run_until(plan, track, clock, MIDNIGHT + 200 * DAY, draws.random)
    assert len(fires) == 200
    late = [(when - MIDNIGHT - 3 * 3600) % DAY for when in fires]
    assert all(0 <= seconds <= 600 for seconds in late)
    assert max(late) > 500 and min(late) < 100  # drawn afresh each time, over the range


def test_random_delay_puts_each_every_firing_within_its_bounds_without_moving_the_next() -> None:
    draws = random.Random(27)
    clock = Clock(MIDNIGHT)
    plan = every(60, delay=10)
    track = resume(plan, None, False, clock.now(), draws.random)
    _, fires = run_until(plan, track, clock, MIDNIGHT + 200 * 60 + 30, draws.random)
    assert len(fires) == 200
    late = [when - MIDNIGHT - 60 * (n + 1) for n, when in enumerate(fires)]
    assert all(0 <= seconds <= 10 for seconds in late)
    assert max(late) > 8 and min(late) < 2


def test_random_delay_at_its_extremes() -> None:
    clock = Clock(MIDNIGHT)
    plan = calendar("03:00 UTC", delay=600)
    assert due_at(plan, resume(plan, None, False, clock.now(), zero)) == (
        "wall", MIDNIGHT + 3 * 3600)  # fmt: skip
    track = resume(plan, None, False, clock.now(), lambda: 0.999999)
    assert next_run(plan, track, clock.now()) == pytest.approx(MIDNIGHT + 3 * 3600 + 600, abs=0.01)


def test_next_run_is_in_epoch_seconds_on_either_clock() -> None:
    clock = Clock(MIDNIGHT, mono=50.0)
    plan = every(300)
    track = resume(plan, None, False, clock.now(), zero)
    assert next_run(plan, track, clock.now()) == MIDNIGHT + 300
    nightly = calendar("03:00 UTC")
    track = resume(nightly, None, False, clock.now(), zero)
    assert next_run(nightly, track, clock.now()) == MIDNIGHT + 3 * 3600


def test_a_changed_timer_starts_afresh_and_keeps_its_last_run() -> None:
    clock = Clock(MIDNIGHT)
    plan = every(60)
    track, _ = run_until(plan, resume(plan, None, False, clock.now(), zero), clock,
                         MIDNIGHT + 70)  # fmt: skip
    assert track.last_run == MIDNIGHT + 60
    changed = every(300)
    track = resume(changed, track, True, clock.now(), zero)
    assert track.last_run == MIDNIGHT + 60
    assert due_at(changed, track) == ("mono", clock.mono + 300)


def test_a_timer_entry_is_read_as_the_daemon_gives_it() -> None:
    entry = {"every": None, "on_calendar": "daily", "persistent": True, "random_delay": 5}
    plan = plan_of("nightly", entry)
    assert plan.calendar == parse_calendar("daily") and plan.persistent
    assert plan.random_delay == 5.0 and plan.every is None
    assert plan_of("tick", {"every": 2}).every == 2.0


@pytest.mark.parametrize(
    "entry",
    [
        {},
        {"every": 5, "on_calendar": "daily"},
        {"every": 0},
        {"every": "5m"},
        {"on_calendar": "25:00"},
        {"every": 5, "random_delay": -1},
    ],
)
def test_a_timer_entry_that_cannot_be_one_is_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="tick"):
        plan_of("tick", entry)
