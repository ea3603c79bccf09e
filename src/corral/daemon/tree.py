"""Finding and killing every process of an instance in /proc, also ones that left its
process group: members of its process groups, their descendants, and processes that carry
its ``CORRAL_JOB`` / ``CORRAL_INSTANCE`` / ``CORRAL_SOCKET`` environment (double-forked
daemons reparented to corral, the subreaper, keep their environment). Where there are
cgroups (:mod:`corral.daemon.cgroups`), a cgroup's kill does the most of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Collection, Iterable


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a process, read from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def started_by(pid: int, roots: Collection[int]) -> bool:
    """Whether a process is one of ``roots``, descends from one, or is in one's process
    group (each root leads its own). A double fork reparented to corral since is not seen."""
    for _ in range(64):  # up the chain of parents, to corral and beyond
        if pid in roots:
            return True
        stat = _stat(pid)
        if stat is None:
            return False
        parent, group = stat
        if group in roots:
            return True
        if parent <= 1:
            return False
        pid = parent
    return False


def environ_marks(pid: int) -> dict[str, str] | None:
    """The ``CORRAL_*`` variables of a process's environment ({} if unreadable: gone); None
    if the environment is empty, as the kernel shows it while the process is in execve."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            data = handle.read()
    except OSError:
        return {}
    if not data:
        return None
    found = {}
    for entry in data.split(b"\0"):
        if entry.startswith(b"CORRAL_"):
            key, _, value = entry.partition(b"=")
            found[key.decode(errors="replace")] = value.decode(errors="replace")
    return found


def _environ_has(pid: int, wanted: dict[str, str]) -> bool:
    marks = environ_marks(pid) or {}
    return all(marks.get(key) == value for key, value in wanted.items())


def scan_tree(pids: Iterable[int], groups: Iterable[int], env: dict[str, str]) -> set[int]:
    """Every process in /proc that belongs to an instance: in one of its process groups, a
    descendant of one of its pids, or carrying its identifying environment."""
    me = os.getpid()
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            stat = _stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    wanted_groups = set(groups)
    found = {pid for pid in pids if pid in table}
    found |= {pid for pid, (_, pgid) in table.items() if pgid in wanted_groups}
    found |= {pid for pid in table if pid not in found and _environ_has(pid, env)}
    grew = True
    while grew:  # descendants of what was found
        more = {pid for pid, (ppid, _) in table.items() if ppid in found and pid not in found}
        found |= more
        grew = bool(more)
    found.discard(me)
    return found


def kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
