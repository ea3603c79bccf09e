"""What services print and what corral says about them, into each service's log and onto the
foreground console (``corral up``): one place, so every line is stamped and routed alike."""

from __future__ import annotations

import time

from corral.daemon.logs import Console, LogLine
from corral.daemon.runtime import Job, Runtime, label
from corral.daemon.table import InstanceTable


class Journal:
    def __init__(self, table: InstanceTable, console: Console | None) -> None:
        self._table = table
        self._console = console

    def output(self, rt: Runtime, process: str, texts: list[str]) -> None:
        """Lines a process printed."""
        self._record(rt.inst.job, rt.inst.key, process, texts, label(rt), texts)

    def say(self, rt: Runtime, text: str) -> None:
        """corral's own word about an instance, logged beside its output."""
        self._record(rt.inst.job, rt.inst.key, "corral", [text], "corral", [f"{label(rt)}: {text}"])

    def say_job(self, job: Job, text: str) -> None:
        """corral's own word about a service as a whole (an event it could not act on)."""
        name = job.definition.name
        self._record(name, "", "corral", [text], "corral", [f"{name}: {text}"])

    def say_corral(self, text: str) -> None:
        """corral's word about itself: on the console only."""
        if self._console is not None:
            self._console.lines("corral", [text], time.time())

    def _record(
        self, name: str, key: str, process: str, texts: list[str], console: str, shown: list[str]
    ) -> None:
        now = time.time()
        job = self._table.jobs.get(name)
        if job is not None and job.log is not None:
            job.log.add([LogLine(now, name, key, process, t) for t in texts])
        if self._console is not None:
            self._console.lines(console, shown, now)
