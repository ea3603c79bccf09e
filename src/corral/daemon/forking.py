"""Forking daemons: which process a pid file names, and whether corral may believe it.

A classic daemon (nginx, older postgres setups) forks, calls ``setsid`` and often rewrites
its environment for its process title, so neither its process group nor corral's
``CORRAL_*`` marks find it; only its pid file says where it went. A pid file can also be
stale (left by a run that crashed) and name a process that reused the pid. So a pid file's
process is trusted only if it descends from corral (corral is the subreaper, so a daemon
that left its launcher is reparented to corral; as PID 1 everything descends from it) and
started no earlier than the instance's launcher. Only a trusted pid is adopted as the main
process, and killed with the instance when its start fails, it stops or it is destroyed.
"""

from __future__ import annotations

import os

from corral.daemon.readiness import read_pid_file

#: How far up the parent chain a trusted daemon may be from corral (launcher → sh → fork …).
MAX_DEPTH = 64


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state is the first)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (``starttime`` of proc(5))."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _descends_from_me(pid: int) -> bool:
    me = os.getpid()
    for _ in range(MAX_DEPTH):
        fields = _stat_fields(pid)
        if fields is None or len(fields) < 2:
            return False
        pid = int(fields[1])
        if pid == me:
            return True
        if pid <= 1:
            return me == 1 and pid == 1
    return False


def trusted_pid(path: str | None, not_before: int | None) -> int | None:
    """The live process the pid file names, if it is one of corral's descendants that
    started no earlier than ``not_before`` (the launcher's start, in ticks); else None."""
    if path is None or not_before is None:
        return None
    pid = read_pid_file(path)
    if pid is None or pid == os.getpid():
        return None
    started = start_ticks(pid)
    if started is None or started < not_before or not _descends_from_me(pid):
        return None
    return pid


def pid_file_of(pid_file: str | None, cwd: str | None) -> str | None:
    """The pid file's path as the daemon sees it: relative paths are taken from ``cwd``."""
    if pid_file is None or os.path.isabs(pid_file):
        return pid_file
    return os.path.join(os.path.expanduser(cwd or "."), pid_file)
