"""The text table of ``corral status``, made by the daemon for the quick path and the full
CLI alike."""

from __future__ import annotations

from tests.system.conftest import Corral, wait_until

CONFIG = """
[service.web]
exec = ["sleep", "60"]

[service.broken]
exec = ["sh", "-c", "exit 3"]
restart = "no"

[service.idle]
exec = ["sleep", "60"]
autostart = false

[service.tty]
exec = ["sleep", "60"]
instance = "${TTY}"
autostart = false
"""


def _rows(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in text.splitlines()[1:]}


def test_the_table_has_a_row_per_instance_with_its_columns(corral: Corral) -> None:
    corral.write(CONFIG)
    corral.up()
    pid = corral.wait_state("web", "running")["pid"]
    corral.ok("start", "tty", "TTY=tty1")
    wait_until(lambda: corral.one("broken")["state"] in ("waiting", "failed"), 10, "broken")
    text = corral.ok("status")
    lines = text.splitlines()
    assert lines[0].split() == [
        "NAME", "GOAL", "STATE", "PID", "READY", "RESTARTS", "SINCE", "INFO",
    ]  # fmt: skip
    rows = _rows(text)
    assert rows["web"][:6] == ["web", "start", "running", str(pid), "yes", "0"]
    assert rows["web"][6].endswith("s")
    assert rows["idle"][:5] == ["idle", "stop", "waiting", "-", "no"]
    assert rows["tty:tty1"][:3] == ["tty:tty1", "start", "running"]
    broken = next(line for line in lines if line.startswith("broken"))
    assert "exited with status 3" in broken or "last exit: 3" in broken
    assert all(line == line.rstrip() for line in lines)
    # the columns line up: every row's GOAL starts where the header's does
    column = lines[0].index("GOAL")
    assert all(line[column - 2 : column] == "  " for line in lines)


def test_the_full_cli_prints_the_same_table(corral: Corral) -> None:
    corral.write(CONFIG)
    corral.up()
    corral.wait_state("web", "running")
    corral.ok("start", "tty", "TTY=tty1")
    quick = corral.ok("status", "tty")
    full = corral.ok("status", "tty", "TTY=tty1")  # a KEY=VALUE address takes the full parser
    assert _rows(quick)["tty:tty1"][:5] == _rows(full)["tty:tty1"][:5]
    assert quick.splitlines()[0] == full.splitlines()[0]


def test_a_kept_table_shows_every_change(corral: Corral) -> None:
    """The daemon keeps rows and table parts while nothing changes; a kill, a restart
    and a stop must each show in the next full status."""
    corral.write(CONFIG)
    corral.up()
    first = corral.wait_state("web", "running")["pid"]
    assert _rows(corral.ok("status"))["web"][3] == str(first)
    assert _rows(corral.ok("status"))["web"][3] == str(first)  # kept, still true
    corral.ok("restart", "web")
    second = corral.wait_state("web", "running")["pid"]
    assert second != first
    assert _rows(corral.ok("status"))["web"][3] == str(second)
    corral.ok("stop", "web")
    assert _rows(corral.ok("status"))["web"][:4] == ["web", "stop", "waiting", "-"]
    corral.ok("start", "idle")
    assert _rows(corral.ok("status"))["idle"][:3] == ["idle", "start", "running"]


def test_a_healthy_service_does_not_show_its_old_exit_and_a_notify_status_is_shown(
    corral: Corral,
) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "60"]
        start_grace = 0

        [service.cache]
        script = "systemd-notify --ready --status='Ready to accept connections'; exec sleep 60"
        type = "notify"
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    corral.ok("restart", "web")  # its last exit is now the SIGTERM of that restart
    assert corral.one("web")["exit_signal"] == "TERM"
    row = corral.wait_state("cache", "running")
    assert row["status_text"] == "Ready to accept connections"
    lines = {line.split()[0]: line for line in corral.ok("status").splitlines()[1:]}
    assert lines["web"].split()[7:] == [], lines["web"]
    assert lines["cache"].endswith("  Ready to accept connections"), lines["cache"]


def _on_a_terminal(corral: Corral, command: list[str], env: dict[str, str]) -> bytes:
    """``command`` with its stdout on a pseudo-terminal; what it wrote there."""
    import os
    import pty
    import subprocess

    leader, follower = pty.openpty()
    try:
        process = subprocess.run(
            command, cwd=corral.root, env={**corral.env(), **env},
            stdout=follower, stderr=subprocess.PIPE, timeout=30,
        )  # fmt: skip
        assert process.returncode == 0, process.stderr
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed and drained
                break
            if not chunk:
                break
            seen += chunk
        return seen
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)


def test_no_color_turns_the_colour_off(corral: Corral) -> None:
    """NO_COLOR set and not empty (no-color.org): no colour in the table or the logs, from
    the quick path or the full CLI."""
    import sys

    corral.write(CONFIG)
    corral.up()
    corral.wait_state("web", "running")
    full = [sys.executable, "-c", "import sys; from corral.cli.main import main; sys.exit(main())"]
    quick = [sys.executable, "-m", "corral"]
    for command in ([*quick, "status"], [*full, "status"], [*full, "logs", "web"]):
        assert b"\x1b[" in _on_a_terminal(corral, command, {"NO_COLOR": ""}), command
        plain = _on_a_terminal(corral, command, {"NO_COLOR": "1"})
        assert b"\x1b[" not in plain and b"web" in plain, command


def test_the_daemon_renders_the_table_without_importing_the_cli(corral: Corral) -> None:
    """The daemon makes the table (corral.control.table); the CLI's modules are the CLI's."""
    corral.write(CONFIG)
    corral.up(env={"PYTHONPROFILEIMPORTTIME": "1"})
    corral.wait_state("web", "running")
    assert corral.ok("status").startswith("NAME")
    imports = [
        line.split("|")[-1].strip()
        for line in corral.log().splitlines()
        if line.startswith("import time:")
    ]
    assert "corral.control.table" in imports
    assert "corral.daemon.loop" in imports
    assert "corral.cli.render" not in imports, "the daemon imported the CLI's renderer"


def test_a_oneshot_that_exited_0_is_done_and_a_state_job_is_running(corral: Corral) -> None:
    """DESIGN.md "Oneshot": goal start, state running, pid null, so what requires it holds;
    the table says done. A process-less job that holds stays "running"."""
    corral.write(
        """
        [service.setup]
        type = "oneshot"
        script = "echo prepared"

        [service.flag]
        """
    )
    corral.up()
    row = wait_until(lambda: (r := corral.one("setup"))["ready"] and r, 10, "setup to be done")
    assert (row["goal"], row["state"], row["pid"], row["done"]) == ("start", "running", None, True)
    flag = corral.one("flag")
    assert (flag["state"], flag["pid"], flag["done"]) == ("running", None, False)
    rows = _rows(corral.ok("status"))
    assert rows["setup"][2] == "done" and rows["flag"][2] == "running"
