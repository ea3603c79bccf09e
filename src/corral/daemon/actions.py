"""Short-lived commands of an instance: ``corral action`` and exec readiness probes.

Each runs as a child in the instance's cgroup with a timeout (:class:`OneOff` collects it).
An action may call other actions; the call chain travels in ``CORRAL_CALL_CHAIN`` as
``service/action`` pairs, and a call of a pair already on the chain is refused with the
whole chain rather than left to deadlock. Another action of a service on the chain is fine:
it runs as a process of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from corral.core.definition import Command
from corral.core.records import signal_name
from corral.daemon.journal import Journal
from corral.daemon.launch import Launcher
from corral.daemon.oneoff import OneOff, Outcome
from corral.daemon.reaper import Reaper
from corral.daemon.runtime import Runtime, label
from corral.daemon.spawn import SpawnError
from corral.errors import OperationFailed, UsageError


class Actions:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        reaper: Reaper,
        launcher: Launcher,
        journal: Journal,
    ) -> None:
        self._loop = loop
        self._reaper = reaper
        self._launcher = launcher
        self._journal = journal

    def run(
        self,
        rt: Runtime,
        command: Command,
        extra_env: Mapping[str, str],
        timeout: float,
        done: Callable[[Outcome], None],
    ) -> OneOff:
        """Start a one-off command of the instance; ``done`` gets its outcome. Raises
        SpawnError."""
        env = self._launcher.corral_env(rt)
        env.update(extra_env)
        child, read_end = self._launcher.start(rt, command, env)
        self._launcher.place(rt, child.pid)

        def finished(outcome: Outcome) -> None:
            rt.oneoffs.pop(oneoff, None)
            done(outcome)

        oneoff = OneOff(self._loop, self._reaper, child, read_end, timeout, finished)
        rt.oneoffs[oneoff] = None
        return oneoff

    async def action(self, rt: Runtime, action: str, args: list[str], chain: list[str]) -> Outcome:
        """Run one of the instance's actions; refuse a call that would close a cycle."""
        definition = rt.definition
        spec = definition.actions.get(action)
        if spec is None:
            known = ", ".join(sorted(definition.actions)) or "none"
            raise UsageError(f"{rt.inst.job} has no action {action!r} (actions: {known})")
        here = f"{label(rt)}/{action}"
        if here in chain:
            path = " -> ".join([*chain, here])
            raise OperationFailed(f"action call cycle refused: {path}")
        command = spec.command
        if command.script is not None and args:
            command = Command(argv=("/bin/sh", "-c", command.script, action, *args))
        elif command.argv:
            command = Command(argv=(*command.argv, *args))
        future: asyncio.Future[Outcome] = self._loop.create_future()
        extra = {"CORRAL_CALL_CHAIN": ",".join([*chain, here]), "CORRAL_ACTION": action}
        try:
            oneoff = self.run(rt, command, extra, spec.timeout, future.set_result)
        except SpawnError as exc:
            raise OperationFailed(f"{here}: could not start: {exc}") from None
        try:
            outcome = await future
        finally:
            if not future.done():
                oneoff.cancel()
        self._journal.say(rt, f"action {action}: " + _describe(outcome, spec.timeout))
        return outcome


def _describe(outcome: Outcome, timeout: float) -> str:
    if outcome.timed_out:
        return f"timed out after {timeout:g}s"
    if outcome.signal is not None:
        return f"killed by {signal_name(outcome.signal)}"
    return f"exited with status {outcome.status}"
