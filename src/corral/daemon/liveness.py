"""A service's ``liveness`` probe: one attempt every ``interval`` while its main process
lives, each answer reported for the machine to count (``Liveness`` inputs; ``failures`` in
a row abort the main process, see ``core/machine.py``).

One timer per probing service, armed for its next attempt and for nothing else; an attempt
made while the instance is not running (still starting, or stopping) is skipped. A tcp or
http attempt runs on the loop (``checks.py``), an exec one as a child process, each cut off
after its interval or PROBE_ATTEMPT_TIMEOUT, whichever is shorter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corral.core.definition import PROBE_ATTEMPT_TIMEOUT, LivenessCheck
from corral.daemon.checks import http_check, tcp_check
from corral.daemon.readiness import ExecRunner

#: Told each attempt's answer: (passed, why not).
Report = Callable[[bool, str], None]


class LivenessProbe:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        check: LivenessCheck,
        run_exec: ExecRunner,
        report: Report,
        due: Callable[[], bool],
    ) -> None:
        self._loop = loop
        self._probe = check.probe
        self._run_exec = run_exec
        self._report = report
        self._due = due  # whether an attempt now would count (the instance runs)
        self._budget = min(PROBE_ATTEMPT_TIMEOUT, self._probe.interval)
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._cancel_exec: Callable[[], None] | None = None
        self._cancelled = False
        self._next()

    def _next(self) -> None:
        self._timer = self._loop.call_later(self._probe.interval, self._attempt)

    def _attempt(self) -> None:
        self._timer = None
        if not self._due():
            self._next()
        elif self._probe.kind == "exec":
            assert self._probe.command is not None
            self._cancel_exec = self._run_exec(self._probe.command, self._budget, self._answer)
        else:
            check = tcp_check if self._probe.kind == "tcp" else http_check
            self._task = self._loop.create_task(self._timed(check(self._probe.target)))

    async def _timed(self, check: object) -> None:
        try:
            await asyncio.wait_for(check, self._budget)  # type: ignore[arg-type]
        except TimeoutError:
            self._answer(False, f"no answer within {self._budget:g}s")
        except (OSError, ValueError) as exc:
            self._answer(False, str(exc) or type(exc).__name__)
        else:
            self._answer(True, "")

    def _answer(self, ok: bool, detail: str) -> None:
        self._task = None
        self._cancel_exec = None
        if self._cancelled:
            return
        self._report(ok, f"{self._probe.kind}: {detail}" if detail else "")
        if self._timer is None:
            self._next()

    def cancel(self) -> None:
        self._cancelled = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._cancel_exec is not None:
            self._cancel_exec()
            self._cancel_exec = None
