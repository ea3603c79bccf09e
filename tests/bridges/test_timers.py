"""The timers bridge's own parts, for real but without corral: its state file, its wall-clock
alarm (a real timerfd), and the bridge on a real asyncio loop with its reports recorded.
The schedule itself is ``test_timers_schedule.py``; under corral, ``tests/system/test_timers.py``."""

from __future__ import annotations

import asyncio
import os
import select
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from corral.bridges.timer_clock import WallAlarm
from corral.bridges.timer_schedule import Track
from corral.bridges.timer_store import TimerStore, daemon_run, state_path
from corral.bridges.timers import Timers
from corral.control.protocol import ProtocolError, decode_request


class Link:
    """What the bridge says to the daemon, recorded."""

    def __init__(self) -> None:
        self.emitted: list[tuple[str, dict[str, str]]] = []
        self.schedules: list[dict[str, Any]] = []

    def emit(self, event: str, env: Mapping[str, str]) -> None:
        self.emitted.append((event, dict(env)))

    def send(self, cmd: str, **args: Any) -> None:
        assert cmd == "schedule" and args["source"] == "timers"
        self.schedules.append(args["timers"])

    def fired(self) -> list[str]:
        return [env["JOB"] for event, env in self.emitted if event == "timer"]


def bridge(store: TimerStore, body: Callable[[Timers, Link], Awaitable[None]]) -> Link:
    """Run ``body`` with a bridge on a fresh loop, its alarm on the loop as ``serve`` does."""
    link = Link()

    async def main() -> None:
        alarm = WallAlarm()
        timers = Timers(link, store, alarm)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        loop.add_reader(alarm.fileno(), timers.alarm)
        try:
            await body(timers, link)
        finally:
            loop.remove_reader(alarm.fileno())
            alarm.close()

    asyncio.run(main())
    return link


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


# -- where the tracks are kept ---------------------------------------------------------------


def test_the_state_file_is_beside_the_socket_or_in_var_lib_for_the_system() -> None:
    assert state_path("/srv/app/.corral/control.sock") == "/srv/app/.corral/timers.json"
    assert state_path("/tmp/x/my.sock") == "/tmp/x/my.sock.timers.json"
    assert state_path("/run/corral/control.sock") == "/var/lib/corral/timers.json"


def test_a_run_of_corral_is_told_apart_by_its_pid_and_start_time() -> None:
    assert daemon_run(os.getpid()) == daemon_run(os.getpid())
    assert daemon_run(os.getpid()) != daemon_run(os.getppid())
    assert daemon_run() == daemon_run(os.getppid())  # the bridge's parent: the daemon


