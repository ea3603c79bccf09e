"""Where the timers bridge keeps each timer's track (``timer_schedule.Track``), so that it
outlives the bridge and corral: a small JSON file, written whole to a temporary file and
renamed over the old one at each firing and each change.

In project mode it is ``timers.json`` beside the control socket (``.corral/timers.json``; a
socket named other than ``control.sock`` keeps ``NAME.timers.json``); in system mode (the
socket ``/run/corral/control.sock``) it is ``/var/lib/corral/timers.json``, which survives a
reboot as ``/run`` does not. The file also says which run of corral wrote it (the daemon's
pid and its start time), so a bridge that was restarted goes on with the schedule, and a
bridge of a new run of corral makes up only what ``persistent`` asks for.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import msgspec

from corral.bridges.timer_schedule import Track
from corral.control.paths import SOCKET_NAME, SYSTEM_SOCKET

#: Where the system manager keeps the file.
SYSTEM_DIRECTORY = "/var/lib/corral"
FILE_NAME = "timers.json"


def state_path(socket: str) -> str:
    """The file of the daemon listening on ``socket``."""
    if os.path.abspath(socket) == SYSTEM_SOCKET:
        return os.path.join(SYSTEM_DIRECTORY, FILE_NAME)
    directory, name = os.path.split(os.path.abspath(socket))
    return os.path.join(directory, FILE_NAME if name == SOCKET_NAME else f"{name}.{FILE_NAME}")


def daemon_run(pid: int | None = None) -> str:
    """Which run of corral this is: the daemon's (the bridge's parent's) pid and start time
    (in clock ticks since boot, so a pid used again, or a reboot, is another run)."""
    pid = os.getppid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat") as stat:
            start = stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "?"
    boot = ""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
    except OSError:
        pass
    return f"{boot}:{pid}:{start}"


class TimerStore:
    """The file, read once at the bridge's start and written after every change."""

    def __init__(self, path: str, run: str) -> None:
        self.path = path
        self.run = run
        self._complained = False

    def load(self) -> tuple[bool, dict[str, Track]]:
        """Whether the file was written by this run of corral, and the tracks it holds."""
        try:
            with open(self.path, "rb") as handle:
                data: Any = json.load(handle)
            tracks = {name: msgspec.convert(track, Track) for name, track in data["timers"].items()}
        except FileNotFoundError:
            return False, {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, msgspec.ValidationError):
            print(f"timers: {self.path} cannot be read; starting afresh", file=sys.stderr)
            return False, {}
        return data.get("run") == self.run, tracks

    def save(self, tracks: dict[str, Track]) -> None:
        data = {
            "run": self.run,
            "timers": {name: msgspec.to_builtins(t) for name, t in tracks.items()},
        }
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(temporary, "w") as handle:
                json.dump(data, handle, sort_keys=True)
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self._complained:  # said once: the timers still run, without a memory
                print(f"timers: cannot write {self.path}: {exc.strerror}", file=sys.stderr)
                self._complained = True
