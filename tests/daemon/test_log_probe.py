"""A log probe on a real loop: its lines are matched by RE2 in the matcher thread, so handing
them over returns at once and the loop keeps its pace however slow the pattern is; a matching
line passes, a pattern RE2 refuses fails at once, and lines past the backlog are said."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from corral.core.definition import Command, Probe
from corral.daemon.logmatch import LOG_BACKLOG
from corral.daemon.readiness import ProbeRunner

#: Its DFA does not fit RE2's cache, so RE2 runs it at ~30 ms per 16 KiB line of a and b here
#: (and Python's backtracking ``re`` at seconds a line).
SLOW = "[ab]*a[ab]{200}c"
LINE = 16000


def _no_exec(command: Command, timeout: float, done: Callable[[bool, str], None]) -> None:
    raise AssertionError("a log probe runs no command")


def _noise(count: int) -> list[str]:
    """Lines of a and b that ``SLOW`` never matches (no c)."""
    rng = random.Random(7)
    return ["".join(rng.choice("ab") for _ in range(LINE)) for _ in range(count)]


class Watched:
    """A ProbeRunner on the running loop, with its outcome as a future."""

    def __init__(self, pattern: str, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self.outcome: asyncio.Future[str] = loop.create_future()
        self.runner = ProbeRunner(
            loop,
            Probe("log", target=pattern, timeout=timeout),
            _no_exec,  # type: ignore[arg-type]
            passed=lambda: self.outcome.set_result("passed"),
            gave_up=self.outcome.set_result,
        )


async def _largest_gap(until: asyncio.Future[str], tick: float = 0.01) -> float:
    """The longest the loop took to come back to a ``tick`` sleep, until ``until`` is done."""
    largest = 0.0
    while not until.done():
        began = time.monotonic()
        await asyncio.sleep(tick)
        largest = max(largest, time.monotonic() - began - tick)
    return largest


def test_lines_are_handed_over_at_once_and_matched_off_the_loop() -> None:
    async def scenario() -> tuple[float, float, str]:
        watched = Watched(SLOW, timeout=60)
        lines = [*_noise(32), "x" * 100 + "a" + "b" * 200 + "c"]
        handover = 0.0
        for at in range(0, len(lines), 4):  # as a pipe read hands them: 64 KiB at most
            began = time.monotonic()
            watched.runner.lines(lines[at : at + 4])
            handover = max(handover, time.monotonic() - began)
        gap = await _largest_gap(watched.outcome)
        return handover, gap, await asyncio.wait_for(watched.outcome, 60)

    handover, gap, outcome = asyncio.run(scenario())
    assert outcome == "passed"
    assert handover < 0.05, f"lines() took {handover:.3f}s: it matched on the loop"
    assert gap < 0.25, f"the loop stalled {gap:.3f}s while the lines were matched"


def test_a_pattern_re2_refuses_fails_the_probe_at_once_saying_why() -> None:
    async def scenario() -> str:
        watched = Watched(r"(a)\1", timeout=30)  # a backreference: no RE2
        return await asyncio.wait_for(watched.outcome, 5)

    began = time.monotonic()
    outcome = asyncio.run(scenario())
    assert outcome.startswith(
        "ready.log: not a valid RE2 pattern (no backreferences or lookaround): "
    )
    assert time.monotonic() - began < 5


def test_lines_past_the_backlog_are_not_checked_and_the_give_up_says_so() -> None:
    async def scenario() -> str:
        watched = Watched(SLOW, timeout=1)
        noise = _noise(8)
        count = 0
        while count * LINE <= LOG_BACKLOG + 8 * LINE:  # more than the matcher can take in
            watched.runner.lines(noise)
            count += len(noise)
        watched.runner.lines(["a" + "b" * 200 + "c"])  # would pass, but it is past the backlog
        return await asyncio.wait_for(watched.outcome, 10)

    outcome = asyncio.run(scenario())
    assert outcome.startswith(
        f"ready probe (log) did not pass within 1s: no output line matched {SLOW!r}"
    )
    assert "lines were not checked: they came faster than they could be matched" in outcome
