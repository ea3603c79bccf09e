"""Timers under a real corral: a real 2-second timer, ``corral trigger``, ``persistent``
across a restart of the daemon, the timers bridge SIGKILLed, an idle corral with a timer
armed, and ``config check`` of a bad calendar. The schedule's rules are tested under a clock
of the test's own in ``tests/bridges/test_timers_schedule.py``."""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from corral.cli.timers import cmd_trigger, trigger_args
from corral.errors import reported
from tests.system.conftest import Corral, wait_until

BRIDGE = "corral-bridge-timers"


def runs(path: Path) -> list[float]:
    """The times a job appended to its file, one line per run."""
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def timer_events(corral: Corral, job: str) -> int:
    records = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    return sum(r["name"] == "timer" and r["env"] == {"JOB": job} for r in records)


def bridge_ready(corral: Corral) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (row := corral.one(BRIDGE))["ready"] and row, 30, "the timers bridge"
    )
    return found


def cpu_ns(pid: int) -> int:
    """Nanoseconds every thread of ``pid`` has spent on a CPU (/proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total


def test_an_every_oneshot_runs_again_at_each_firing(corral: Corral) -> None:
    out = corral.root / "ticks"
    corral.write(f"""
        [service.tick]
        type = "oneshot"
        script = "date +%s.%N >> {out}"
        every = "2s"
        """)  # fmt: skip
    corral.up()
    assert corral.one("tick")["goal"] == "stop", "a timer job does not start with up"
    wait_until(lambda: len(runs(out)) >= 3, 30, "three firings")
    assert min(gaps(runs(out))) > 1.0
    assert timer_events(corral, "tick") >= 3
    row = corral.one("tick")
    assert row["state"] == "running" and row["pid"] is None  # done, until the next firing
    assert row["last_run"] <= time.time() < row["next_run"] <= row["last_run"] + 3


def test_a_reload_reschedules_a_timer_without_restarting_the_bridge(corral: Corral) -> None:
    out = corral.root / "ticks"
    config = f"""
        [service.tick]
        type = "oneshot"
        script = "date +%s.%N >> {out}"
        every = "1h"
        """
    corral.write(config)
    corral.up()
    bridge = bridge_ready(corral)
    hourly = wait_until(lambda: corral.one("tick")["next_run"], 15, "the schedule")
    assert hourly > time.time() + 3000
    corral.write(config.replace('"1h"', '"1s"'))
    corral.ok("config", "reload")
    wait_until(lambda: len(runs(out)) >= 2, 30, "the new schedule")
    assert corral.one(BRIDGE)["pid"] == bridge["pid"]
    assert corral.one("tick")["next_run"] < time.time() + 5


def test_a_firing_while_the_job_still_runs_is_skipped_and_logged(corral: Corral) -> None:
    out = corral.root / "starts"
    corral.write(f"""
        [service.slow]
        script = "date +%s.%N >> {out}; exec sleep 600"
        every = "1s"
        """)  # fmt: skip
    corral.up()
    wait_until(lambda: timer_events(corral, "slow") >= 3, 30, "three firings")
    assert len(runs(out)) == 1
    logs = corral.ok("logs", "slow", "-n", "20")
    assert "its timer fired while it still runs: this firing is skipped" in logs


def test_trigger_runs_a_timer_job_now_as_if_its_timer_fired(corral: Corral) -> None:
    out = corral.root / "backups"
    corral.write(f"""
        [service.backup]
        type = "oneshot"
        script = "date +%s.%N >> {out}"
        on_calendar = "2199-01-01"

        [service.web]
        exec = ["sleep", "600"]
        every = "1h"

        [service.plain]
        exec = ["sleep", "600"]
        """)  # fmt: skip
    corral.up()
    reply = corral.request("trigger", name="backup")
    assert reply["ok"] and reply["result"][0]["done"], reply
    assert len(runs(out)) == 1
    assert corral.request("trigger", name="backup")["ok"]  # a done oneshot runs again
    assert len(runs(out)) == 2 and timer_events(corral, "backup") == 2
    assert corral.one("backup")["last_run"] >= runs(out)[-1] - 1
    assert corral.request("trigger", name="web")["ok"]
    still = corral.request("trigger", name="web")["error"]
    assert still["code"] == 1 and "still runs" in still["message"]
    not_timer = corral.request("trigger", name="plain")["error"]
    assert not_timer["code"] == 1 and "has no timer" in not_timer["message"]
    assert corral.request("trigger", name="nope")["error"]["code"] == 3


def test_emitting_the_timer_event_is_a_firing_and_emit_waits_for_the_run(corral: Corral) -> None:
    out = corral.root / "backups"
    corral.write(f"""
        [service.backup]
        type = "oneshot"
        script = "sleep 0.3; date +%s.%N >> {out}"
        on_calendar = "2199-01-01"
        """)  # fmt: skip
    corral.up()
    for count in (1, 2):  # the second runs the done oneshot again
        result = corral.run("emit", "timer", "JOB=backup", timeout=20)
        assert result.returncode == 0, result.stderr
        assert len(runs(out)) == count, "emit returned before the run was over"


def test_the_trigger_command_prints_how_the_run_ended(
    corral: Corral, capsys: pytest.CaptureFixture[str]
) -> None:
    corral.write("""
        [service.backup]
        type = "oneshot"
        exec = ["true"]
        on_calendar = "2199-01-01"

        [service.broken]
        type = "oneshot"
        exec = ["false"]
        on_calendar = "2199-01-01"
        """)  # fmt: skip
    corral.up()
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", default=corral.socket)
    trigger_args(parser)
    assert cmd_trigger(parser.parse_args(["backup"])) == 0
    assert capsys.readouterr().out == "backup: done\n"
    assert reported(lambda: cmd_trigger(parser.parse_args(["broken"]))) == 1
    assert "broken" in capsys.readouterr().err


def test_a_calendar_firing_missed_while_corral_was_down_runs_once_at_start(
    corral: Corral,
) -> None:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
    calendar = moment.strftime("%H:%M:%S") + " UTC"  # daily: once in the test
    kept, dropped = corral.root / "kept", corral.root / "dropped"
    corral.write(f"""
        [service.kept]
        type = "oneshot"
        script = "date +%s.%N >> {kept}"
        on_calendar = "{calendar}"
        persistent = true

        [service.dropped]
        type = "oneshot"
        script = "date +%s.%N >> {dropped}"
        on_calendar = "{calendar}"
        """)  # fmt: skip
    corral.up()
    bridge_ready(corral)
    corral.down()
    assert dt.datetime.now(dt.UTC) < moment, "too slow: the daemon was still up at the moment"
    wait_until(lambda: dt.datetime.now(dt.UTC) > moment + dt.timedelta(seconds=1), 30, "the moment")
    corral.up()
    wait_until(lambda: runs(kept), 30, "the missed firing")
    bridge_ready(corral)
    corral.wait_state("kept", "running")
    assert len(runs(kept)) == 1 and timer_events(corral, "kept") == 1
    assert not dropped.exists() and corral.one("dropped")["state"] == "waiting"
    assert corral.one("kept")["next_run"] > time.time() + 3600  # tomorrow's


def test_a_sigkilled_timers_bridge_is_restarted_and_fires_on_without_firing_twice(
    corral: Corral,
) -> None:
    out = corral.root / "ticks"
    corral.write(f"""
        [service.tick]
        type = "oneshot"
        script = "date +%s.%N >> {out}"
        every = "2s"
        """)  # fmt: skip
    corral.up()
    bridge = bridge_ready(corral)
    wait_until(lambda: len(runs(out)) >= 2, 30, "two firings")
    os.kill(bridge["pid"], signal.SIGKILL)
    wait_until(lambda: (r := corral.one(BRIDGE))["restarts"] == 1 and r["ready"], 30,
               "the bridge to be restarted")  # fmt: skip
    count = len(runs(out))
    wait_until(lambda: len(runs(out)) >= count + 2, 30, "firings after the restart")
    between = gaps(runs(out))
    assert min(between) > 1.0, f"fired twice: {between}"


def test_an_idle_corral_with_a_timer_armed_uses_no_cpu(corral: Corral) -> None:
    corral.write("""
        [service.hourly]
        type = "oneshot"
        exec = ["true"]
        every = "1h"

        [service.nightly]
        type = "oneshot"
        exec = ["true"]
        on_calendar = "03:00"
        """)  # fmt: skip
    daemon = corral.up().pid
    pids = [daemon, bridge_ready(corral)["pid"]]
    windows: list[list[int]] = []  # ns each one ran, per window of two seconds
    deadline = time.monotonic() + 12
    while not windows or any(windows[-1]):
        # The first windows may still see the start-up settle; a wakeup every two seconds
        # or less would never give an idle one.
        assert time.monotonic() < deadline, f"daemon and bridge never idle: {windows}"
        before = [cpu_ns(pid) for pid in pids]
        time.sleep(2.0)  # what is measured is that nothing happens: no condition to wait on
        windows.append([cpu_ns(pid) - start for pid, start in zip(pids, before, strict=True)])


def test_config_check_names_the_file_service_and_key_of_a_bad_calendar(corral: Corral) -> None:
    path = corral.write("""
        [service.backup]
        exec = ["backup"]
        on_calendar = "Mon..Fri 25:00"

        [service.tick]
        exec = ["tick"]
        every = "5m"
        on_calendar = "daily"
        """)  # fmt: skip
    result = corral.run("config", "check")
    assert result.returncode == 1
    assert f"{path}:4: service.backup.on_calendar:" in result.stderr
    assert "hour: 25" in result.stderr
    assert f"{path}:9: service.tick.on_calendar:" in result.stderr
    assert "not both" in result.stderr
