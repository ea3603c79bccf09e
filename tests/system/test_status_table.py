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
