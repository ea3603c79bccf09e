"""How a started process tells corral it is ready, each on the loop and never blocking.

* :class:`NotifyChannel`: systemd's ``NOTIFY_SOCKET`` protocol on a datagram socket of the
  instance's own, in the abstract namespace (no path length limit, reachable by a service
  running as another user; its name carries a random part). ``READY=1``, ``STATUS=``,
  ``MAINPID=``, ``STOPPING=1``, ``EXTEND_TIMEOUT_USEC=``, ``WATCHDOG=1``, ``RELOADING=1``
  and ``FDSTORE=1`` (with the fds it carries) are understood (``ready_watch.py``).
* :class:`ReadyPipe`: s6's and dinit's ``ready_fd``: a newline written on fd N.
* :class:`PidFileWatch`: a ``forking`` service's pid file, read every 50 ms from the moment
  the launcher exited until it names a live process (or the start times out).
* :class:`ProbeRunner`: ``ready = {...}``: tcp and http checks run as non-blocking
  connections on the loop, exec checks as child processes, log checks against output lines.

Log checks are matched off the loop: see :mod:`corral.daemon.logmatch`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Callable

from corral.core.definition import PROBE_ATTEMPT_TIMEOUT, Command, Probe
from corral.core.patterns import compile_log_pattern
from corral.daemon.checks import http_check, tcp_check
from corral.daemon.logmatch import LogMatch

PID_FILE_POLL = 0.05
#: Room for the most fds one datagram can carry (the kernel's SCM_MAX_FD).
_MAX_FDS = 253
_CREDENTIALS = struct.calcsize("iII")

#: Told of each notify datagram: its fields, the sender's pid, the fds it carried (corral's
#: copies, close-on-exec, for the receiver to keep or close).
OnMessage = Callable[[dict[str, str], int | None, list[int]], None]


def parse_notify(data: bytes) -> dict[str, str]:
    """A notify datagram: newline-separated ``KEY=VALUE`` assignments (the last one wins)."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


