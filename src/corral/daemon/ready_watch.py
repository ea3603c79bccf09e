"""Each main process's way of saying it is ready, and how it is, wired to its instance.

The protocols themselves (notify socket, ready_fd pipe, pid file, probes) are in
:mod:`corral.daemon.readiness`; this picks the ones a definition asks for when its main
process is launched, turns what they report into the machine's ``Ready``/``NotReady``/
``Adopted`` inputs, and keeps the notify ``STATUS=`` text for ``status``. A protocol's yes
is followed by the ``ready`` probe, where one is given. While the process runs, its notify
socket also carries ``WATCHDOG=1``, ``RELOADING=1`` (``reloads.py``) and the fds it hands
corral (``FDSTORE=1``, kept in its fd store), and its ``liveness`` probe runs
(``liveness.py``).

``type = "dbus"``: the world says when its ``bus_name`` has an owner (the D-Bus bridge's
``dbus-name`` state, through ``world.py``, which tells :meth:`ReadyWatch.world_reported`).
Only a report that comes after the main process was launched counts: a name held at that
moment is someone else's (or the last process's, whose release is still on its way). A
running instance whose name loses its owner keeps running (a bus that restarts drops every
name, and a service that reconnects takes its name again); its log says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Mapping

from corral.core import inputs as ins
from corral.core.definition import Command
from corral.core.states import ProcessKind, ServiceType, State, TimerKind
from corral.daemon.actions import Actions
from corral.daemon.cgroups import Cgroups
from corral.daemon.fdstore import DEFAULT_NAME, FdStore
from corral.daemon.forking import pid_file_of, trusted_pid
from corral.daemon.journal import Journal
from corral.daemon.liveness import LivenessProbe
from corral.daemon.oneoff import Outcome
from corral.daemon.readiness import NotifyChannel, PidFileWatch, ProbeRunner, ReadyPipe
from corral.daemon.reloads import ReloadWait
from corral.daemon.runtime import Readiness, Runtime, label
from corral.daemon.spawn import SpawnError
from corral.daemon.table import InstanceTable

#: The world's state that says a D-Bus name has an owner (the D-Bus bridge reports it).
BUS_NAME_STATE = "dbus-name"

Feed = Callable[[Runtime, ins.Input], None]
#: Makes ``pid`` the instance's main process (``MAINPID=``, a pid file).
Adopt = Callable[[Runtime, int], None]


class ReadyWatch:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        table: InstanceTable,
        journal: Journal,
        actions: Actions,
        cgroups: Cgroups | None,
        feed: Feed,
        adopt: Adopt,
    ) -> None:
        self._loop = loop
        self._table = table
        self._journal = journal
        self._actions = actions
        self._cgroups = cgroups
        self._feed = feed
        self._adopt = adopt
        #: bus_name -> the instance of the service that owns it, from its last launch.
        self._bus_names: dict[str, Runtime] = {}

    def channels_for(self, rt: Runtime) -> Readiness:
        """What listens for a main process about to be launched: a notify socket for
        ``notify``, a pipe for ``ready_fd`` (closed, with the old, by ``Readiness.close``)."""
        definition = rt.definition
        readiness = Readiness()
        if definition.type is ServiceType.NOTIFY:
            readiness.notify = NotifyChannel(
                self._loop, lambda fields, pid, fds: self._notified(rt, fields, pid, fds)
            )
        elif definition.ready_fd is not None:
            readiness.pipe = ReadyPipe(self._loop, lambda: self.protocol_ready(rt))
        if definition.bus_name is not None:
            self._bus_names[definition.bus_name] = rt
        if definition.liveness is not None:
            readiness.liveness = LivenessProbe(
                self._loop,
                definition.liveness,
                lambda command, timeout, done: self.run_check(rt, command, timeout, done),
                lambda ok, detail: self._alive(rt, ok, detail),
                due=lambda: rt.inst.state is State.RUNNING,
            )
        return readiness

    def world_reported(self, name: str, env: Mapping[str, str], holds: bool) -> None:
        """A bridge's report (``World.reports``): a ``dbus-name`` that got an owner makes
        the spawned ``type = "dbus"`` instance that waits for it ready."""
        if name != BUS_NAME_STATE:
            return
        rt = self._bus_names.get(env.get("NAME", ""))
        if rt is None:
            return
        inst = rt.inst
        if not holds:
            if inst.state is State.RUNNING and inst.main_alive:
                self._journal.say(rt, f"{rt.definition.bus_name} has no owner now")
            return
        waiting = inst.state is State.SPAWNED and inst.main_alive and not inst.ready
        if waiting and rt.definition.type is ServiceType.DBUS:
            self.protocol_ready(rt)

    def _alive(self, rt: Runtime, ok: bool, detail: str) -> None:
        """A liveness answer: each failure counts, and a pass only after failures (a pass
        that changes nothing is not worth a step of the machine)."""
        if not ok or rt.inst.failed_checks:
            self._feed(rt, ins.Liveness(ok, detail))

    def expect_reload(self, rt: Runtime) -> asyncio.Future[str | None]:
        """Before a notify instance gets its reload signal: a future that gives None once
        its reload is done, else why it failed (``reloads.py``)."""
        wait = ReloadWait(self._loop, rt.definition.timeout_start)
        readiness = rt.readiness
        if readiness is None or rt.main_pid is None:
            wait.settle(None)
        else:
            if readiness.reload is not None:
                readiness.reload.settle(None)  # an older reload is overtaken by this one
            readiness.reload = wait
        return wait.future

    def lines(self, rt: Runtime, texts: list[str]) -> None:
        """Output of the main process, for a ``log`` probe."""
        readiness = rt.readiness
        if readiness is not None and readiness.probe is not None:
            readiness.probe.lines(texts)

    def _notified(
        self, rt: Runtime, fields: dict[str, str], pid: int | None, fds: list[int]
    ) -> None:
        """A datagram on the instance's NOTIFY_SOCKET."""
        if pid is not None and not self._belongs(rt, pid):
            self._journal.say(rt, f"ignored a notify message from pid {pid}, not of this service")
            _close_all(fds)
            return
        if fds or fields.get("FDSTOREREMOVE") == "1":
            self._store(rt, fields, fds)
        if "STATUS" in fields:
            rt.status_text = fields["STATUS"]
            self._table.changed()
        if "MAINPID" in fields and fields["MAINPID"].isdigit():
            self._adopt(rt, int(fields["MAINPID"]))
        if fields.get("STOPPING") == "1":
            self._journal.say(rt, "the service says it is stopping")
        usec = fields.get("EXTEND_TIMEOUT_USEC", "")
        if usec.isdigit():
            self._feed(rt, ins.ExtendTimeout(int(usec) / 1e6))
        if fields.get("WATCHDOG") == "1" and rt.inst.timer is TimerKind.WATCHDOG:
            self._feed(rt, ins.WatchdogPing())
        if fields.get("RELOADING") == "1":
            self._feed(rt, ins.Reloading())
            if rt.readiness is not None and rt.readiness.reload is not None:
                rt.readiness.reload.reloading()
        if fields.get("READY") == "1" and rt.inst.state is State.RUNNING:
            self._ready_again(rt)
        elif fields.get("READY") == "1" and rt.inst.state is State.SPAWNED:
            self.protocol_ready(rt)

    def _ready_again(self, rt: Runtime) -> None:
        """``READY=1`` while running: the end of a reload."""
        if not rt.inst.ready:
            self._feed(rt, ins.Ready())
        if rt.readiness is not None and rt.readiness.reload is not None:
            rt.readiness.reload.settle(None)
            rt.readiness.reload = None

    def _store(self, rt: Runtime, fields: dict[str, str], fds: list[int]) -> None:
        """``FDSTORE=1``: keep the fds in the instance's store; ``FDSTOREREMOVE=1``: drop
        those of a name. Fds sent otherwise are closed."""
        name = fields.get("FDNAME") or DEFAULT_NAME
        if fields.get("FDSTOREREMOVE") == "1" and rt.fd_store is not None:
            rt.fd_store.remove(name)
        limit = rt.definition.fd_store_max
        if not fds:
            return
        if fields.get("FDSTORE") != "1" or limit == 0:
            _close_all(fds)
            self._journal.say(rt, f"closed {len(fds)} fd(s) sent without FDSTORE=1")
            return
        if rt.fd_store is None:
            rt.fd_store = FdStore()
        for text in rt.fd_store.add(fds, name, limit):
            self._journal.say(rt, text)

    def _belongs(self, rt: Runtime, pid: int) -> bool:
        """Whether a process is one of the instance's: a child, in one of its process
        groups, or in its cgroup (systemd's NotifyAccess=all, bounded to the service)."""
        if any(child.pid == pid for child in rt.children.values()):
            return True
        try:
            if os.getpgid(pid) in set(rt.groups.values()):
                return True
        except ProcessLookupError:
            return False
        return self._cgroups is not None and pid in self._cgroups.pids(label(rt))

    def protocol_ready(self, rt: Runtime) -> None:
        """The readiness protocol said yes (or, for a simple service, the exec did); a
        probe, if any, must pass too."""
        probe = rt.definition.ready
        readiness = rt.readiness
        if probe is None or readiness is None:
            self._feed(rt, ins.Ready())
            return
        if readiness.probe is not None:
            return
        readiness.probe = ProbeRunner(
            self._loop,
            probe,
            lambda command, timeout, done: self.run_check(rt, command, timeout, done),
            passed=lambda: self._feed(rt, ins.Ready()),
            gave_up=lambda reason: self._feed(rt, ins.NotReady(reason)),
        )

    def run_check(
        self, rt: Runtime, command: Command, timeout: float, done: Callable[[bool, str], None]
    ) -> Callable[[], None]:
        """Run an exec probe's command; ``done(passed, detail)``; returns a canceller."""

        def finished(outcome: Outcome) -> None:
            last = outcome.output.strip().splitlines()[-1:] or [""]
            if outcome.timed_out:
                done(False, f"check timed out after {timeout:g}s")
            else:
                done(outcome.ok, f"check exited with status {outcome.status} {last[0]}".strip())

        try:
            oneoff = self._actions.run(rt, command, {}, timeout, finished)
        except SpawnError as exc:
            self._loop.call_soon(done, False, str(exc))
            return lambda: None
        return oneoff.cancel

    def watch_pid_file(self, rt: Runtime) -> None:
        """A forking launcher exited 0: wait for the pid file to name the daemon it left."""
        assert rt.readiness is not None

        def found(pid: int) -> None:
            if rt.readiness is not None:
                rt.readiness.pid_watch = None
            if rt.inst.state is State.SPAWNED and rt.inst.launched:
                self._adopt(rt, pid)
                self._feed(rt, ins.Adopted())
                self.protocol_ready(rt)

        rt.readiness.pid_watch = PidFileWatch(self._loop, lambda: pid_file_daemon(rt), found)


def pid_file_daemon(rt: Runtime) -> int | None:
    """The process a forking instance's pid file names, if corral may believe it is its own
    (``daemon/forking.py``); None for other types."""
    definition = rt.definition
    if definition.type is not ServiceType.FORKING:
        return None
    return trusted_pid(pid_file_of(definition.pid_file, definition.cwd), rt.launch_ticks)


_MAIN = ProcessKind.MAIN


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
