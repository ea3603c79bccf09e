"""The status table ``corral status`` prints. Made by the daemon (the quick CLI only writes
it out, which keeps a status of a thousand services fast) and importable by the CLI: it lives
here, below both, so the daemon never imports the CLI. Plain ANSI colour, no imports that cost.
"""

from __future__ import annotations

import operator
import time

TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy still reads the hints
if TYPE_CHECKING:
    from collections.abc import Sequence

    from corral.control.protocol import StatusRow

STATE_COLOURS = {"running": "32", "done": "32", "failed": "31", "waiting": "90"}


def age(since: float | None, now: float) -> str:
    if since is None:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


HEADER = ("NAME", "GOAL", "STATE", "PID", "READY", "RESTARTS", "SINCE", "INFO")


def status_table(rows: Sequence[StatusRow], colour: bool) -> str:
    """The table ``corral status`` prints."""
    return StatusTable().render(rows, colour)


class StatusTable:
    """The status table, made by the daemon, which keeps one of these: everything but the
    SINCE column is kept while the rows are the same objects (the supervisor hands out the
    same row while nothing in it changed), so a status of a thousand idle services only
    redoes the ages, and nothing more while no age shown has changed. Columns are built a
    column at a time (one comprehension and one ``ljust`` pass each), twice as fast as
    formatting row by row."""

    __slots__ = ("_colour", "_firsts", "_fixed", "_infos", "_rows", "_seconds", "_sinces", "_text")

    def __init__(self) -> None:
        self._rows: Sequence[StatusRow] = ()
        self._colour = False
        # The header's and each row's NAME to RESTARTS, padded and joined; each row's INFO.
        self._fixed, self._infos = _fixed_columns((), colour=False)
        # Each row's since by the second, and one since per distinct second.
        self._seconds: list[int] = []
        self._firsts: dict[int, float] = {}
        # The last table and its SINCE cells by second: a script that asks again within the
        # second (or, for older services, the minute) gets the same text back.
        self._sinces: dict[int, str] = {}
        self._text: str | None = None

    def render(self, rows: Sequence[StatusRow], colour: bool) -> str:
        """The table of ``rows``; the very list of last time (the supervisor keeps it while
        nothing shown changed) costs only its ages, once per distinct second."""
        if rows is not self._rows or colour is not self._colour:
            if not (
                colour is self._colour
                and len(rows) == len(self._rows)
                and all(map(operator.is_, rows, self._rows))
            ):
                self._fixed, self._infos = _fixed_columns(rows, colour)
                self._colour, self._text = colour, None
            self._rows = rows
            sinces = [row.since for row in rows]
            self._seconds = list(map(int, sinces))
            self._firsts = dict(zip(self._seconds, sinces, strict=True))
        seconds = self._seconds
        now = time.time()
        ages = {second: age(since, now) for second, since in self._firsts.items()}
        width = max(5, *map(len, ages.values())) if ages else 5
        padded = {second: shown.ljust(width) + "  " for second, shown in ages.items()}
        if self._text is not None and padded == self._sinces:
            return self._text
        header = self._fixed[0] + "SINCE".ljust(width) + "  INFO"
        if colour:
            header = "\x1b[1m" + header + "\x1b[0m"
        shown = map(padded.__getitem__, seconds)
        lines = map(
            str.rstrip, map(str.__add__, map(str.__add__, self._fixed[1:], shown), self._infos)
        )
        self._sinces, self._text = padded, "\n".join((header, *lines))
        return self._text


def _fixed_columns(rows: Sequence[StatusRow], colour: bool) -> tuple[list[str], list[str]]:
    """The header's and each row's NAME to RESTARTS cells, padded and joined (each ends in
    the gap before SINCE), and each row's INFO."""
    columns = [
        [row.name + ":" + row.instance if row.instance else row.name for row in rows],
        [row.goal for row in rows],
        ["done" if row.done else row.state for row in rows],
        ["-" if row.pid is None else str(row.pid) for row in rows],
        ["yes" if row.ready else "no" for row in rows],
        [str(row.restarts) for row in rows],
    ]
    infos = [
        _info(row) if row.error or row.stale or row.status_text or row.state in _EXPLAINED
        else ""
        for row in rows
    ]  # fmt: skip
    widths = [
        max(len(title), max(map(len, cells), default=0))
        for title, cells in zip(HEADER, columns, strict=False)
    ]
    if colour:  # the state padded, then coloured: the escapes must not count in its width
        columns[2] = [_coloured(state, state.ljust(widths[2])) for state in columns[2]]
    padded = [
        [cell.ljust(width) + "  " for cell in cells]
        for cells, width in zip(columns, widths, strict=True)
    ]
    header = "".join(
        title.ljust(width) + "  " for title, width in zip(HEADER, widths, strict=False)
    )
    return [header, *map("".join, zip(*padded, strict=True))], infos


def _info(row: StatusRow) -> str:
    """The INFO cell: a stale definition, why the instance is where it is, and what the
    service says of itself (a notify service's ``STATUS=``). An old exit is shown only where
    it explains the state: ``failed``, or on the way down to come back (a respawn, a
    restart); a healthy service stopped once by a signal is not shown as if it had failed."""
    parts = ["stale definition"] if row.stale else []
    why = row.error or (_last_exit(row) if _exit_explains(row) else "")
    if why:
        parts.append(why)
    if row.status_text:
        parts.append(row.status_text)
    return "; ".join(parts)


#: States of the stop walk: with goal ``start`` the instance is coming back (respawn, restart).
_DOWN_WALK = frozenset({"pre-stop", "stopping", "killed", "post-stop"})
#: States whose row may show an old exit (the rest show none: a quick test per row).
_EXPLAINED = _DOWN_WALK | {"failed"}


def _exit_explains(row: StatusRow) -> bool:
    return row.state == "failed" or (row.goal == "start" and row.state in _DOWN_WALK)


def _last_exit(row: StatusRow) -> str:
    if row.exit_signal:
        return f"last exit: signal {row.exit_signal}"
    if row.exit_status is not None:
        return f"last exit: {row.exit_status}"
    return ""


def _coloured(state: str, padded: str) -> str:
    code = STATE_COLOURS.get(state)
    return padded if code is None else f"\x1b[{code}m{padded}\x1b[0m"