class NotifyChannel:
    """One instance's notify socket; ``address`` goes into ``NOTIFY_SOCKET``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_message: OnMessage,
    ) -> None:
        self._loop = loop
        self._on_message = on_message
        self._sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        name = f"corral/{os.getpid()}/{os.urandom(8).hex()}"
        self._sock.bind("\0" + name)
        self.address = "@" + name
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(
                    4096,
                    socket.CMSG_SPACE(_CREDENTIALS) + socket.CMSG_SPACE(_MAX_FDS * 4),
                    socket.MSG_CMSG_CLOEXEC,
                )
            except OSError:  # drained (BlockingIOError) or closed
                return
            pid = None
            fds: list[int] = []
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:_CREDENTIALS])[0]
                elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    count = len(payload) // 4
                    fds += struct.unpack(f"{count}i", payload[: count * 4])
            self._on_message(parse_notify(data), pid, fds)

    def drain(self) -> None:
        """Hear what is still waiting (what a process said just before it exited)."""
        if self._sock.fileno() >= 0:
            self._readable()

    def close(self) -> None:
        if self._sock.fileno() >= 0:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


class ReadyPipe:
    """The read end of a ``ready_fd`` pipe; ``write_fd`` is handed to the child."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_ready: Callable[[], None]) -> None:
        self._loop = loop
        self._on_ready = on_ready
        self._read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._read_fd, False)
        loop.add_reader(self._read_fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._read_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if b"\n" in data:
            self._on_ready()
            self.close()
        elif not data:
            self.close()  # closed without a newline: never ready this way

    def close_write_end(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_write_end()
        if self._read_fd >= 0:
            self._loop.remove_reader(self._read_fd)
            os.close(self._read_fd)
            self._read_fd = -1


def read_pid_file(path: str) -> int | None:
    """The live process a pid file names, or None (missing, partial, or a dead pid)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(64).split(b"\n", 1)[0].strip()
        pid = int(text)
    except (OSError, ValueError):
        return None
    if pid <= 1:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


class PidFileWatch:
    """Asks ``find`` every PID_FILE_POLL seconds for the process the pid file names, until
    it gives one (a pid file may be there already, be written late, or name a stranger)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        find: Callable[[], int | None],
        found: Callable[[int], None],
    ) -> None:
        self._loop = loop
        self._find = find
        self._found = found
        self._handle: asyncio.TimerHandle | None = None
        self._check()

    def _check(self) -> None:
        self._handle = None
        pid = self._find()
        if pid is not None:
            self._found(pid)
        else:
            self._handle = self._loop.call_later(PID_FILE_POLL, self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


#: Runs a command for an exec probe: (command, timeout, on_done(ok, detail)) -> a canceller.
ExecRunner = Callable[[Command, float, Callable[[bool, str], None]], Callable[[], None]]


class ProbeRunner:
    """Repeats a readiness probe every ``interval`` until it passes or its time is up."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        probe: Probe,
        run_exec: ExecRunner,
        passed: Callable[[], None],
        gave_up: Callable[[str], None],
    ) -> None:
        self._loop = loop
        self._probe = probe
        self._run_exec = run_exec
        self._passed = passed
        self._gave_up = gave_up
        self._deadline = None if probe.timeout is None else time.monotonic() + probe.timeout
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancel_exec: Callable[[], None] | None = None
        self._last = "not tried yet"
        self._done = False
        self._log: LogMatch | None = None
        if probe.kind == "log":
            self._watch_log()
        else:
            self._attempt()

    # -- log probes: passive -------------------------------------------------------------

    def _watch_log(self) -> None:
        try:
            pattern = compile_log_pattern(self._probe.target)
        except ValueError as exc:  # config validation refuses it first; never fail the loop
            self._timer = self._loop.call_later(0, self._finish, False, f"ready.log: {exc}")
            return
        self._log = LogMatch(self._loop, pattern, lambda: self._finish(True))
        if self._deadline is not None:
            self._timer = self._loop.call_later(self._probe.timeout or 0.0, self._log_expired)

    def lines(self, texts: list[str]) -> None:
        """Output lines of the main process; a log probe has them matched off the loop."""
        if self._log is not None and not self._done:
            self._log.add(texts)

    def _log_expired(self) -> None:
        self._last = f"no output line matched {self._probe.target!r}"
        if self._log is not None and self._log.skipped:
            self._last += (
                f" ({self._log.skipped} lines were not checked: they came faster than they"
                " could be matched)"
            )
        self._give_up()

    # -- active probes -------------------------------------------------------------------

    def _attempt(self) -> None:
        self._timer = None
        if self._done:
            return
        budget = PROBE_ATTEMPT_TIMEOUT
        if self._deadline is not None:
            budget = max(0.05, min(budget, self._deadline - time.monotonic()))
        if self._probe.kind == "exec":
            assert self._probe.command is not None
            self._cancel_exec = self._run_exec(self._probe.command, budget, self._exec_done)
        else:
            check = tcp_check if self._probe.kind == "tcp" else http_check
            self._task = self._loop.create_task(self._timed(check(self._probe.target), budget))

    async def _timed(self, check: asyncio.Future[None] | object, budget: float) -> None:
        try:
            try:
                await asyncio.wait_for(check, budget)  # type: ignore[arg-type]
            finally:
                self._task = None  # done: finishing must not cancel this very task
        except TimeoutError:
            self._failed(f"no answer within {budget:g}s")
        except (OSError, ValueError) as exc:
            self._failed(str(exc) or type(exc).__name__)
        else:
            self._finish(True)

    def _exec_done(self, ok: bool, detail: str) -> None:
        self._cancel_exec = None
        if ok:
            self._finish(True)
        else:
            self._failed(detail)

    def _failed(self, detail: str) -> None:
        self._task = None
        if self._done:
            return
        self._last = detail
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._give_up()
        else:
            self._timer = self._loop.call_later(self._probe.interval, self._attempt)

    def _give_up(self) -> None:
        timeout = self._probe.timeout or 0.0
        reason = f"ready probe ({self._probe.kind}) did not pass within {timeout:g}s: {self._last}"
        self._finish(False, reason)

    def _finish(self, ok: bool, reason: str = "") -> None:
        if self._done:
            return
        self.cancel()
        if ok:
            self._passed()
        else:
            self._gave_up(reason)

    def cancel(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._cancel_exec is not None:
            self._cancel_exec()
            self._cancel_exec = None
        if self._log is not None:
            self._log.cancel()
