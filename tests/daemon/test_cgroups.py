"""The cgroup mover against the real hierarchy (skipped where corral may not make cgroups)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from corral.daemon.tree import CgroupProbe, Cgroups

SOCKET = "/nonexistent/corral-test.sock"
Start = Callable[..., "subprocess.Popen[bytes]"]  # the ``start`` fixture


@pytest.fixture
def cgroups() -> Iterator[tuple[Cgroups, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    found = CgroupProbe().cgroups(SOCKET, loop)
    if found is None:
        loop.close()
        pytest.skip("no writable cgroup v2 hierarchy here")
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
    child = start(["sleep", "30"], env=env)
    groups._move(child.pid, groups.path("web"))  # as the look for strays does, early
    assert child.pid in groups.pids("web")
    groups.kill_soon("web")  # the sweep after the predecessor's exit
    groups.place(child.pid, "web")  # the new main's own move, queued after it
    loop.run_until_complete(asyncio.sleep(0))  # the end of the turn: the handover
    time.sleep(0.2)
    assert child.poll() is None, "the sweep killed the main placed after it"
    _wait_for(lambda: child.pid in groups.pids("web"), "the main in its cgroup")


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
