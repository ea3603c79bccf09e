"""What each control request does: the bridge from protocol requests to the supervisor.

A waiting ``start``, ``stop``, ``restart`` or ``destroy`` follows each instance it changed
with a ``Watch`` (``corral.daemon.waits``) and replies once all have ended, or fails saying,
for each that did not get where it was sent, why not.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable
from typing import Any

from corral.control import protocol
from corral.control.protocol import Request, encoded
from corral.control.server import Connection
from corral.control.table import StatusTable, status_table
from corral.core.expr import EVENT_NAME
from corral.core.records import signal_name
from corral.core.registry import Registry
from corral.core.states import Goal, ServiceType, State
from corral.core.values import ENV_NAME
from corral.daemon.activation import TIMER_EVENT
from corral.daemon.logs import LogLine, ServiceLog
from corral.daemon.runtime import Runtime, Target, label, settled, stopped
from corral.daemon.status_view import TimerRuns
from corral.daemon.supervisor import Supervisor
from corral.daemon.targets import expand, named, targets_of
from corral.daemon.waits import Progress, Watch
from corral.daemon.world import checked_states
from corral.errors import NoSuchService, OperationFailed, UsageError


class Commands:
    """One method per protocol command; ``down`` asks ``on_down`` to end the daemon."""

    def __init__(
        self,
        supervisor: Supervisor,
        stop_all: Callable[[], Awaitable[None]],
        exit_daemon: Callable[[], None],
        reload: Callable[[], dict[str, list[object]]],
        registry: Callable[[], Registry],
    ) -> None:
        self.supervisor = supervisor
        self._stop_all = stop_all
        self._exit_daemon = exit_daemon
        self._reload = reload
        self._registry = registry
        self._table = StatusTable()
        self._json_of: tuple[object, object] = ((), None)  # the kept rows, and their JSON
        self._runs = TimerRuns()  # last_run and next_run of the timer jobs

    async def __call__(self, request: Request, connection: Connection) -> Any:
        method = getattr(self, "cmd_" + request.cmd)
        return await method(connection=connection, **request.args)

    async def cmd_hello(self, connection: Connection) -> Any:
        return protocol.hello()

    async def cmd_ping(self, connection: Connection) -> Any:
        return {"pong": True}

    async def cmd_status(
        self,
        connection: Connection,
        names: list[str] | None = None,
        targets: list[dict[str, Any]] | None = None,
        table: bool = False,
        colour: bool = False,
    ) -> Any:
        chosen = [named(name) for name in names or ()] + targets_of(targets or [])
        rows = self._runs.lay_over(self.supervisor.status(chosen))
        if not table:
            if chosen:
                return rows
            if self._json_of[0] is not rows:  # the supervisor's kept list: encoded once
                self._json_of = (rows, encoded(rows))
            return self._json_of[1]
        if chosen:  # a few services: nothing worth keeping, and the full table stays kept
            return status_table(rows, colour)
        return self._table.render(rows, colour)

    # -- start, stop, restart: they wait, and say how it ended ----------------------------

    async def cmd_start(self, connection: Connection, **args: Any) -> Any:
        return await self._change("start", connection, **args)

    async def cmd_stop(self, connection: Connection, **args: Any) -> Any:
        return await self._change("stop", connection, **args)

    async def cmd_restart(self, connection: Connection, **args: Any) -> Any:
        return await self._change("restart", connection, **args)

    async def _change(
        self,
        verb: str,
        connection: Connection,
        targets: list[dict[str, Any]],
        wait: bool = True,
        progress: bool = False,
    ) -> Any:
        """Set the targets' goal (or restart them), then wait as the request asked."""
        sup = self.supervisor
        if verb != "stop" and sup.shutting_down:
            raise OperationFailed("corral is shutting down")
        if verb == "restart":
            runtimes = sup.restart(expand(sup, targets, None))
        else:
            goal = Goal.START if verb == "start" else Goal.STOP
            runtimes = sup.set_goal(expand(sup, targets, goal), goal)
        return await self._waited(runtimes, verb, wait, connection if progress else None)

    async def cmd_trigger(self, connection: Connection, name: str, wait: bool = True) -> Any:
        """Run a timer's job now, as if its timer fired; wait as a start does."""
        sup = self.supervisor
        if sup.shutting_down:
            raise OperationFailed("corral is shutting down")
        rt = sup.activation.timer_job(sup.job(name, starting=True))
        sup.emit(TIMER_EVENT, {"JOB": rt.inst.job})
        self._runs.ran(rt.inst.job, time.time())
        return await self._waited([rt], "start", wait, None)

    async def cmd_schedule(
        self, connection: Connection, source: str, timers: dict[str, Any]
    ) -> Any:
        """The timers bridge's last and next firing of each timer, for ``status``."""
        self._runs.report(timers)
        return None

    async def cmd_destroy(self, connection: Connection, targets: list[dict[str, Any]]) -> Any:
        runtimes = self.supervisor.destroy(targets_of(targets))
        return await self._waited(runtimes, "destroy", True, None)

    async def _waited(
        self, runtimes: list[Runtime], verb: str, wait: bool, connection: Connection | None
    ) -> Any:
        """The command's result once every instance has come where it was sent, or the
        error saying, for each that did not, why not."""
        if not wait:
            return [_brief(rt) for rt in runtimes]
        progress = Progress(connection) if connection is not None else None
        watches = [Watch(self.supervisor, rt, verb, progress) for rt in runtimes]
        try:
            await asyncio.gather(*(watch.outcome() for watch in watches))
        finally:
            if progress is not None:
                progress.close()  # nothing more may follow the reply
        failed = [watch.said() for watch in watches if watch.why is not None]
        if failed:
            raise OperationFailed("\n".join(failed))
        return [_brief(rt) for rt in runtimes]

    # -- other requests ------------------------------------------------------------------

    async def cmd_reload(self, connection: Connection, targets: list[dict[str, Any]]) -> Any:
        idle, reloads = self.supervisor.reload(targets_of(targets))
        if idle:
            raise OperationFailed(f"not running, nothing to reload: {', '.join(idle)}")
        failed = [f"{name}: {why}" for name, future in reloads if (why := await future)]
        if failed:
            raise OperationFailed("; ".join(failed))
        return None

    async def cmd_wait(
        self, connection: Connection, names: list[str] | None = None, timeout: float | None = None
    ) -> Any:
        sup = self.supervisor
        if names:
            runtimes = [rt for name in names for rt in sup.instances(named(name))]
        else:
            runtimes = [
                rt for job in sup.jobs.values() for rt in job.instances.values()
                if rt.inst.goal is Goal.START
            ]  # fmt: skip
        futures = [sup.until(rt, _ready) for rt in runtimes]
        if futures:
            await asyncio.wait(futures, timeout=timeout)
        waiting = [label(rt) for rt, f in zip(runtimes, futures, strict=True) if not f.done()]
        for future in futures:
            future.cancel()  # one given up on: its waiter goes at the instance's next step
        if waiting:
            raise OperationFailed(f"timed out waiting for: {', '.join(waiting)}")
        failed = [label(rt) for rt, f in zip(runtimes, futures, strict=True) if not f.result()]
        if failed:
            raise OperationFailed(f"not running: {', '.join(failed)}")
        return [_brief(rt) for rt in runtimes]

    async def cmd_logs(
        self,
        connection: Connection,
        targets: list[dict[str, Any]] | None = None,
        name: str | None = None,
        instance: str | None = None,
        env: dict[str, str] | None = None,
        lines: int | None = 10,
        follow: bool = False,
    ) -> Any:
        """The last ``lines`` of the targets' logs merged in time order (no target: every
        service's); ``name``/``instance``/``env`` is protocol 1's form of one target."""
        if name is not None:
            targets = [{"name": name, "instance": instance, "env": env or {}}]
        sources = _log_sources(self.supervisor, targets_of(targets or []))
        merged = heapq.merge(
            *(_tail(log, keys, lines) for log, keys in sources.items()), key=lambda line: line.time
        )
        backlog = list(merged)
        if lines is not None:
            backlog = backlog[-lines:] if lines else []
        shown = [line.as_dict() for line in backlog]
        if not follow:
            return shown

        followed = [(log.followers, _log_follower(connection, k)) for log, k in sources.items()]
        await _follow(connection, shown, followed)
        return None

    async def cmd_action(
        self,
        connection: Connection,
        target: dict[str, Any],
        action: str,
        args: list[str] | None = None,
        chain: list[str] | None = None,
    ) -> Any:
        outcome = await self.supervisor.action(
            targets_of([target])[0], action, args or [], chain or []
        )
        return {
            "status": outcome.status,
            "signal": signal_name(outcome.signal) if outcome.signal is not None else None,
            "timed_out": outcome.timed_out,
            "output": outcome.output,
        }

    async def cmd_graph(self, connection: Connection) -> Any:
        graph = self.supervisor.graph
        return {**graph.as_json(), "dot": graph.as_dot()}

    async def cmd_state(
        self,
        connection: Connection,
        source: str,
        states: list[dict[str, Any]],
        replace: bool = False,
    ) -> Any:
        """A bridge says which of its states hold (``replace``: exactly these, all it holds)."""
        self.supervisor.states(source, checked_states(source, states), replace)
        return None

    async def cmd_watched(self, connection: Connection, source: str, follow: bool = False) -> Any:
        """What a bridge is to watch (``{"FILE": [...]}``); with ``follow``, again as a
        ``{"watched": ...}`` line after each reload that changes it."""
        world = self.supervisor.world
        if not follow:
            return world.watched(source)
        first, follower = world.follower(source, connection.send)
        await _follow(connection, first, [(world.watchers, follower)])
        return None

    async def cmd_emit(
        self,
        connection: Connection,
        event: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Any:
        """Emit an event; with ``wait``, return once every instance it started or stopped
        has settled, failing if one it started did not come up."""
        if not EVENT_NAME.match(event):
            raise UsageError(f"{event!r} is not a valid event name")
        for key in env or {}:
            if not ENV_NAME.match(key):
                raise UsageError(f"{key!r} is not a valid variable name")
        starts, stopping = self.supervisor.emit(event, env or {})
        # A stop already turned into a start (a done oneshot a timer runs again) is a start.
        started = [rt for rt, _ in starts] + [rt for rt in stopping if rt.inst.goal is Goal.START]
        stops = [rt for rt in stopping if rt.inst.goal is Goal.STOP]

        def reply() -> dict[str, Any]:
            return {
                "started": [_brief(rt) for rt in started],
                "stopped": [_brief(rt) for rt in stops],
            }

        if not wait:
            return reply()
        await asyncio.gather(*(self.supervisor.until(rt, stopped) for rt in stops))
        outcomes = await asyncio.gather(*(self.supervisor.until(rt, settled) for rt in started))
        failed = [rt for rt, ok in zip(started, outcomes, strict=True) if not ok]
        if failed:
            reasons = "; ".join(f"{label(rt)}: {rt.inst.error or rt.inst.state}" for rt in failed)
            raise OperationFailed(f"{event}: start failed: {reasons}")
        return reply()

    async def cmd_events(
        self, connection: Connection, lines: int | None = None, follow: bool = False
    ) -> Any:
        history = list(self.supervisor.events)
        backlog = history[-lines:] if lines else ([] if lines == 0 else history)
        if not follow:
            return backlog

        def follower(record: dict[str, object]) -> None:
            connection.send({"event": record})

        await _follow(connection, backlog, [(self.supervisor.event_followers, follower)])
        return None

    async def cmd_config_reload(self, connection: Connection) -> Any:
        if self.supervisor.shutting_down:
            raise OperationFailed("corral is shutting down")
        return self._reload()  # a ConfigError replies with every problem, code 1

    async def cmd_config_show(self, connection: Connection, name: str) -> Any:
        registry = self._registry()
        real = self.supervisor.graph.resolve(name) or name
        if real not in registry.definitions:
            raise NoSuchService(f"no such service in the current configuration: {name}")
        return registry.show(real)

    async def cmd_down(self, connection: Connection) -> Any:
        await self._stop_all()
        connection.after_reply.append(self._exit_daemon)  # answer first, then exit
        return None


def _log_sources(sup: Supervisor, targets: list[Target]) -> dict[ServiceLog, frozenset[str] | None]:
    """Each log to read, with the instance keys wanted of it (None: every instance)."""
    if not targets:
        return {sup.log_of(name): None for name in sup.jobs}
    sources: dict[ServiceLog, frozenset[str] | None] = {}
    for target in targets:
        log = sup.log_of(target.name)
        bare = target.instance is None and not target.env
        key = None if bare else sup.key_of(target)
        keys = sources.get(log, frozenset())
        sources[log] = None if key is None or keys is None else keys | {key}
    return sources


def _log_follower(connection: Connection, keys: frozenset[str] | None) -> Callable[[LogLine], None]:
    def follower(line: LogLine) -> None:
        if keys is None or line.instance in keys:
            connection.send({"log": line.as_dict()})

    return follower


def _tail(log: ServiceLog, keys: frozenset[str] | None, count: int | None) -> list[LogLine]:
    if keys is None or len(keys) == 1:
        return log.tail(count, None if keys is None else next(iter(keys)))
    lines = [ln for ln in log.tail(None) if ln.instance in keys]
    return lines if count is None else lines[-count:] if count else []


def _ready(inst: Any) -> bool | None:
    if inst.state is State.RUNNING and inst.ready and not inst.restarting:
        return True
    if inst.goal is Goal.STOP and inst.state in (State.WAITING, State.FAILED):
        return False
    return None


async def _follow(
    connection: Connection,
    backlog: Any,
    followed: list[tuple[dict[Any, None], Callable[..., None]]],
) -> None:
    """A stream: the backlog as the reply, then whatever the followers send, until the
    client hangs up. ``followed``: each list of followers with the one to add to it."""
    connection.send({"ok": True, "result": backlog, "stream": True})
    for followers, follower in followed:
        followers[follower] = None
    try:
        await connection.until_peer_closes()
    finally:
        for followers, follower in followed:
            followers.pop(follower, None)


def _brief(rt: Runtime) -> dict[str, Any]:
    inst = rt.inst
    done = (
        rt.definition.type is ServiceType.ONESHOT
        and inst.state is State.RUNNING
        and not inst.main_alive
    )
    return {
        "name": inst.job,
        "instance": inst.key,
        "state": str(inst.state),
        "pid": rt.main_pid,
        "done": done,
    }