def test_tracks_survive_in_the_file_and_say_which_run_wrote_them(tmp_path: Path) -> None:
    path = str(tmp_path / "timers.json")
    tracks = {"nightly": Track("spec", last_run=12.5, mark=10.0), "tick": Track("s", due=3.0)}
    TimerStore(path, "run-1").save(tracks)
    assert TimerStore(path, "run-1").load() == (True, tracks)
    assert TimerStore(path, "run-2").load() == (False, tracks)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_an_unreadable_state_file_starts_afresh(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "timers.json"
    path.write_text("{not json")
    assert TimerStore(str(path), "run").load() == (False, {})
    assert "cannot be read" in capsys.readouterr().err
    assert TimerStore(str(tmp_path / "none.json"), "run").load() == (False, {})


def test_a_state_file_that_cannot_be_written_is_said_once(tmp_path: Path, capsys: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = TimerStore(str(blocker / "timers.json"), "run")  # a directory that cannot be
    store.save({})
    store.save({})
    assert capsys.readouterr().err.count("cannot write") == 1


# -- the wall-clock alarm --------------------------------------------------------------------


def readable(alarm: WallAlarm, timeout: float) -> bool:
    return bool(select.select([alarm], [], [], timeout)[0])


def test_the_alarm_rings_at_its_wall_clock_moment_and_not_before() -> None:
    alarm = WallAlarm()
    try:
        alarm.arm(time.time() + 0.3)
        assert not readable(alarm, 0.0)
        assert readable(alarm, 10.0)
        assert alarm.read() == "rang" and alarm.read() is None
        alarm.arm(time.time() - 60)  # a moment already past: at once
        assert readable(alarm, 10.0) and alarm.read() == "rang"
        alarm.arm(time.time() + 0.05)
        alarm.arm(None)  # disarmed: never
        assert not readable(alarm, 0.3)
    finally:
        alarm.close()


# -- the bridge ------------------------------------------------------------------------------


def test_an_every_timer_fires_and_reports_its_last_and_next_run(tmp_path: Path) -> None:
    store = TimerStore(str(tmp_path / "timers.json"), "run")

    async def body(timers: Timers, link: Link) -> None:
        timers.plan({"tick": {"every": 0.2}})
        await until(lambda: len(link.fired()) >= 3)
        last = link.schedules[-1]["tick"]
        assert last["last_run"] <= time.time() < last["next_run"] <= time.time() + 0.25

    link = bridge(store, body)
    assert link.schedules[0]["tick"]["last_run"] is None
    assert set(link.fired()) == {"tick"}


def test_a_calendar_timer_fires_on_the_wall_clock_alarm(tmp_path: Path) -> None:
    store = TimerStore(str(tmp_path / "timers.json"), "run")

    async def body(timers: Timers, link: Link) -> None:
        timers.plan({"often": {"on_calendar": "*:*:*"}})  # every second
        await until(lambda: len(link.fired()) >= 2)

    assert bridge(store, body).fired()[:2] == ["often", "often"]


def test_a_restarted_bridge_goes_on_without_firing_twice(tmp_path: Path) -> None:
    """The same run of corral: the second bridge finds the first one's schedule."""
    path = str(tmp_path / "timers.json")
    fired_at: list[float] = []

    async def first(timers: Timers, link: Link) -> None:
        timers.plan({"tick": {"every": 1.0}})
        await until(lambda: link.fired())
        fired_at.append(time.monotonic())

    bridge(TimerStore(path, "run"), first)

    async def second(timers: Timers, link: Link) -> None:
        timers.plan({"tick": {"every": 1.0}})
        assert not link.fired(), "fired again at once"
        await until(lambda: link.fired())
        fired_at.append(time.monotonic())

    bridge(TimerStore(path, "run"), second)
    assert fired_at[1] - fired_at[0] >= 0.95


def test_a_reload_that_leaves_a_timer_alone_keeps_its_schedule(tmp_path: Path) -> None:
    store = TimerStore(str(tmp_path / "timers.json"), "run")

    async def body(timers: Timers, link: Link) -> None:
        timers.plan({"slow": {"every": 3600}, "gone": {"every": 60}})
        before = link.schedules[-1]["slow"]["next_run"]
        await asyncio.sleep(0.05)
        timers.plan({"slow": {"every": 3600}, "new": {"on_calendar": "daily"}})
        after = link.schedules[-1]
        assert after["slow"]["next_run"] == pytest.approx(before, abs=0.01)
        assert set(after) == {"slow", "new"} and set(timers.tracks) == {"slow", "new"}

    assert bridge(store, body).fired() == []


def test_a_timer_the_bridge_cannot_read_is_said_and_left_out(tmp_path: Path, capsys: Any) -> None:
    store = TimerStore(str(tmp_path / "timers.json"), "run")

    async def body(timers: Timers, link: Link) -> None:
        timers.plan({"bad": {"on_calendar": "25:00"}, "good": {"every": 60}})
        assert set(link.schedules[-1]) == {"good"}

    bridge(store, body)
    assert "timers: bad:" in capsys.readouterr().err


# -- its request ---------------------------------------------------------------------------


def test_the_schedule_request_is_checked() -> None:
    line = b'{"cmd":"schedule","source":"timers","timers":{"a":{"last_run":null,"next_run":5}}}'
    assert decode_request(line).args["timers"] == {"a": {"last_run": None, "next_run": 5}}
    for bad in (b'"timers":[]', b'"timers":{"a":{"when":1}}', b'"timers":{"a":{"last_run":"x"}}'):
        with pytest.raises(ProtocolError):
            decode_request(b'{"cmd":"schedule","source":"timers",' + bad + b"}")
    assert decode_request(b'{"cmd":"trigger","name":"nightly"}').args == {"name": "nightly"}
    with pytest.raises(ProtocolError, match="missing"):
        decode_request(b'{"cmd":"trigger"}')
