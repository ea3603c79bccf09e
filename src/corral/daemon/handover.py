"""What a main process is handed beyond its command, where its keys ask for it (and nothing
where they do not, DESIGN.md's "Every process corral runs"):

* its sockets, then its stored fds, as fds 3, 4, ... with ``LISTEN_FDS``, ``LISTEN_FDNAMES``
  (each socket's name, default the service's; each stored fd's ``FDNAME``) and
  ``LISTEN_PID``;
* an ``accept = true`` instance's connection, as fds 0 and 1 (``REMOTE_ADDR`` and
  ``REMOTE_PORT`` came with its start);
* ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` for a ``watchdog``.

The ``*_PID`` variables hold the process's own pid, set in the child (``fdpass.py``).
"""

from __future__ import annotations

from corral.daemon.fdpass import Handed
from corral.daemon.runtime import Runtime
from corral.daemon.sockets import Listeners


def main_handover(rt: Runtime, listeners: Listeners) -> tuple[dict[str, str], Handed]:
    """The variables and fds of the instance's next main process. Raises
    ``sockets.BindError`` when one of its sockets still cannot be bound."""
    definition = rt.definition
    env: dict[str, str] = {}
    own_pid: list[str] = []
    fds: list[int] = []
    names: list[str] = []
    if definition.sockets and not definition.accept:
        fds = listeners.fds(rt.inst.job, definition)
        names = [spec.name or definition.name for spec in definition.sockets]
    if rt.fd_store is not None:
        stored, stored_names = rt.fd_store.handed()
        fds += stored
        names += stored_names
    if fds:
        env["LISTEN_FDS"] = str(len(fds))
        env["LISTEN_FDNAMES"] = ":".join(names)
        own_pid.append("LISTEN_PID")
    if definition.watchdog is not None:
        env["WATCHDOG_USEC"] = str(round(definition.watchdog * 1_000_000))
        own_pid.append("WATCHDOG_PID")
    return env, Handed(tuple(fds), rt.connection, tuple(own_pid))
