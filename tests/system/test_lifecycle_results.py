"""What a walk reports, with real processes: the restart limit ends every crash loop, and
``stopping``/``stopped`` carry the first failure of their walk, hooks included."""

from __future__ import annotations

import json
from typing import Any

from tests.system.conftest import Corral, pid_alive, wait_until


def lifecycle(corral: Corral, job: str) -> list[tuple[str, dict[str, str]]]:
    """The lifecycle events of one job so far, in order, as (name, env without JOB/INSTANCE)."""
    records = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    return [
        (r["name"], {k: v for k, v in r["env"].items() if k not in ("JOB", "INSTANCE")})
        for r in records
        if r["name"] in ("starting", "started", "stopping", "stopped")
        and r["env"].get("JOB") == job
    ]


def last(corral: Corral, job: str, name: str) -> dict[str, str]:
    return [env for event, env in lifecycle(corral, job) if event == name][-1]


def gave_up_or_looped_past(corral: Corral, name: str, limit: int) -> dict[str, Any]:
    """Wait until the instance is failed, or has respawned more often than the limit allows
    (then the limit did not hold: no need to wait for ever to see it)."""
    return wait_until(
        lambda: ((r := corral.one(name))["state"] == "failed" or r["restarts"] > limit) and r,
        30,
        f"{name} to give up",
    )


# -- restart_limit: every try that did not stay up counts, however long it took -------------


def test_a_crash_loop_whose_every_try_outlasts_the_window_ends_failed(corral: Corral) -> None:
    """Each try dies after 1.5 s without ever being ready: no 1 s window holds two respawns,
    yet the fourth failure in a row gives up."""
    corral.write(
        """
        [service.slow]
        type = "notify"
        script = "sleep 1.5; exit 1"
        restart = "always"
        restart_limit = [3, "1s"]
        """
    )
    corral.up()
    row = gave_up_or_looped_past(corral, "slow", 3)
    assert (row["state"], row["goal"], row["restarts"]) == ("failed", "stop", 3), row
    assert "restart limit reached" in row["error"] and "status 1" in row["error"]
    stops = [env for event, env in lifecycle(corral, "slow") if event == "stopped"]
    assert stops == [{"RESULT": "failed", "PROCESS": "main", "EXIT_STATUS": "1"}] * 4


def test_a_start_that_times_out_every_time_ends_failed(corral: Corral) -> None:
    corral.write(
        """
        [service.hang]
        type = "notify"
        exec = ["sleep", "600"]
        timeout_start = "1.5s"
        restart = "always"
        restart_limit = [2, "1s"]
        """
    )
    corral.up()
    row = gave_up_or_looped_past(corral, "hang", 2)
    assert (row["state"], row["restarts"], row["pid"]) == ("failed", 2, None), row
    assert "timeout_start" in row["error"] and "restart limit reached" in row["error"]
    assert [event for event, _ in lifecycle(corral, "hang")].count("starting") == 3


# -- stopping and stopped say what failed ----------------------------------------------------


def test_a_pre_start_killed_by_a_signal_is_what_stopping_and_stopped_report(
    corral: Corral,
) -> None:
    corral.write(
        """
        [service.guarded]
        exec = ["sleep", "600"]
        pre_start = "kill -USR1 $$"
        autostart = false
        """
    )
    corral.up()
    assert corral.run("start", "guarded").returncode == 1
    failed = {"RESULT": "failed", "PROCESS": "pre-start", "EXIT_SIGNAL": "USR1"}
    assert last(corral, "guarded", "stopping") == failed
    assert last(corral, "guarded", "stopped") == failed
    row = corral.one("guarded")
    assert (row["state"], row["error"]) == ("failed", "pre-start killed by USR1")


def test_a_failing_post_stop_fails_the_stop(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        post_stop = "echo cleaning up; exit 5"
        """
    )
    corral.up()
    pid = corral.wait_state("web", "running")["pid"]
    corral.run("stop", "web")
    row = corral.wait_state("web", "failed")
    assert (row["goal"], row["error"]) == ("stop", "post-stop exited with status 5")
    assert not pid_alive(pid)
    assert last(corral, "web", "stopping") == {"RESULT": "ok"}  # sent before post-stop ran
    assert last(corral, "web", "stopped") == {
        "RESULT": "failed",
        "PROCESS": "post-stop",
        "EXIT_STATUS": "5",
    }
    logs = corral.ok("logs", "web")
    assert "post-stop exited with status 5" in logs and "(ignored)" not in logs


def test_a_post_stop_that_cannot_start_fails_the_stop(corral: Corral) -> None:
    """A list-form hook naming an unset variable never runs: that too is a failure."""
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        post_stop = ["echo", "$UNSET"]
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    corral.run("stop", "web")
    row = corral.wait_state("web", "failed")
    assert "post-stop: could not start" in row["error"] and "$UNSET" in row["error"], row
    assert last(corral, "web", "stopped") == {"RESULT": "failed", "PROCESS": "post-stop"}


def test_the_main_failure_wins_over_a_later_post_stop_failure(corral: Corral) -> None:
    corral.write(
        """
        [service.crash]
        script = "exit 3"
        post_stop = "exit 5"
        """
    )
    corral.up()
    row = corral.wait_state("crash", "failed")
    assert row["error"] == "main exited with status 3; post-stop exited with status 5"
    first = {"RESULT": "failed", "PROCESS": "main", "EXIT_STATUS": "3"}
    assert last(corral, "crash", "stopping") == first
    assert last(corral, "crash", "stopped") == first


def test_a_failing_post_stop_does_not_stop_a_respawn(corral: Corral) -> None:
    """The first main exits 0 (no failure of its own), its post-stop fails: stopped says so,
    and restart = "always" brings it back; the second main runs on."""
    corral.write(
        """
        [service.web]
        script = "test -e ran && exec sleep 600; touch ran"
        restart = "always"
        post_stop = "exit 5"
        """
    )
    corral.up()
    row = wait_until(
        lambda: (r := corral.one("web"))["restarts"] == 1 and r["state"] == "running" and r,
        10,
        "the respawn",
    )
    assert pid_alive(row["pid"])
    walk = lifecycle(corral, "web")
    assert [event for event, _ in walk] == [
        "starting",
        "started",
        "stopping",
        "stopped",
        "starting",
        "started",
    ]
    assert walk[2][1] == {"RESULT": "ok"}
    assert walk[3][1] == {"RESULT": "failed", "PROCESS": "post-stop", "EXIT_STATUS": "5"}


def test_a_failing_pre_stop_fails_the_stop_but_still_stops(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        pre_stop = "exit 2"
        """
    )
    corral.up()
    pid = corral.wait_state("web", "running")["pid"]
    corral.run("stop", "web")
    row = corral.wait_state("web", "failed")
    assert (row["goal"], row["pid"], row["error"]) == (
        "stop",
        None,
        "pre-stop exited with status 2",
    )
    assert not pid_alive(pid)
    failed = {"RESULT": "failed", "PROCESS": "pre-stop", "EXIT_STATUS": "2"}
    assert last(corral, "web", "stopping") == failed
    assert last(corral, "web", "stopped") == failed


def test_a_stop_whose_hooks_succeed_rests_in_waiting_and_says_ok(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        pre_stop = "true"
        post_stop = ["true"]
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    corral.ok("stop", "web")
    row = corral.one("web")
    assert row["state"] == "waiting" and not row["error"], row
    assert last(corral, "web", "stopping") == {"RESULT": "ok"}
    assert last(corral, "web", "stopped") == {"RESULT": "ok"}
