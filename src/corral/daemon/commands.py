"""What each control request does: the bridge from protocol requests to the supervisor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from corral.cli.render import StatusTable, status_table
from corral.control.protocol import Request, encoded
from corral.control.server import Connection
from corral.core.config import ENV_NAME
from corral.core.expr import EVENT_NAME
from corral.core.machine import signal_name
from corral.core.registry import Registry
from corral.core.states import Goal, State
from corral.daemon.logs import LogLine
from corral.daemon.runtime import Runtime, Target, label, settled, stopped
from corral.daemon.supervisor import Supervisor
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

    async def __call__(self, request: Request, connection: Connection) -> Any:
        method = getattr(self, "cmd_" + request.cmd)
        return await method(connection=connection, **request.args)

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
        chosen = [_named(name) for name in names or ()] + _targets(targets or [])
        rows = self.supervisor.status(chosen)
        if not table:
            if chosen:
                return rows
            if self._json_of[0] is not rows:  # the supervisor's kept list: encoded once
                self._json_of = (rows, encoded(rows))
            return self._json_of[1]
        if chosen:  # a few services: nothing worth keeping, and the full table stays kept
            return status_table(rows, colour)
        return self._table.render(rows, colour)

    async def cmd_start(
        self, connection: Connection, targets: list[dict[str, Any]], wait: bool = True
    ) -> Any:
        if self.supervisor.shutting_down:
            raise OperationFailed("corral is shutting down")
        runtimes = self.supervisor.set_goal(_targets(targets), Goal.START)
        return await self._outcome(runtimes, wait, "start")

    async def cmd_stop(
        self, connection: Connection, targets: list[dict[str, Any]], wait: bool = True
    ) -> Any:
        runtimes = self.supervisor.set_goal(_targets(targets), Goal.STOP)
        if wait:
            await asyncio.gather(*(self.supervisor.until(rt, stopped) for rt in runtimes))
        return [_brief(rt) for rt in runtimes]

    async def cmd_restart(
        self, connection: Connection, targets: list[dict[str, Any]], wait: bool = True
    ) -> Any:
        if self.supervisor.shutting_down:
            raise OperationFailed("corral is shutting down")
        runtimes = self.supervisor.restart(_targets(targets))
        return await self._outcome(runtimes, wait, "restart")

    async def cmd_reload(self, connection: Connection, targets: list[dict[str, Any]]) -> Any:
        idle = self.supervisor.reload(_targets(targets))
        if idle:
            raise OperationFailed(f"not running, nothing to reload: {', '.join(idle)}")
        return None

    async def cmd_wait(
        self, connection: Connection, names: list[str] | None = None, timeout: float | None = None
    ) -> Any:
        sup = self.supervisor
        if names:
            runtimes = [rt for name in names for rt in sup.instances(_named(name))]
        else:
            runtimes = [
                rt for job in sup.jobs.values() for rt in job.instances.values()
                if rt.inst.goal is Goal.START
            ]  # fmt: skip
        futures = [sup.until(rt, _ready) for rt in runtimes]
        try:
            outcomes = await asyncio.wait_for(asyncio.gather(*futures), timeout)
        except TimeoutError:
            waiting = [label(rt) for rt, f in zip(runtimes, futures, strict=True) if not f.done()]
            raise OperationFailed(f"timed out waiting for: {', '.join(waiting)}") from None
        failed = [label(rt) for rt, ok in zip(runtimes, outcomes, strict=True) if not ok]
        if failed:
            raise OperationFailed(f"not running: {', '.join(failed)}")
        return [_brief(rt) for rt in runtimes]

    async def cmd_logs(
        self,
        connection: Connection,
        name: str,
        instance: str | None = None,
        env: dict[str, str] | None = None,
        lines: int | None = 10,
        follow: bool = False,
    ) -> Any:
        log = self.supervisor.log_of(name)
        if env:
            instance = self.supervisor.key_of(Target(name, instance, env))
        backlog = [ln.as_dict() for ln in log.tail(lines, instance)]
        if not follow:
            return backlog

        def follower(line: LogLine) -> None:
            if instance is None or line.instance == instance:
                connection.send({"log": line.as_dict()})

        await _follow(connection, backlog, log.followers, follower)
        return None

    async def cmd_destroy(self, connection: Connection, targets: list[dict[str, Any]]) -> Any:
        runtimes = self.supervisor.destroy(_targets(targets))
        await asyncio.gather(*(self.supervisor.until(rt, stopped) for rt in runtimes))
        return [_brief(rt) for rt in runtimes]

    async def cmd_action(
        self,
        connection: Connection,
        target: dict[str, Any],
        action: str,
        args: list[str] | None = None,
        chain: list[str] | None = None,
    ) -> Any:
        outcome = await self.supervisor.action(
            _targets([target])[0], action, args or [], chain or []
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
        starts, stops = self.supervisor.emit(event, env or {})
        started = [rt for rt, _ in starts]

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

        await _follow(connection, backlog, self.supervisor.event_followers, follower)
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

    async def _outcome(self, runtimes: list[Runtime], wait: bool, verb: str) -> Any:
        if not wait:
            return [_brief(rt) for rt in runtimes]
        outcomes = await asyncio.gather(*(self.supervisor.until(rt, settled) for rt in runtimes))
        failed = [rt for rt, ok in zip(runtimes, outcomes, strict=True) if not ok]
        if failed:
            reasons = "; ".join(f"{label(rt)}: {rt.inst.error or rt.inst.state}" for rt in failed)
            raise OperationFailed(f"{verb} failed: {reasons}")
        return [_brief(rt) for rt in runtimes]


def _ready(inst: Any) -> bool | None:
    if inst.state is State.RUNNING and inst.ready and not inst.restarting:
        return True
    if inst.goal is Goal.STOP and inst.state in (State.WAITING, State.FAILED):
        return False
    return None


async def _follow(
    connection: Connection, backlog: list[Any], followers: dict[Any, None], follower: Any
) -> None:
    """A stream: the backlog as the reply, then whatever ``follower`` sends, until the
    client hangs up."""
    connection.send({"ok": True, "result": backlog, "stream": True})
    followers[follower] = None
    try:
        await connection.until_peer_closes()
    finally:
        followers.pop(follower, None)


def _named(text: str) -> Target:
    """``NAME`` or ``NAME:INSTANCE`` as a target."""
    name, colon, key = text.partition(":")
    return Target(name, key if colon else None)


def _targets(raw: list[dict[str, Any]]) -> list[Target]:
    targets = []
    for item in raw:
        if not item["name"]:
            raise UsageError("a service name cannot be empty")
        targets.append(Target(item["name"], item.get("instance"), item.get("env") or {}))
    return targets


def _brief(rt: Runtime) -> dict[str, Any]:
    return {
        "name": rt.inst.job,
        "instance": rt.inst.key,
        "state": str(rt.inst.state),
        "pid": rt.main_pid,
    }
