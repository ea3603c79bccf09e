"""The processes of instances: spawning them, hearing their exits, signalling and sweeping
what they leave behind.

The machine says *what* (spawn the main process, signal it, sweep its group); this does it
without blocking and reports back as inputs (``Spawned``, ``SpawnFailed``, ``Exited``). Each
process gets its own process group (and cgroup, where there are cgroups); a sweep after a
main process's exit SIGKILLs what is left of its group, its cgroup, and, for a forking
service, the daemon its pid file names.

A main process is also handed what its keys ask for (``handover.py``): its sockets, which
corral holds for it (``sockets.py``) and watches where a connection starts it
(``connections.py``), its stored fds, an accepted connection, its watchdog's variables.

One trick lives here: a respawn that nothing can hold starts the new main process as soon
as the old one's exit is seen, before the machine walks to it in the same turn of the loop
(``_respawns_early``); nothing outside sees a difference but the earlier exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Iterable

from corral.core import inputs as ins
from corral.core.definition import Command
from corral.core.machine import respawns_at_once
from corral.core.states import ProcessKind, ServiceType, State
from corral.daemon.actions import Actions
from corral.daemon.connections import SocketActivation
from corral.daemon.forking import start_ticks
from corral.daemon.handover import main_handover
from corral.daemon.journal import Journal
from corral.daemon.launch import Launcher
from corral.daemon.logs import Capture
from corral.daemon.ready_watch import ReadyWatch, pid_file_daemon
from corral.daemon.reaper import Reaper
from corral.daemon.runtime import Runtime, label
from corral.daemon.sockets import BindError, Listeners
from corral.daemon.spawn import Child, SpawnError
from corral.daemon.table import InstanceTable
from corral.daemon.tree import kill_all, scan_tree

Feed = Callable[[Runtime, ins.Input], None]


class Processes:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        reaper: Reaper,
        table: InstanceTable,
        journal: Journal,
        launcher: Launcher,
        actions: Actions,
        clock: Callable[[], float],
        feed: Feed,
        may_respawn_early: Callable[[Runtime], bool],
    ) -> None:
        self._loop = loop
        self._reaper = reaper
        self._table = table
        self._journal = journal
        self._launcher = launcher
        self._clock = clock
        self._feed = feed
        self._may_respawn_early = may_respawn_early
        self.ready = ReadyWatch(
            loop, table, journal, actions, launcher.cgroups, feed, adopt=self.adopt
        )
        self.listeners = Listeners()
        self.sockets = SocketActivation(loop, table, self.listeners, feed, journal)
        self.sockets.sync()  # bound as the configuration loads, before anything starts

    # -- starting ------------------------------------------------------------------------

    def spawn(self, rt: Runtime, kind: ProcessKind) -> None:
        """The machine's ``Spawn``: start the process (or take the one started early)."""
        command = rt.definition.command(kind)
        if command is None:
            self._feed(rt, ins.SpawnFailed(kind, f"no command for {kind}"))
            return
        launched, rt.launched = (rt.launched, None) if kind is ProcessKind.MAIN else (None, None)
        if launched is None:
            try:
                launched = self._launch(rt, kind, command)
            except SpawnError as exc:
                self._feed(rt, ins.SpawnFailed(kind, str(exc)))
                return
        child, read_end = launched
        self._launcher.place(rt, child.pid)  # after the sweep of the last one's cgroup, if any
        if kind is ProcessKind.MAIN and rt.definition.type is ServiceType.FORKING:
            rt.launch_ticks = start_ticks(child.pid)  # what its pid file names starts later
        rt.children[kind] = child
        rt.groups[kind] = child.pgid
        self._table.changed()
        process = str(kind)
        main = kind is ProcessKind.MAIN

        def printed(texts: list[str]) -> None:
            self._journal.output(rt, process, texts)
            if main:
                self.ready.lines(rt, texts)

        output = Capture(
            self._loop, read_end, printed, on_close=lambda: self._reaper.poll(child.pid)
        )

        def exited(status: int | None, sig: int | None) -> None:
            output.drain()  # its last words are logged before its exit is
            self._exited(rt, kind, child, status, sig)

        self._reaper.watch(child.pid, exited)
        self._feed(rt, ins.Spawned(kind))
        simple = main and rt.definition.type is ServiceType.SIMPLE
        if simple and rt.definition.ready is not None and rt.definition.ready_fd is None:
            self.ready.protocol_ready(rt)  # a simple service's probe starts at once

    def _launch(self, rt: Runtime, kind: ProcessKind, command: Command) -> tuple[Child, int]:
        """Fork and exec one process of an instance (with its readiness channel, for the
        main one); the child and the read end of its output pipe. Raises SpawnError."""
        definition = rt.definition
        extra = self._launcher.corral_env(rt)
        extra_fd = None
        handed = None
        main = kind is ProcessKind.MAIN
        if main:
            try:
                handover, handed = main_handover(rt, self.listeners)
            except BindError as exc:
                raise SpawnError(str(exc)) from None
            extra.update(handover)
            if rt.readiness is not None:
                rt.readiness.close()
            rt.readiness = self.ready.channels_for(rt)
            if rt.readiness.notify is not None:
                extra["NOTIFY_SOCKET"] = rt.readiness.notify.address
            if rt.readiness.pipe is not None and definition.ready_fd is not None:
                extra_fd = (definition.ready_fd, rt.readiness.pipe.write_fd)
        try:
            return self._launcher.start(
                rt, command, extra, main_script=main and definition.shell_script,
                extra_fd=extra_fd, handed=handed,
            )  # fmt: skip
        finally:
            if rt.readiness is not None and rt.readiness.pipe is not None:
                rt.readiness.pipe.close_write_end()
            if main and rt.connection is not None:
                os.close(rt.connection)  # the process has it now; corral keeps no copy
                rt.connection = None

    def adopt(self, rt: Runtime, pid: int) -> None:
        """``pid`` is the main process from now on (a pid file, or ``MAINPID=``)."""
        current = rt.children.get(ProcessKind.MAIN)
        if current is not None and current.pid == pid:
            return
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return
        child = Child(pid, pgid, ours=False)
        rt.children[ProcessKind.MAIN] = child
        rt.adopted_group = pgid  # swept with the main's own group once it is gone
        self._table.changed()
        self._reaper.adopt(
            pid, lambda status, sig: self._exited(rt, ProcessKind.MAIN, child, status, sig)
        )
        # A launcher replaced here stays watched (so it is reaped) but is no longer the main.
        self._journal.say(rt, f"main process is now pid {pid}")

    # -- exits ---------------------------------------------------------------------------

    def _exited(
        self, rt: Runtime, kind: ProcessKind, child: Child, status: int | None, sig: int | None
    ) -> None:
        if rt.children.get(kind) is not child:
            return  # a launcher that handed over its main role (MAINPID=) is no one now
        if kind is ProcessKind.MAIN and rt.readiness is not None and rt.readiness.notify:
            rt.readiness.notify.drain()  # what it said before it went (FDSTORE=1) comes first
        del rt.children[kind]
        self._table.changed()
        if kind is ProcessKind.MAIN and rt.readiness is not None:
            forking = rt.definition.type is ServiceType.FORKING
            if not (forking and status == 0 and rt.inst.state is State.SPAWNED):
                rt.readiness.close()
                rt.readiness = None
        exit_input = ins.Exited(kind, status, sig)
        if self._respawns_early(rt, exit_input):
            command = rt.definition.command(ProcessKind.MAIN)
            if command is not None:
                with contextlib.suppress(SpawnError):  # the walk's own spawn will say why
                    rt.launched = self._launch(rt, ProcessKind.MAIN, command)
        self._feed(rt, exit_input)
        if rt.launched is not None:
            self._discard_launched(rt)
        if kind is ProcessKind.MAIN and rt.inst.launched and rt.readiness is not None:
            self.ready.watch_pid_file(rt)  # once the launch is recorded: the file may be there

    def _respawns_early(self, rt: Runtime, exited: ins.Exited) -> bool:
        """Whether the next main process may start before the machine walks to it, as in a
        supervisor without holds: the machine says its walk goes straight there (no delay,
        no hook), nothing can hold or turn that walk (``may_respawn_early``: no dependency
        on or of the service, no ``while`` or ``stop_on`` of its own, nobody listening for
        ``starting``/``stopping``), and its exec is its readiness. The walk then runs in this
        same turn, so nothing outside sees a difference but the new process's earlier exec:
        a quarter of a millisecond of cold Python sooner, at a thousand services."""
        definition = rt.definition
        return (
            not rt.renew
            and definition.policy.ready_on_spawn
            and self._may_respawn_early(rt)
            and respawns_at_once(rt.inst, definition.policy, exited, self._clock())
        )

    def _discard_launched(self, rt: Runtime) -> None:
        """A guard: the walk did not take the process started early (``respawns_at_once``
        and ``_respawns_early`` say it always does), so it goes before anyone relies on it."""
        assert rt.launched is not None
        child, read_end = rt.launched
        rt.launched = None
        self._reaper.watch(child.pid, lambda status, sig: None)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pgid, signal.SIGKILL)
        os.close(read_end)
        self._journal.say(
            rt, f"killed pid {child.pid}, started early for a respawn that did not come"
        )

    # -- signals and sweeps --------------------------------------------------------------

    def signal(self, rt: Runtime, kind: ProcessKind, number: int) -> None:
        """The machine's ``Signal``: to the process's group (and an adopted main itself);
        a SIGKILL after the process is gone is the sweep of what it left."""
        groups = {rt.groups[kind]} if kind in rt.groups else set()
        child = rt.children.get(kind)
        if child is not None:
            groups.add(child.pgid)
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, number)
        if child is not None and not child.ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child.pid, number)  # an adopted main may lead no group of its own
        if kind not in rt.children and number == signal.SIGKILL:
            rt.groups.pop(kind, None)  # the sweep after the leader's exit: the group is done
            if kind is ProcessKind.MAIN:
                self._sweep_forked(rt)
                cgroups = self._launcher.cgroups
                if cgroups is not None:
                    cgroups.kill_soon(label(rt))

    def _sweep_forked(self, rt: Runtime) -> None:
        """What a forking service leaves outside its groups and marks: the daemon its pid
        file names (a start that failed before adopting it) and the group it led."""
        groups = [rt.adopted_group] if rt.adopted_group is not None else []
        rt.adopted_group = None
        daemon = pid_file_daemon(rt)
        if daemon is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(daemon, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                groups.append(os.getpgid(daemon))
        for pgid in groups:
            if pgid > 1 and pgid != os.getpgrp():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)

    def kill_trees(self, runtimes: Iterable[Runtime]) -> None:
        """SIGKILL every process of these instances, wherever it went (``destroy``): their
        cgroups, groups and descendants, what carries their marks, what pid files name."""
        cgroups = self._launcher.cgroups
        doomed: set[int] = set()
        for rt in runtimes:
            if cgroups is not None:
                cgroups.kill(label(rt))
            marks = {
                "CORRAL_JOB": rt.inst.job,
                "CORRAL_INSTANCE": rt.inst.key,
                "CORRAL_SOCKET": self._launcher.socket,
            }
            pids = [child.pid for child in rt.children.values()]
            groups = [*rt.groups.values()]
            daemon = pid_file_daemon(rt)
            if daemon is not None:
                pids.append(daemon)
            if rt.adopted_group is not None:
                groups.append(rt.adopted_group)
            doomed |= scan_tree(pids, groups, marks)
            for oneoff in list(rt.oneoffs):
                oneoff.kill()
        kill_all(doomed)
