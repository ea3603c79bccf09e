"""An instance's fd store: the fds its notify service handed corral (``FDSTORE=1``, named by
``FDNAME=``), given back to each next start of its main process after its sockets, so that a
crash or a restart keeps, say, its clients' connections (systemd's FileDescriptorStore).

The fds are corral's own copies, close-on-exec. One already stored (the same open file, as
``fstat`` and its flags tell) is not stored twice, however often the service hands it over again; past
``fd_store_max`` a new one is closed and said. ``FDSTOREREMOVE=1`` closes those of a name.
The store lives as long as the instance's walk goes on: a crash, a respawn or a restart keep
it, and a stop that ends at rest drops it (``InstanceTable.forget_if_idle``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

#: The name of an fd handed over without ``FDNAME=``, as systemd names it.
DEFAULT_NAME = "stored"


class FdStore:
    def __init__(self) -> None:
        self._fds: list[tuple[int, str]] = []  # (fd, name), in the order they came

    def __len__(self) -> int:
        return len(self._fds)

    def add(self, fds: list[int], name: str, limit: int) -> list[str]:
        """Keep ``fds`` under ``name`` (closing what cannot be kept); what to say of it."""
        said = []
        held = {_identity(fd) for fd, _ in self._fds}
        for fd in fds:
            identity = _identity(fd)
            if identity is None or identity in held:
                _close(fd)
                continue
            if len(self._fds) >= limit:
                _close(fd)
                said.append(f"fd store full (fd_store_max = {limit}): closed an fd named {name}")
                continue
            held.add(identity)
            self._fds.append((fd, name))
        return said

    def remove(self, name: str) -> None:
        """``FDSTOREREMOVE=1``: close every fd of this name."""
        for fd, _ in [entry for entry in self._fds if entry[1] == name]:
            _close(fd)
        self._fds = [entry for entry in self._fds if entry[1] != name]

    def handed(self) -> tuple[list[int], list[str]]:
        """The fds and their names, for the next start's ``LISTEN_FDS``."""
        return [fd for fd, _ in self._fds], [name for _, name in self._fds]

    def close(self) -> None:
        for fd, _ in self._fds:
            _close(fd)
        self._fds = []


def _identity(fd: int) -> tuple[int, int, int] | None:
    """What tells two fds of one open file apart from others, or None for an fd that is
    not open: its inode and its status flags (the two ends of a pipe share an inode, not
    their flags; as systemd's fallback where it cannot ask the kernel)."""
    try:
        info = os.fstat(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return None
    return info.st_dev, info.st_ino, flags


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
