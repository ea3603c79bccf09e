"""``corral tui`` against a real daemon: headless through Textual's pilot (the table follows the
daemon, the keys start and stop, the log pane shows the selected service's output), in a real
terminal, and without Textual installed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing
from tests.system.conftest import CORRAL, Corral, wait_until
from tests.system.terminal import Terminal

CONFIG = """
[service.web]
script = "echo web is serving; exec sleep 600"
description = "the web server"

[service.db]
script = "echo db is up; exec sleep 600"
autostart = false
"""


def needs_textual() -> None:
    try:
        import textual  # noqa: F401
    except ImportError:
        missing("textual (the extra corral[tui])")


@pytest.fixture
def daemon(corral: Corral) -> Corral:
    needs_textual()
    corral.write(CONFIG)
    corral.up()
    corral.wait_state("web", "running")
    return corral


async def until(pilot: Any, predicate: Callable[[], Any], what: str, timeout: float = 20) -> None:
    """Let the app run until ``predicate`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def test_the_table_follows_the_daemon_and_the_keys_start_and_stop(daemon: Corral) -> None:
    from textual.widgets import DataTable, Log

    from corral.cli.tui_app import CorralApp

    async def scenario() -> None:
        app = CorralApp(daemon.socket)
        async with app.run_test(size=(120, 30)) as pilot:
            table = app.query_one(DataTable)
            log = app.query_one(Log)
            await until(pilot, lambda: table.row_count == 2, "both services in the table")
            assert str(table.get_cell("web", "state")) == "running"
            assert str(table.get_cell("db", "state")) == "waiting"
            await until(pilot, lambda: any("web is serving" in ln for ln in log.lines),
                        "web's output, selected first")  # fmt: skip

            await pilot.press("down", "s")  # a key right after a move acts on the new row
            await until(pilot, lambda: str(table.get_cell("db", "state")) == "running",
                        "db running in the table")  # fmt: skip
            assert daemon.one("db")["state"] == "running"
            assert str(table.get_cell("db", "pid")) == str(daemon.one("db")["pid"])
            await until(pilot, lambda: any("db is up" in ln for ln in log.lines), "db's output")

            await asyncio.to_thread(daemon.ok, "stop", "db")  # from outside: the table follows
            await until(pilot, lambda: str(table.get_cell("db", "state")) == "waiting",
                        "db stopped in the table")  # fmt: skip

            await pilot.press("up", "x")
            await until(pilot, lambda: str(table.get_cell("web", "state")) == "waiting",
                        "web stopped by its key")  # fmt: skip
            assert daemon.one("web")["state"] == "waiting"
            await pilot.press("r")
            await until(pilot, lambda: str(table.get_cell("web", "state")) == "running",
                        "web restarted by its key")  # fmt: skip
            await pilot.press("q")
        assert app.return_code in (0, None)

    asyncio.run(scenario())


def test_in_a_real_terminal_it_draws_the_table_and_a_key_acts_on_the_row_just_reached(
    daemon: Corral,
) -> None:
    env = {**daemon.env(), "TERM": "xterm-256color"}
    term = Terminal([*CORRAL, "tui"], env, str(daemon.root))
    try:
        term.expect("the web server")
        term.expect("web is serving")  # web's logs: the first row is selected
        term.type("\x1b[Bs")  # down and s at once, faster than the table's own messages
        wait_until(lambda: daemon.one("db")["state"] == "running", 20, "db started by its key")
        term.type("q")
        assert term.wait() == 0
    finally:
        term.close()


def test_without_textual_it_says_what_to_install(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['textual'] = None; sys.argv[1:] = ['tui']; import runpy; "
    run = subprocess.run([sys.executable, "-c", hide + "runpy.run_module('corral')"],
                         env={**os.environ, "CORRAL_SOCKET": str(tmp_path / "none.sock")},
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 1
    assert "pip install 'corral[tui]'" in run.stderr


def test_without_a_daemon_it_says_so_before_drawing(tmp_path: Path) -> None:
    needs_textual()
    run = subprocess.run([*CORRAL, "--socket", str(tmp_path / "none.sock"), "tui"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 4 and "cannot reach corral" in run.stderr
