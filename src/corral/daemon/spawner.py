"""Spawning from a thread with a file descriptor table of its own, once corral holds many fds.

Every service's output pipe is an fd of corral's. A spawned process copies its parent's fd
table and, at its exec, closes every close-on-exec fd in it, touching each open file on a
cold cache: with a thousand services that is about a quarter of a millisecond of each
respawn, and a start of ten thousand stops being linear. So above ``THRESHOLD`` the spawns go
to one thread that has unshared its fd table (``unshare(CLONE_FILES)``) and closed its copy of
every fd: its children copy three. They are still corral's children (a thread's children
belong to its process, and the one reaper collects them), in the same cgroup, with the same
signal defaults.

The child cannot be handed corral's pipe ends by number, as they are not in the thread's
table: it opens them as ``/proc/<corral>/fd/<n>`` instead (a pipe can be reopened that way),
while corral, blocked until the spawn returns, keeps them open. The handover costs two thread
wakeups, 40 µs warm and about 100 µs after a quiet spell here, which is why small tables
spawn in place: the copy costs about 0.25 µs per open fd, so the thread pays from about a
thousand (measured to the child's exit of ``/bin/true``: 1633 µs in place and 1414 from the
thread with a thousand pipes open, 2186 and 1631 with three thousand, 1317 and 1431 with a
hundred).

Two things keep the thread from touching what belongs to corral's table. It blocks every
signal, so Python's C handler, which writes to the loop's wakeup fd by number, runs on the
main thread (its children get an empty mask back). And it runs nothing but the spawn; the
one way it could run other Python is a garbage collection that its own allocations set off,
which finalises whatever died in a cycle: an fd-holding object that was never closed would
then be closed in the thread's table, and leak in corral's, rather than be closed there.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
from collections.abc import Mapping
from typing import Any

#: The fd number from which a spawn goes through the thread (see the module's docstring).
THRESHOLD = int(os.environ.get("CORRAL_SPAWNER_FDS", "1000"))
#: Every spawned process's first action, whichever way it is spawned: stdin on /dev/null.
STDIN_ON_NULL = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)

_CLONE_FILES = 0x400
_Request = tuple[str, list[str], Mapping[str, str], list[tuple[Any, ...]], tuple[int, ...]]


class Spawner:
    """The thread, started at its first use; ``spawn`` blocks the caller until the child has
    exec'd or failed, exactly as ``os.posix_spawn`` does."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[int | Exception] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._proc_fd = ""  # "/proc/<corral as /proc sees it>/fd/"
        self.broken = False  # could not start: spawn in place
        self._highest = 0

    def wanted(self, fd: int) -> bool:
        """Whether a spawn should go through the thread, given an fd just made: the highest
        such number seen says how large the table has grown (a new pipe takes the lowest
        free number, so one number alone would not)."""
        self._highest = max(self._highest, fd)
        return self._highest >= THRESHOLD and not self.broken

    def spawn(
        self,
        program: str,
        argv: list[str],
        env: Mapping[str, str],
        fds: list[tuple[int, int]],
        sigdef: tuple[int, ...],
    ) -> int:
        """``os.posix_spawn`` of ``program`` in a new process group, stdin on /dev/null and
        each (target, source) of ``fds`` opened at ``target`` from corral's ``source``.
        Raises OSError as ``os.posix_spawn`` does; RuntimeError if the thread is unusable."""
        if self._thread is None:
            self._start()
        actions: list[tuple[Any, ...]] = [STDIN_ON_NULL]
        opened: dict[int, int] = {}
        for target, source in fds:
            if source in opened:  # the same end twice (stdout and stderr): one open
                actions.append((os.POSIX_SPAWN_DUP2, opened[source], target))
                continue
            path = f"{self._proc_fd}{source}"
            actions.append((os.POSIX_SPAWN_OPEN, target, path, os.O_WRONLY, 0))
            opened[source] = target
        self._requests.put((program, argv, env, actions, sigdef))
        result = self._results.get()
        if isinstance(result, Exception):
            raise result
        return result

    def _start(self) -> None:
        try:
            self._proc_fd = f"/proc/{os.readlink('/proc/self')}/fd/"
        except OSError as exc:
            self.broken = True
            raise RuntimeError("no /proc") from exc
        started: queue.SimpleQueue[OSError | None] = queue.SimpleQueue()
        thread = threading.Thread(target=self._serve, args=(started,), name="spawner", daemon=True)
        thread.start()
        failure = started.get()
        if failure is not None:
            self.broken = True
            raise RuntimeError(f"spawner: {failure}") from failure
        self._thread = thread

    def _serve(self, started: queue.SimpleQueue[OSError | None]) -> None:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            _unshare_fd_table()
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # this thread's copies only
        except OSError as exc:
            started.put(exc)
            return
        started.put(None)
        requests, results = self._requests, self._results
        while True:
            program, argv, env, actions, sigdef = requests.get()
            try:
                pid = os.posix_spawn(
                    program, argv, env, file_actions=actions, setpgroup=0,
                    setsigdef=sigdef, setsigmask=(),
                )  # fmt: skip
            except (OSError, ValueError) as exc:  # a ValueError too: else the loop waits for ever
                results.put(exc)
                continue
            results.put(pid)


def _unshare_fd_table() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_FILES) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


_spawner = Spawner()


def spawn_through(
    newest_fd: int,
    program: str,
    argv: list[str],
    env: Mapping[str, str],
    fds: list[tuple[int, int]],
    sigdef: tuple[int, ...],
) -> int | None:
    """The thread's spawn, if corral holds enough fds for it to pay (``newest_fd`` is the
    fd made for this child); None where it is not wanted, could not be used, or failed, so
    that the caller spawns in place (whose error, if the spawn fails again, is the one the
    user sees: the thread's could come from its reopening of the pipe ends)."""
    if not _spawner.wanted(newest_fd):
        return None
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        return _spawner.spawn(program, argv, env, fds, sigdef)
    return None
