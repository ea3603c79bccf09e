"""The cgroup mover against the real hierarchy (where corral may not make cgroups: skipped, or
failed under CORRAL_REQUIRE_REAL_DAEMONS=1)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from corral.daemon.cgroups import CgroupProbe, Cgroups
from tests.conftest import missing

SOCKET = "/nonexistent/corral-test.sock"
Start = Callable[..., "subprocess.Popen[bytes]"]  # the ``start`` fixture


@pytest.fixture
def cgroups() -> Iterator[tuple[Cgroups, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    found = CgroupProbe().cgroups(SOCKET, loop)
    if found is None:
        loop.close()
        missing("a cgroup v2 hierarchy corral may write")
    yield found, loop
    loop.close()
    for _ in range(200):  # the killed children leave their cgroups as the kernel reaps them
        found.close()
        if not os.path.exists(found.root):
            break
        time.sleep(0.01)


@pytest.fixture
def start() -> Iterator[Start]:
    """Start a child for the test (``subprocess.Popen``'s arguments); killed at its end."""
    children: list[subprocess.Popen[bytes]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        children.append(subprocess.Popen(argv, **kwargs))
        return children[-1]

    yield run
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=5)


def _wait_for(predicate: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _left_behind(groups: Cgroups, start: Start) -> subprocess.Popen[bytes]:
    """What the predecessor left in web's cgroup: its death shows the sweep was made."""
    left = start(["sleep", "30"])
    groups._move(left.pid, groups.path("web"))
    return left


def test_a_stray_moved_early_survives_the_kill_queued_before_its_own_move(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """A main started at its predecessor's exit is still in corral's own cgroup when the
    look for strays may find it and move it into the instance's cgroup; the turn's batch then
    holds the sweep of that cgroup and, after it, the main's own move. The sweep must not
    take the main."""
    groups, loop = cgroups
    env = {**os.environ, "CORRAL_SOCKET": SOCKET, "CORRAL_JOB": "web"}
    left = _left_behind(groups, start)
    child = start(["sleep", "30"], env=env)
    groups._move(child.pid, groups.path("web"))  # as the look for strays does, early
    assert child.pid in groups.pids("web")
    groups.kill_soon("web")  # the sweep after the predecessor's exit
    groups.place(child.pid, "web")  # the new main's own move, queued after it
    loop.run_until_complete(asyncio.sleep(0))  # the end of the turn: the handover
    assert left.wait(timeout=5) == -9  # the sweep was made
    time.sleep(0.2)  # what it took is dead by now
    assert child.poll() is None, "the sweep killed the main placed after it"
    _wait_for(lambda: child.pid in groups.pids("web"), "the main in its cgroup")


def test_what_a_main_moved_early_forked_survives_the_kill_queued_before_its_move(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """As above, and the main, once moved early, forked (as a script's ``cmd &`` does): the
    child is born in the instance's cgroup and the main's process group. The sweep queued
    before the main's move must not take it either."""
    groups, loop = cgroups
    env = {**os.environ, "CORRAL_SOCKET": SOCKET, "CORRAL_JOB": "web"}
    left = _left_behind(groups, start)
    main = start(
        ["sh", "-c", "read go; sleep 30 & echo $!; exec sleep 30"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, process_group=0,
    )  # fmt: skip
    assert main.stdin is not None and main.stdout is not None
    groups._move(main.pid, groups.path("web"))  # as the look for strays does, early
    main.stdin.write(b"go\n")
    main.stdin.flush()
    forked = int(main.stdout.readline())
    try:
        assert forked in groups.pids("web")
        groups.kill_soon("web")  # the sweep after the predecessor's exit
        groups.place(main.pid, "web")  # the new main's own move, queued after it
        loop.run_until_complete(asyncio.sleep(0))  # the end of the turn: the handover
        assert left.wait(timeout=5) == -9  # the sweep was made
        time.sleep(0.2)  # what it took is dead by now
        assert main.poll() is None, "the sweep killed the main placed after it"
        assert _alive(forked), "the sweep killed what the main forked"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(forked, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, not a zombie (nor reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stray_not_yet_moved_at_a_kill_is_moved_in_and_taken_by_the_next(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """A process of an instance that forked and left its group (``setsid cmd &``) before its
    parent's move is still in corral's own cgroup at a kill in that moment. It cannot be told
    from a main spawned after the kill (test below), which the kill must not take; so the kill
    leaves it, the next look moves it into its cgroup, and the next kill (a stop, a sweep, a
    destroy) takes it: it never lives outside the instance's reach."""
    groups, loop = cgroups
    env = {**os.environ, "CORRAL_SOCKET": SOCKET, "CORRAL_JOB": "web"}
    main = start(["sleep", "30"], env=env)
    groups._move(main.pid, groups.path("web"))
    stray = start(["sleep", "30"], env=env)  # forked before the move, looked for later
    groups.kill_soon("web")
    loop.run_until_complete(asyncio.sleep(0))
    main.wait(timeout=5)
    _wait_for(lambda: stray.pid in groups.pids("web"), "the look to move the stray in")
    groups.kill_soon("web")
    loop.run_until_complete(asyncio.sleep(0))
    assert stray.wait(timeout=5) == -9


def test_a_kill_takes_what_was_in_the_cgroup_before_it(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    groups, loop = cgroups
    child = start(["sleep", "30"])
    groups.place(child.pid, "web")
    groups.kill_soon("web")
    loop.run_until_complete(asyncio.sleep(0))
    child.wait(timeout=5)
    assert child.returncode == -9


def test_a_stray_caught_inside_execve_is_looked_at_again(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """The kernel shows an empty environment while a process is inside execve, so the look
    for strays can miss one of ours there; it looks again while one reads empty. Here the
    stray's environment stays empty for 30 ms, then it execs with corral's marks."""
    groups, loop = cgroups
    marks = f"CORRAL_SOCKET={SOCKET} CORRAL_JOB=late"
    stray = start(["env", "-i", "/bin/sh", "-c", f"sleep 0.03; exec env {marks} sleep 30"])
    other = start(["sleep", "30"])
    groups.place(other.pid, "web")  # a spawn: the mover looks for strays after it
    loop.run_until_complete(asyncio.sleep(0))
    _wait_for(lambda: stray.pid in groups.pids("late"), "the stray moved", timeout=2)


def test_a_process_that_keeps_an_empty_environment_stops_the_looks(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """No look every 20 ms for ever: an idle corral makes no wakeups."""
    groups, loop = cgroups
    blank = start(["env", "-i", "sleep", "30"])
    other = start(["sleep", "30"])
    groups.place(other.pid, "web")
    loop.run_until_complete(asyncio.sleep(0))
    last = Cgroups.BLANK_LOOKS + 1
    _wait_for(lambda: groups._blank.get(blank.pid) == last, "the last look", timeout=2)
    time.sleep(10 * Cgroups.SETTLE_SECONDS)
    assert groups._blank.get(blank.pid) == last
    assert blank.pid not in groups.pids("web")


def test_close_makes_the_sweeps_still_queued_and_leaves_nothing(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """``corral down`` ends with the last sweeps queued for the mover: closing must make
    them, not leave what they would kill alive behind a daemon that exited."""
    groups, _ = cgroups
    escaped = start(["setsid", "sleep", "30"])  # left its group: only the cgroup holds it
    groups._move(escaped.pid, groups.path("web"))
    _wait_for(lambda: escaped.pid in groups.pids("web"), "the process in web's cgroup")
    groups.kill_soon("web")  # queued in this turn; the loop never runs again
    groups.close()
    assert escaped.wait(timeout=5) == -9
    assert not os.path.exists(groups.root)


def test_a_main_spawned_after_a_sweep_was_handed_over_survives_it(
    cgroups: tuple[Cgroups, asyncio.AbstractEventLoop],
    start: Start,
) -> None:
    """The sweep after a main's exit is handed to the mover in one turn; the next main is
    spawned in a later turn (its start waited on something), still in corral's own cgroup with
    the instance's marks until its own move comes. The sweep must not take it: only its own
    move, later, puts it in the cgroup."""
    groups, loop = cgroups
    env = {**os.environ, "CORRAL_SOCKET": SOCKET, "CORRAL_JOB": "web"}
    left = _left_behind(groups, start)
    new_main = start(["sleep", "30"], env=env)  # spawned; its move not queued yet
    groups.kill_soon("web")
    loop.run_until_complete(asyncio.sleep(0))  # the sweep handed over, alone
    assert left.wait(timeout=5) == -9  # the sweep was made
    time.sleep(0.2)  # what it took is dead by now
    assert new_main.poll() is None, "the sweep killed a main spawned after it"
