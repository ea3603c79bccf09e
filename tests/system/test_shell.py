"""``corral shell``: commands typed in, replies and events printed, against a real daemon, both
through a pipe (the seed's stdin mode) and through a real terminal (readline, TAB, events
arriving while a line is typed)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.system.conftest import CORRAL, Corral
from tests.system.terminal import Terminal

CONFIG = """
[service.web]
exec = ["sleep", "600"]

[service.db]
exec = ["sleep", "600"]
autostart = false
"""


@pytest.fixture
def daemon(corral: Corral) -> Corral:
    corral.write(CONFIG)
    corral.up()
    corral.wait_state("web", "running")
    return corral


class Piped:
    """``corral shell`` with its stdin and stdout on pipes; stdout read with deadlines."""

    def __init__(self, corral: Corral) -> None:
        self.process = subprocess.Popen(
            [*CORRAL, "shell"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=corral.env(), cwd=corral.root,
        )  # fmt: skip
        self.seen = b""

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.seen.decode(errors="replace"))):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.seen.decode(errors='replace')!r}"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, f"the shell ended before {pattern!r}: {self.seen!r}"
                self.seen += chunk
        return found

    def end(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=20)


def test_through_a_pipe_each_line_is_a_command_and_events_are_printed(daemon: Corral) -> None:
    shell = Piped(daemon)
    try:
        shell.send("start db")
        pid = int(shell.expect(r"db: running \(pid (\d+)\)")[1])
        shell.expect(r"event \d\d:\d\d:\d\d\.\d{3} started JOB=db INSTANCE=")
        shell.send("status db --json")
        shell.expect(rf'"name": ?"db", ?"instance": ?"", ?"goal": ?"start", ?"state": ?"running", ?'
                     rf'"pid": ?{pid}')  # fmt: skip
        shell.send("help")
        shell.expect(r"  start +start services; wait until they are ready\n(.*\n)*  exit ")
        shell.send("corral stop web")  # the word corral, typed out of habit, is let through
        shell.expect("web: stopped")
        shell.send("# a comment, then an empty line, then a refused command")
        shell.send("")
        shell.send("up")
        shell.expect("corral: up: run `corral up` in another terminal")
        shell.send("stop nosuch")
        shell.expect("corral: .*nosuch")
    finally:
        code = shell.end()
    assert code == 3, "the shell exits with the last command's status, as sh does"
    assert daemon.one("db")["state"] == "running", "EOF left the daemon and db running"


def test_exit_leaves_the_shell_with_the_daemon_running(daemon: Corral) -> None:
    shell = Piped(daemon)
    shell.send("stop web")
    shell.expect("web: stopped")
    shell.send("exit")
    shell.send("start web")  # never read
    assert shell.process.wait(timeout=20) == 0
    assert daemon.one("web")["state"] == "waiting"


def test_without_a_daemon_the_shell_says_so_at_once(tmp_path: Path) -> None:
    run = subprocess.run([*CORRAL, "--socket", str(tmp_path / "none.sock"), "shell"],
                         input="status\n", capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 4 and "cannot reach corral" in run.stderr


def test_in_a_terminal_tab_completes_and_events_arrive_above_the_typed_line(
    daemon: Corral, tmp_path: Path
) -> None:
    env = {**daemon.env(), "TERM": "xterm", "XDG_STATE_HOME": str(tmp_path / "state")}
    term = Terminal([*CORRAL, "shell"], env, str(daemon.root))
    try:
        term.expect("corral> ")
        term.type("sta\t")  # start and status: readline lists both on a second TAB
        term.type("\t")
        term.expect(re.compile(r"start\s+status"))
        term.type("rt d\t")
        term.expect("start db ")
        term.type("\n")
        term.expect(re.compile(r"db: running \(pid \d+\)"))
        term.expect("corral> ")
        term.type("sto")  # half a line typed when an event comes
        daemon.ok("emit", "hello-there", "WHO=test")
        term.expect(re.compile(r"event [\d:.]+ hello-there WHO=test\ncorral> sto"))
        term.type("p db\n")
        term.expect("db: stopped")
        term.expect("corral> ")
        term.type("\x04")  # ^D
        assert term.wait() == 0
    finally:
        term.close()
    history = (tmp_path / "state" / "corral" / "shell_history").read_text()
    assert "start db" in history and "stop db" in history
    assert daemon.one("web")["state"] == "running"
