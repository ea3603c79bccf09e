"""Which benchmark processes run, timed by the kernel: the proc connector (netlink).

Every service in the benchmark is ``sleep MARK`` with a MARK unique to the run. The kernel
reports each exec and exit with a CLOCK_MONOTONIC timestamp, so "all N are running" and "the
replacement runs" are known to the microsecond without polling /proc (which, with thousands
of processes, would take longer than what is measured). Needs root.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000
_NLMSG = struct.Struct("IHHII")
_CN_MSG = struct.Struct("IIIIHH")
_EVENT = struct.Struct("IIQ")  # what, cpu, timestamp_ns


class ProcWatch:
    """Tracks the live processes whose argv is ``[..sleep, mark]``."""

    def __init__(self, mark: str) -> None:
        self.mark = mark.encode()
        self.alive: dict[int, int] = {}  # pid -> exec timestamp (ns)
        self.execs: list[tuple[int, int]] = []  # (pid, ns), every exec seen, in order
        self.last_exit_ns = 0
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        self._sock.setsockopt(socket.SOL_SOCKET, 33, 64 * 1024 * 1024)  # SO_RCVBUFFORCE
        self._sock.bind((0, CN_IDX_PROC))
        op = struct.pack("I", PROC_CN_MCAST_LISTEN)
        cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
        self._sock.send(_NLMSG.pack(_NLMSG.size + len(cn), 3, 0, 0, 0) + cn)
        self.lost = 0  # bursts of events the kernel dropped (the socket's buffer was full)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _ours(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            return False
        return len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == self.mark

    def _run(self) -> None:
        offset = _NLMSG.size + _CN_MSG.size
        while not self._stop:
            try:
                data = self._sock.recv(65536)
            except OSError:
                self.lost += 1  # ENOBUFS under a burst: ``wait`` looks in /proc meanwhile
                continue
            what, _cpu, ns = _EVENT.unpack_from(data, offset)
            pid, _tgid = struct.unpack_from("ii", data, offset + _EVENT.size)
            if what == PROC_EVENT_EXEC and self._ours(pid):
                with self._cond:
                    self.alive[pid] = ns
                    self.execs.append((pid, ns))
                    self._cond.notify_all()
            elif what == PROC_EVENT_EXIT and pid in self.alive:
                with self._cond:
                    self.alive.pop(pid, None)
                    self.last_exit_ns = ns
                    self._cond.notify_all()

    def wait(self, predicate: object, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.5))
                if self.lost:
                    self._forget_the_dead()
        return True

    def _forget_the_dead(self) -> None:
        """After lost events: drop pids that are gone (or zombies) by looking at them."""
        for pid in [pid for pid in self.alive if not self._ours(pid)]:
            del self.alive[pid]

    def wait_count(self, n: int, timeout: float) -> bool:
        return self.wait(lambda: len(self.alive) == n, timeout)

    def latest_exec_ns(self) -> int:
        with self._cond:
            return max(self.alive.values(), default=0)

    def close(self) -> None:
        self._stop = True
        self._sock.close()


def count_marked(mark: str) -> list[int]:
    """The marked processes alive now, by scanning /proc (to check the watch, and to clean up)."""
    found = []
    want = mark.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1] == want:
            found.append(int(name))
    return found
