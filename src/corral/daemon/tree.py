"""Finding and killing every process of an instance, also ones that left its process group.

Where the machine gives corral a writable cgroup v2 hierarchy, each instance gets its own
cgroup: corral steps into it for the moment of each spawn (so the child is born inside, with
no window in which a fork could escape) and steps back out, and a sweep or a ``destroy``
writes ``cgroup.kill``. Elsewhere, the instance's processes are found in /proc: members of
its process groups, their descendants, and processes that carry its ``CORRAL_JOB`` /
``CORRAL_INSTANCE`` / ``CORRAL_SOCKET`` environment (double-forked daemons reparented to
corral, the subreaper, keep their environment).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Iterator


def _unified_mount() -> str | None:
    """Where the cgroup v2 hierarchy is mounted, if anywhere."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        pass
    return None


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


class Cgroups:
    """One cgroup per instance under ``<corral's own cgroup>/corral-<pid>``."""

    def __init__(self, home: str, root: str) -> None:
        self.home = home  # corral's own cgroup directory, where it lives between spawns
        self.root = root

    @classmethod
    def open(cls) -> Cgroups | None:
        """The hierarchy if corral may create cgroups and move itself; else None."""
        mount, own = _unified_mount(), _own_cgroup()
        if mount is None or own is None:
            return None
        home = os.path.join(mount, own.lstrip("/"))
        root = os.path.join(home, f"corral-{os.getpid()}")
        try:
            os.makedirs(root, exist_ok=True)
            _write(os.path.join(home, "cgroup.procs"), "0")  # may we move ourselves?
            if not os.path.exists(os.path.join(root, "cgroup.kill")):
                os.rmdir(root)
                return None
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(root)
            return None
        return cls(home, root)

    def path(self, label: str) -> str:
        return os.path.join(self.root, label.replace("/", "%2F") or "_")

    @contextlib.contextmanager
    def born_in(self, label: str) -> Iterator[None]:
        """Children spawned inside this block start in the instance's cgroup."""
        path = self.path(label)
        try:
            os.makedirs(path, exist_ok=True)
            _write(os.path.join(path, "cgroup.procs"), "0")
        except OSError:
            yield  # fall back to the process group alone for this spawn
            return
        try:
            yield
        finally:
            _write(os.path.join(self.home, "cgroup.procs"), "0")

    def pids(self, label: str) -> list[int]:
        try:
            with open(os.path.join(self.path(label), "cgroup.procs"), encoding="ascii") as f:
                return [int(line) for line in f if line.strip()]
        except OSError:
            return []

    def kill(self, label: str) -> None:
        with contextlib.suppress(OSError):
            _write(os.path.join(self.path(label), "cgroup.kill"), "1")

    def remove(self, label: str) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(self.path(label))

    def close(self) -> None:
        """Remove every instance cgroup that is empty, and the root."""
        with contextlib.suppress(OSError):
            for name in os.listdir(self.root):
                if os.path.isdir(os.path.join(self.root, name)):
                    with contextlib.suppress(OSError):
                        os.rmdir(os.path.join(self.root, name))
            os.rmdir(self.root)


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of a process, read from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def _environ_has(pid: int, wanted: dict[bytes, bytes]) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return False
    found = {}
    for entry in entries:
        key, _, value = entry.partition(b"=")
        if key in wanted:
            found[key] = value
    return found == wanted


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
    marks = {k.encode(): v.encode() for k, v in env.items()}
    found |= {pid for pid in table if pid not in found and _environ_has(pid, marks)}
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
