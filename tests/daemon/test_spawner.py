"""The spawner thread, in this process: its children are ours, see only what they are given,
and start with clean signals; the thread itself takes no signal and holds no fd of ours."""

from __future__ import annotations

import os
import select
import shutil
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from corral.daemon.spawner import Spawner

SH = "/bin/sh"
RESET = (signal.SIGPIPE, signal.SIGXFSZ)  # as the daemon resets them


@pytest.fixture(scope="module")
def spawner() -> Spawner:
    return Spawner()


@pytest.fixture
def many_fds() -> Iterator[None]:
    """Fds of ours that no child may see (corral's other services' pipes)."""
    pipes = [os.pipe() for _ in range(50)]
    yield
    for read_end, write_end in pipes:
        os.close(read_end)
        os.close(write_end)


def run(spawner: Spawner, script: str, extra: list[tuple[int, int]] | None = None) -> str:
    """``sh -c script`` through the thread (see ``run_argv``)."""
    return run_argv(spawner, [SH, "-c", script], extra)


def run_argv(spawner: Spawner, argv: list[str], extra: list[tuple[int, int]] | None = None) -> str:
    """Spawn ``argv`` through the thread; its output until its exit (within 10 s), and its
    exit collected by this, the main, thread."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        fds = [(1, write_end), (2, write_end), *(extra or [])]
        pid = spawner.spawn(argv[0], argv, dict(os.environ), fds, RESET)
    finally:
        os.close(write_end)
    deadline = time.monotonic() + 10
    chunks = []
    try:
        while select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))[0]:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"{argv}: no end of output within 10 s")
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)  # our child, though a thread made it
    assert os.waitstatus_to_exitcode(status) == 0
    return b"".join(chunks).decode()


def test_a_child_sees_only_its_three_fds(spawner: Spawner, many_fds: None) -> None:
    # ls itself opens the directory it lists: that is the one fd above 2.
    fds = run(spawner, "ls /proc/self/fd").split()
    assert sorted(map(int, fds)) == [0, 1, 2, 3]


def test_a_childs_stdin_is_dev_null_and_its_output_ours(spawner: Spawner) -> None:
    out = run(spawner, "readlink /proc/$$/fd/0; echo to-err >&2; echo to-out")
    assert out.splitlines() == ["/dev/null", "to-err", "to-out"]


def test_a_child_gets_an_extra_fd_where_asked(spawner: Spawner) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        run(spawner, "echo READY=1 >&7", extra=[(7, write_end)])
        os.close(write_end)
        assert os.read(read_end, 100) == b"READY=1\n"
    finally:
        os.close(read_end)


def test_a_child_starts_with_no_signal_blocked_nor_sigpipe_ignored_in_its_own_group(
    spawner: Spawner,
) -> None:
    # grep itself, not under a shell (dash clears its signal mask as it starts).
    grep = shutil.which("grep") or "/bin/grep"
    status = run_argv(spawner, [grep, "-E", "^(SigBlk|SigIgn)", "/proc/self/status"]).split()
    assert int(status[1], 16) == 0  # this thread blocks them all
    assert not int(status[3], 16) & (1 << (signal.SIGPIPE - 1))  # Python ignores it
    group, pid = run(spawner, "ps -o pgid= -p $$; echo $$").split()
    assert group == pid  # the process group is its own


def test_the_thread_blocks_every_signal_and_holds_no_fd_of_ours(
    spawner: Spawner, many_fds: None
) -> None:
    run(spawner, "true")
    thread = next(t for t in threading.enumerate() if t.name == "spawner")
    task = f"/proc/self/task/{thread.native_id}"
    with open(f"{task}/status", encoding="ascii") as status:
        blocked = next(line.split()[1] for line in status if line.startswith("SigBlk:"))
    assert int(blocked, 16) & (1 << (signal.SIGCHLD - 1))
    assert int(blocked, 16) & (1 << (signal.SIGTERM - 1))
    assert sorted(map(int, os.listdir(f"{task}/fd"))) == [0, 1, 2]
    assert len(os.listdir("/proc/self/fd")) > 100  # ours: the pipes above


def test_a_failed_spawn_raises_as_posix_spawn_does(spawner: Spawner) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        with pytest.raises(OSError):
            spawner.spawn("/nonexistent/program", ["x"], {}, [(1, write_end)], RESET)
        assert run(spawner, "echo still here") == "still here\n"  # and it serves on
    finally:
        os.close(read_end)
        os.close(write_end)
