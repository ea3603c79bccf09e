"""The Textual application behind ``corral tui`` (imported only when that command runs).

Nothing here polls: the table is read again (``status``) when the daemon reports an event,
several events in a row making one read; the log pane follows the selected service's
output as the daemon streams it. Start, stop and restart run as workers, so a start that
waits for readiness never freezes the screen; how each ended is a notification.
"""

from __future__ import annotations

import os
import time

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Log

from corral.control.aio import AsyncClient
from corral.control.api import socket_path
from corral.control.client import Connection
from corral.control.records import LogLine, Status
from corral.errors import EXIT_OK, CorralError

COLUMNS = ("service", "goal", "state", "pid", "ready", "restarts", "since", "info")
#: How each state is coloured; the rest (transient states) yellow.
STATE_STYLES = {"running": "green", "waiting": "dim", "failed": "bold red"}
LOG_LINES = 200


def run_tui(socket: str | None, selected: str | None) -> int:
    """Check the daemon answers (before the screen is taken over), then run the app."""
    path = socket_path(socket)
    with Connection(path) as connection:
        connection.request("hello")
    return CorralApp(path, selected).run() or EXIT_OK


class CorralApp(App[int]):
    """The service table above, the selected service's logs below."""

    TITLE = "corral"
    CSS = """
    DataTable { height: 1fr; }
    Log { height: 1fr; border-top: solid $accent; }
    """
    BINDINGS = [
        Binding("s", "start", "start"),
        Binding("x", "stop", "stop"),
        Binding("r", "restart", "restart"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, socket: str, selected: str | None = None) -> None:
        super().__init__()
        self.client = AsyncClient(socket)
        self._first = selected  # the row to select once the table is there
        self.following: str | None = None  # the address whose logs are shown
        self.rows: dict[str, Status] = {}
        self._reading = False  # a status read is under way
        self._read_again = False  # an event came meanwhile: read once more after it

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
        yield Log(id="logs", max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.sub_title = _shown_path(self.client.socket)
        self.follow_events()

    # -- the table -----------------------------------------------------------------------

    @work(group="events")
    async def follow_events(self) -> None:
        """Read the table once subscribed (so no change is missed), then after each event."""
        try:
            async with self.client.events() as events:
                self.read_status()
                async for _event in events:
                    self.read_status()
        except CorralError as exc:
            self.notify(str(exc), severity="error", timeout=30)
        self.sub_title = f"{_shown_path(self.client.socket)}: the daemon has exited"

    def read_status(self) -> None:
        if self._reading:
            self._read_again = True
            return
        self._reading = True
        self._read_status()

    @work(group="status")
    async def _read_status(self) -> None:
        try:
            while True:
                self._read_again = False
                self.show(await self.client.status())
                if not self._read_again:
                    return
        except CorralError as exc:
            self.notify(str(exc), severity="error")
        finally:
            self._reading = False

    @property
    def selected(self) -> str | None:
        """The address of the row under the cursor: what the keys act on (read from the
        table itself, as keys may come faster than the table's messages about its cursor)."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return self._first
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def show(self, rows: list[Status]) -> None:
        """Bring the table to ``rows``, keeping the selected row selected."""
        table = self.query_one(DataTable)
        keep = self.selected
        fresh = {row.address: row for row in rows}
        if list(fresh) == list(self.rows):
            for address, row in fresh.items():
                if row != self.rows[address]:
                    for column, value in zip(COLUMNS, _cells(row), strict=True):
                        table.update_cell(address, column, value)
        else:
            table.clear()
            for address, row in fresh.items():
                table.add_row(*_cells(row), key=address)
        self.rows = fresh
        if not fresh:
            return
        at = list(fresh).index(keep) if keep in fresh else min(table.cursor_row, len(fresh) - 1)
        table.move_cursor(row=at)
        self.follow(list(fresh)[at])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.follow(event.row_key.value)

    def follow(self, address: str) -> None:
        """Show this address's logs, unless they are shown already."""
        if address != self.following:
            self.following = address
            self.follow_logs(address)

    # -- the logs ------------------------------------------------------------------------

    @work(group="logs", exclusive=True)
    async def follow_logs(self, address: str) -> None:
        """The selected service's last lines, then each new one (a new selection ends it)."""
        log = self.query_one(Log)
        log.clear()
        log.border_title = f"logs: {address}"
        try:
            async with self.client.follow_logs(address, lines=LOG_LINES) as lines:
                async for line in lines:
                    log.write_line(_log_text(line))
        except CorralError as exc:
            log.write_line(f"corral: {exc}")

    # -- the keys ------------------------------------------------------------------------

    def action_start(self) -> None:
        self._change("start")

    def action_stop(self) -> None:
        self._change("stop")

    def action_restart(self) -> None:
        self._change("restart")

    def _change(self, verb: str) -> None:
        if self.rows and self.selected is not None:
            self.change(verb, self.selected)

    @work(group="goals")
    async def change(self, verb: str, address: str) -> None:
        """Run a start, stop or restart to its end; say how it ended."""
        call = {"start": self.client.start, "stop": self.client.stop,
                "restart": self.client.restart}[verb]  # fmt: skip
        self.notify(f"{verb} {address}...", timeout=3)
        try:
            outcomes = await call(address)
        except CorralError as exc:
            self.notify(str(exc), title=f"{verb} {address}", severity="error", timeout=15)
            return
        said = ", ".join(f"{o.name}: {'done' if o.done else o.state}" for o in outcomes)
        self.notify(said or f"{address}: nothing to {verb}", timeout=5)


def _cells(row: Status) -> tuple[Text, ...]:
    """A row's cells, as Text: a string cell would be read as markup (``[beta] web``)."""
    word = "done" if row.done else row.state
    since = time.strftime("%H:%M:%S", time.localtime(row.since))
    info = row.error or row.status_text or row.description  # as the CLI's table: why first
    cells = (row.address, row.goal, word, "-" if row.pid is None else str(row.pid),
             "yes" if row.ready else "-", str(row.restarts), since, info)  # fmt: skip
    texts = tuple(Text(cell, end="", no_wrap=True) for cell in cells)
    texts[2].stylize(STATE_STYLES.get(row.state, "yellow"))
    return texts


def _log_text(line: LogLine) -> str:
    """``12:00:01 web | text`` (``web [pre-start] |`` for a hook), as ``corral logs``."""
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time))
    where = line.service + (f":{line.instance}" if line.instance else "")
    process = "" if line.process == "main" else f" [{line.process}]"
    return f"{stamp} {where}{process} | {line.text}"


def _shown_path(socket: str) -> str:
    """The socket as the header shows it: relative to here when it is below here."""
    relative = os.path.relpath(socket)
    return socket if relative.startswith("..") else relative
