"""How a waiting ``start``, ``stop``, ``restart`` or ``destroy`` follows each instance it
changed to its end (``Watch``), and tells a client that asked what each is waiting for
(``Progress``).

A ``Watch`` sees every step of its instance's machine through the supervisor's ``until``:
it decides how the command ends for that instance (there, or why not), and notes what the
instance waits for whenever that changes. A ``simple`` service is ``running`` at once, but
its start counts only once its main process has outlived ``start_grace``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from corral.control.server import Connection
from corral.core.records import Instance, signal_name
from corral.core.states import Goal, ProcessKind, State
from corral.daemon.logs import LogLine, ServiceLog, clock_text
from corral.daemon.runtime import Runtime, Target, label
from corral.daemon.supervisor import Supervisor
from corral.daemon.waiting_for import waiting_for
from corral.errors import NoSuchService

#: The lines of its own output a failed start shows.
LAST_LINES = 10

#: Said of a failed start whose instance its restart policy brings back.
COMING_BACK = "corral restarts it (restart policy)"

#: The states of the walk down.
_DOWN_WALK = frozenset({State.PRE_STOP, State.STOPPING, State.KILLED, State.POST_STOP})


class Watch:
    """One instance a waiting start/stop/restart/destroy follows to its end.

    ``outcome`` returns once the instance is where the command sent it, or will not get
    there; ``why`` then says why not (None: it did). A start (or the second half of a
    restart) ends when the instance is running and ready and its main process has outlived
    ``start_grace``; it fails when it ends at rest instead (gave up, or was stopped), or when
    its main process dies on the way (the walk down of a respawn). A stop ends at rest; it
    fails when a start overrules it and the instance is running again.
    """

    def __init__(
        self, supervisor: Supervisor, rt: Runtime, verb: str, progress: Progress | None
    ) -> None:
        self._supervisor = supervisor
        self.rt = rt
        self.verb = verb
        self.why: str | None = None
        self.began = time.time()
        self.over = False
        inst = rt.inst
        # A start that found the instance on its way down counts deaths only once it is
        # on its way up again; a restart, once its first half is over.
        self._coming_up = not (inst.restarting or inst.state in _DOWN_WALK)
        self._restarts = inst.restarts
        self._spawned: tuple[int, float] | None = None  # the main pid seen spawned, and when
        self._grace_pid: int | None = None
        self._show_lines = False  # a failure of its own processes: show their last output
        self._progress = progress
        self.waiting_for = ""
        self.since = self.began
        self._watched: set[Runtime] = set()
        if progress is not None:
            progress.watches.append(self)

    async def outcome(self) -> None:
        try:
            if self.verb in ("stop", "destroy"):
                await self._supervisor.until(self.rt, self._down)
            elif await self._supervisor.until(self.rt, self._up):
                await self._grace()
        finally:
            self.over = True
            self._changed()

    def said(self) -> str:
        """The failure in words, with the instance's last output where its own process
        failed."""
        assert self.why is not None
        text = f"{label(self.rt)}: {self.why}"
        if not self._show_lines:
            return text
        since = min(self.began, self._spawned[1] if self._spawned else self.began)
        try:
            log = self._supervisor.log_of(self.rt.inst.job)
        except NoSuchService:  # removed from the configuration meanwhile, and gone
            return text
        lines = _last_output(log, self.rt.inst.key, since)
        if not lines:
            return text
        return "\n".join([text + "; its last output:", *(f"  {_log_text(ln)}" for ln in lines)])

    # -- the predicates, called at every step of the instance -----------------------------

    def _down(self, inst: Instance) -> bool | None:
        self._look(inst)
        if inst.state in (State.WAITING, State.FAILED):
            return True
        if inst.goal is Goal.START and inst.state is State.RUNNING and not inst.restarting:
            self.why = "started again before it stopped"
            return False
        return None

    def _up(self, inst: Instance) -> bool | None:
        self._look(inst)
        if inst.goal is Goal.STOP:
            if inst.state is State.FAILED:
                self._fail(inst.error or "failed", lines=True)
                return False
            if inst.state is State.WAITING:
                self._fail("stopped before it was ready")
                return False
            self._coming_up = False  # a stop's walk down, not a death (a start may follow)
            return None  # judged at rest
        died = self._coming_up and inst.restarts != self._restarts
        if died or inst.restarting or inst.state in _DOWN_WALK:
            if died or (self._coming_up and not inst.restarting):
                self._fail(f"{_death(inst)} before it was ready; {COMING_BACK}", lines=True)
                return False
            return None  # the walk down a start or restart found it on
        if not self._coming_up:
            self._coming_up, self._restarts = True, inst.restarts
        pid = self.rt.main_pid
        seen = self._spawned is not None and self._spawned[0] == pid
        if inst.state is State.SPAWNED and pid is not None and not seen:
            self._spawned = (pid, time.time())
        if inst.state is State.RUNNING and inst.ready:
            # Noted now: by the time ``_grace`` runs, the process may have died already.
            self._grace_pid = pid
            if pid is not None and not seen:
                self._spawned = (pid, self._running_since())
            return True
        return None

    def _in_grace(self, inst: Instance) -> bool | None:
        if self.over:
            return True  # the grace is over: this waiter goes
        rt = self.rt
        if inst.state is State.RUNNING and not inst.restarting and rt.main_pid == self._grace_pid:
            return None
        if rt.main_pid != self._grace_pid or not inst.main_alive:
            grace = rt.definition.start_grace
            self._fail(f"{_death(inst)} within its start grace ({grace:g}s)", lines=True)
            if inst.goal is Goal.START and not inst.restarting:
                self.why = f"{self.why}; {COMING_BACK}"
        elif inst.goal is Goal.STOP:
            self._fail("stopped before its start grace ended")
        else:
            self._fail("restarted before its start grace ended")
        return False

    async def _grace(self) -> None:
        """A plain simple service is running at once; its start counts only once its main
        process has lived ``start_grace`` seconds (from its spawn)."""
        rt = self.rt
        grace = rt.definition.start_grace
        pid = self._grace_pid  # the main process it was running with
        if grace <= 0 or pid is None:
            return
        spawned = self._spawned[1] if self._spawned and self._spawned[0] == pid else time.time()
        left = spawned + grace - time.time()
        if left <= 0:
            return
        self._show("start grace", spawned)
        died = self._supervisor.until(rt, self._in_grace)
        await asyncio.wait([died], timeout=left)
        self.over = True  # its waiter answers True at the instance's next step, and goes

    def _running_since(self) -> float:
        """When the instance became running, in wall time (its status row's ``since``):
        for a plain simple service, when its main process was spawned."""
        inst = self.rt.inst
        rows = self._supervisor.status([Target(inst.job, inst.key or None)])
        return next((row.since for row in rows if row.instance == inst.key), time.time())

    def _fail(self, why: str, lines: bool = False) -> None:
        self.why = why
        self._show_lines = lines

    # -- what it waits for, for the live line ---------------------------------------------

    def _look(self, inst: Instance) -> None:
        """Note what the instance waits for now, if a client follows the progress."""
        if self._progress is None or self.over:
            return
        text, others = waiting_for(self._supervisor, self.rt, inst)
        self._show(text, time.time())
        for other in others:  # what they do changes what this one waits for
            if other not in self._watched:
                self._watched.add(other)
                self._supervisor.until(other, self._other_moved)

    def _other_moved(self, _other: Instance) -> bool | None:
        if self.over:
            return False  # this waiter goes at that instance's next step
        self._look(self.rt.inst)
        return None

    def _show(self, waiting_for: str, since: float) -> None:
        if waiting_for != self.waiting_for:
            self.waiting_for, self.since = waiting_for, since
            self._changed()

    def _changed(self) -> None:
        if self._progress is not None:
            self._progress.changed()


class Progress:
    """The ``{"progress": [...]}`` lines of one waiting command: sent at the end of a turn
    of the loop in which what an instance waits for changed (never on a timer: the client
    counts the seconds from ``since``)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.watches: list[Watch] = []
        self._due = False
        self._closed = False
        self._last: list[dict[str, Any]] = []

    def changed(self) -> None:
        if not self._due and not self._closed:
            self._due = True
            asyncio.get_running_loop().call_soon(self._send)

    def close(self) -> None:
        self._closed = True

    def _send(self) -> None:
        self._due = False
        if self._closed:
            return
        items = [
            {
                "name": watch.rt.inst.job,
                "instance": watch.rt.inst.key,
                "waiting_for": watch.waiting_for,
                "since": round(watch.since, 3),
            }
            for watch in self.watches
            if not watch.over and watch.waiting_for
        ]
        if items and items != self._last:
            self._connection.send({"progress": items})
        self._last = items


def _death(inst: Instance) -> str:
    """Why the main process is going, in words: how it ended, or, while it still runs,
    the machine's reason to stop it (not ready in time, say)."""
    if inst.main_alive:
        return inst.error or "main process stopped"
    if inst.exit_signal is not None:
        return f"main process killed by signal {signal_name(inst.exit_signal)}"
    if inst.exit_status is not None:
        return f"main process exited with status {inst.exit_status}"
    return "main process ended"


def _last_output(log: ServiceLog, key: str, since: float) -> list[LogLine]:
    """The last lines the instance's own processes printed since ``since``."""
    lines = [
        ln for ln in log.tail(None, key) if ln.process != "corral" and ln.time >= since - 0.001
    ]
    return lines[-LAST_LINES:]


def _log_text(line: LogLine) -> str:
    """A log line as ``corral logs`` prints it: ``12:00:01 web | text``."""
    name = line.service + (f":{line.instance}" if line.instance else "")
    tag = "" if line.process == ProcessKind.MAIN else f" [{line.process}]"
    return f"{clock_text('%H:%M:%S', line.time)} {name}{tag} | {line.text}"
