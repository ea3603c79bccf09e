"""``corral status``: one row per instance, kept while nothing it shows has changed.

Scripts run ``corral status`` in loops, and a daemon woken from idle pays for every object it
touches. So a row is kept per instance until the instance's record, its main process, its
status text or its definition is another object (records are immutable: identity says it),
and the whole list of rows is kept while the table's ``version`` stands (every change a row
could show bumps it). A full status of a thousand idle services then touches no instance:
1.7 ms from a daemon woken from idle rather than 2.5. ``CORRAL_CHECK_STATUS=1`` (the tests
set it) checks every kept list against a fresh one, so a change that forgot to bump the
version fails at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping

from msgspec import structs

from corral.control.protocol import StatusRow
from corral.core.records import Instance, signal_name
from corral.core.states import ProcessKind, ServiceType, State
from corral.daemon.runtime import Job, Runtime, Target
from corral.daemon.table import InstanceTable
from corral.errors import OperationFailed

CHECK_KEPT_STATUS = os.environ.get("CORRAL_CHECK_STATUS") == "1"
_MAIN = ProcessKind.MAIN


class StatusView:
    def __init__(self, table: InstanceTable, clock: Callable[[], float]) -> None:
        self._table = table
        self._clock = clock
        self._offset = time.time() - clock()  # see _wall_offset
        self._kept: tuple[int, float, list[StatusRow]] | None = None

    def status(self, targets: Iterable[Target] = ()) -> list[StatusRow]:
        """Rows for each target (a bare name of an instantiated service: every instance),
        or for every service; a service with no instance shows one row at rest."""
        offset = self._wall_offset()
        targets = list(targets)
        if not targets:  # every service: no duplicates to weed out
            kept = self._kept
            if kept is not None and kept[0] == self._table.version and kept[1] == offset:
                if CHECK_KEPT_STATUS:
                    self._check_kept(kept[2], offset)
                return kept[2]
            rows = self._all_rows(offset)
            self._kept = (self._table.version, offset, rows)
            return rows
        table = self._table
        chosen: dict[Runtime, None] = {}
        for target in targets:
            job = table.job(target.name)
            if target.instance is None and not target.env:  # a bare name: every instance
                chosen.update(dict.fromkeys(_rows_of(job)))
                continue
            key, _ = table.address(job, target, create=False)
            if key in job.instances:
                chosen[job.instances[key]] = None
        jobs = table.jobs
        return [
            _status_row(rt, offset, stale=rt.definition is not jobs[rt.inst.job].definition)
            for rt in chosen
        ]

    def _all_rows(self, offset: float) -> list[StatusRow]:
        return [
            _status_row(rt, offset, rt.definition is not job.definition)
            for job in self._table.jobs.values()
            for rt in _rows_of(job)
        ]

    def _check_kept(self, kept: list[StatusRow], offset: float) -> None:
        """A kept status must be what a fresh one shows, or a change was made without
        bumping the table's version."""
        fresh = self._all_rows(offset)
        if fresh != kept:
            wrong = [str(new) for old, new in zip(kept, fresh, strict=False) if old != new]
            raise OperationFailed(f"kept status out of date: {wrong or 'other rows'}")

    def _wall_offset(self) -> float:
        """The wall clock less the loop's, for ``since``; the same value while it stays within
        a millisecond (two readings never quite agree), so kept rows stay valid until the
        wall clock is set."""
        offset = time.time() - self._clock()
        if abs(offset - self._offset) > 0.001:
            self._offset = offset
        return self._offset


class TimerRuns:
    """``last_run`` and ``next_run`` of the timer jobs, laid over the status rows.

    The timers bridge knows its schedule and reports it (the ``schedule`` request) after
    each firing and each change; ``corral trigger`` runs a job too. The rows of the other
    services pass unchanged, and a kept list of rows gives the same list back while no
    report came, so the kept status stays kept."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[float | None, float | None]] = {}
        self._laid: tuple[list[StatusRow], list[StatusRow]] | None = None

    def report(self, timers: Mapping[str, Mapping[str, float | None]]) -> None:
        """The bridge's whole schedule: each timer's last and next firing."""
        ran = {name: last for name, (last, _) in self._runs.items()}
        self._runs = {
            name: (_later(runs.get("last_run"), ran.get(name)), runs.get("next_run"))
            for name, runs in timers.items()
        }
        self._laid = None

    def ran(self, name: str, when: float) -> None:
        """``corral trigger`` ran ``name``'s job at ``when``."""
        _, next_run = self._runs.get(name, (None, None))
        self._runs[name] = (when, next_run)
        self._laid = None

    def lay_over(self, rows: list[StatusRow]) -> list[StatusRow]:
        """The rows, with ``last_run``/``next_run`` on those of timer jobs."""
        runs = self._runs
        if not runs:
            return rows
        laid = self._laid
        if laid is not None and laid[0] is rows:
            return laid[1]
        over = [
            structs.replace(row, last_run=runs[row.name][0], next_run=runs[row.name][1])
            if row.name in runs
            else row
            for row in rows
        ]
        self._laid = (rows, over)
        return over


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _rows_of(job: Job) -> Iterable[Runtime]:
    """Every instance of a service, or, for an instantiated one with none now, a
    placeholder at rest for its row."""
    if job.instances:
        return job.instances.values()
    return [Runtime(job.definition, Instance(job=job.definition.name, since=job.since))]


def _status_row(rt: Runtime, offset: float, stale: bool) -> StatusRow:
    """One row, or the same row as last time when nothing it shows has changed: the record
    is immutable, so identity says so. A status of a thousand idle services then reads five
    fields each instead of building rows (``_value_`` and a plain ``children`` lookup, not the
    enum's ``value`` property and ``main_pid``, for the same reason)."""
    inst = rt.inst
    main = rt.children.get(_MAIN)
    memo = rt.row_memo
    if (
        memo is not None
        and memo[0] is inst
        and memo[1] is main
        and memo[2] is rt.status_text
        and memo[3] is rt.definition
        and memo[4] is stale
        and memo[5] == offset
    ):
        return memo[6]  # type: ignore[return-value]  # the row, as stored below
    row = StatusRow(
        inst.job,
        inst.key,
        inst.goal._value_,
        inst.state._value_,
        None if main is None else main.pid,
        inst.ready and inst.state is State.RUNNING,
        inst.restarts,
        inst.exit_status,
        None if inst.exit_signal is None else signal_name(inst.exit_signal),
        int((inst.since + offset) * 1000) / 1000,  # ms, as round() but a tenth of its cost
        stale,
        rt.definition.description,
        inst.error or None,
        rt.status_text or None,
        main is None and inst.state is State.RUNNING and rt.definition.type is ServiceType.ONESHOT,
    )
    rt.row_memo = (inst, main, rt.status_text, rt.definition, stale, offset, row)
    return row
