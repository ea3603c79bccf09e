"""Bus activation: a D-Bus service file for each ``bus_name``, so that a call to the name
while nobody owns it starts the service through corral.

The file's ``Exec=`` is ``corral start`` with corral's socket: dbus-daemon runs that, corral
starts the service (its process is corral's child, not dbus-daemon's), and ``corral start``
returns once the service is ready (a ``type = "dbus"`` service: once it owns the name), or
exits 1 if it failed, which dbus-daemon reports to the caller. Files go into
``$XDG_DATA_HOME/dbus-1/services`` for the session bus and
``/run/corral/dbus-1/system-services`` for the system bus (which reads it where its
configuration lists that directory; docs/dbus.md). Each begins with a line naming corral's
socket: a file without that line, or another corral's, is never touched. The files follow
the configuration at each reload and go when the bridge stops.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import sys
from collections.abc import Mapping

from corral.bridges.dbus_bus import SESSION, say

SYSTEM_SERVICES = "/run/corral/dbus-1/system-services"


def services_dir(kind: str, environ: Mapping[str, str] = os.environ) -> str:
    """Where the bus of this kind looks for service files that corral may write."""
    if kind != SESSION:
        return SYSTEM_SERVICES
    data = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return os.path.join(data, "dbus-1", "services")


def mark(socket: str) -> str:
    """The first line of every file this corral writes."""
    return f"# Written by corral for the daemon at {socket}; rewritten at each reload."


def file_text(bus_name: str, service: str, socket: str, user: str | None) -> str:
    """One service file: the name, and ``corral start`` of the service that owns it."""
    command = [sys.executable, "-m", "corral", "start", "--socket", socket, service]
    lines = [mark(socket), "[D-BUS Service]", f"Name={bus_name}", f"Exec={shlex.join(command)}"]
    if user is not None:
        lines.append(f"User={user}")  # the system bus's launch helper runs Exec as this user
    return "\n".join(lines) + "\n"


class ServiceFiles:
    """The service files of one corral in one directory."""

    def __init__(self, directory: str, socket: str, kind: str) -> None:
        self.directory = directory
        self._socket = socket
        self._user = None if kind == SESSION else pwd.getpwuid(os.getuid()).pw_name

    def write(self, services: Mapping[str, str]) -> None:
        """Exactly these files (bus name -> service) from now on."""
        if services:
            try:
                os.makedirs(self.directory, exist_ok=True)
            except OSError as exc:
                say(f"cannot make {self.directory} for bus activation: {exc.strerror}")
                return
        for bus_name, service in services.items():
            text = file_text(bus_name, service, self._socket, self._user)
            self._put(self._path(bus_name), text)
        for path in self._ours():
            if os.path.basename(path).removesuffix(".service") not in services:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def remove_all(self) -> None:
        self.write({})

    def _path(self, bus_name: str) -> str:
        return os.path.join(self.directory, f"{bus_name}.service")

    def _put(self, path: str, text: str) -> None:
        """Write a file unless it says this already; atomically (dbus-daemon watches)."""
        with contextlib.suppress(OSError), open(path) as old:
            if old.read() == text:
                return
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w") as new:
                new.write(text)
            os.replace(temporary, path)
        except OSError as exc:
            say(f"cannot write {path} for bus activation: {exc.strerror}")
            with contextlib.suppress(OSError):
                os.unlink(temporary)

    def _ours(self) -> list[str]:
        """The files in the directory that this corral wrote."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        first = mark(self._socket) + "\n"
        found = []
        for name in sorted(names):
            path = os.path.join(self.directory, name)
            if not name.endswith(".service"):
                continue
            with contextlib.suppress(OSError), open(path) as handle:
                if handle.readline() == first:
                    found.append(path)
        return found
