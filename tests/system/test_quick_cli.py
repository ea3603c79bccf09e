"""The quick CLI path (``start``, ``stop``, ``restart``, ``reload``, ``down``, ``status``,
``up``): it skips argparse, and says and exits exactly what the full CLI does."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.system.conftest import Corral, pid_alive, wait_until

CONFIG = """
[service.web]
exec = ["sh", "-c", "trap '' HUP; exec sleep 60"]  # a reload leaves it running

[service.calm]
exec = ["sleep", "60"]

[service.broken]
exec = ["sh", "-c", "exit 3"]
restart = "no"
autostart = false

[service.tty]
exec = ["sleep", "60"]
instance = "${TTY}"
autostart = false
"""

#: The ``corral`` command, saying which modules it loads.
QUICK = [sys.executable, "-X", "importtime", "-m", "corral"]
FULL = [sys.executable, "-c", "import sys; from corral.cli.main import main; sys.exit(main())"]

#: Each run twice, the full CLI first; all of them are idempotent, so both see one state
#: (where what they say is not, ``SETUP`` makes it so before each run).
CASES = [
    ["start", "web"],
    ["start", "web", "calm"],
    ["stop", "calm", "--no-wait"],
    ["start", "--no-wait", "calm"],
    ["restart", "calm"],
    ["start", "tty", "TTY=tty1"],
    ["start", "tty:tty2"],
    ["stop", "tty"],  # both instances, each said
    ["reload", "web"],
    ["reload", "broken"],  # 1: not running, nothing to reload
    ["start", "nosuch"],  # 3
    ["stop", "web", "nosuch"],
    ["start", "TTY=tty1"],  # 2: KEY=VALUE before any name
    ["start", "broken"],  # 1: failed to start, with its exit
    ["status", "web", "--json"],
    ["status", "nosuch"],
    ["restart", "all"],  # every instance whose goal is start
    ["stop", "all"],  # every instance
    ["start", "all"],  # what `up` starts
    ["--socket", "{socket}", "stop", "calm"],
    ["--socket={socket}", "start", "calm"],
    ["--socket", "{socket}", "status", "calm", "--json"],
]


#: Commands run before each run of a case, so that both runs say the same.
SETUP = {("stop", "tty"): [["start", "tty", "TTY=tty1"], ["start", "tty:tty2"]]}


def _run(corral: Corral, command: list[str]) -> subprocess.CompletedProcess[str]:
    """``command`` (QUICK or FULL and its words) run against ``corral``'s daemon."""
    return subprocess.run(command, cwd=corral.root, env=corral.env(), capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def _pids_named(corral: Corral, said: str) -> str:
    """``said`` with each ``(pid N)`` that is its instance's pid now written ``(pid PID)``:
    two restarts give two pids, and what is compared is that each was said truly."""
    pids = {row["name"]: row["pid"] for row in corral.status()}

    def named(match: re.Match[str]) -> str:
        true = pids.get(match[1]) == int(match[2])
        return f"{match[1]}: running (pid {'PID' if true else match[2]})"

    return re.sub(r"^(\S+): running \(pid (\d+)\)", named, said, flags=re.M)


def _split(stderr: str) -> tuple[list[str], str]:
    """``-X importtime`` lines (the modules loaded) apart from what the CLI said."""
    lines = stderr.splitlines(keepends=True)
    imports = [line.split("|")[-1].strip() for line in lines if line.startswith("import time:")]
    return imports, "".join(line for line in lines if not line.startswith("import time:"))


def test_the_quick_path_says_and_exits_what_the_full_cli_does(corral: Corral) -> None:
    corral.write(CONFIG)
    corral.up()
    corral.wait_state("web", "running")
    for case in CASES:
        args = [word.format(socket=corral.socket) for word in case]
        for setup in SETUP.get(tuple(args), []):
            corral.ok(*setup)
        full = _run(corral, [*FULL, *args])
        full_said = _pids_named(corral, full.stdout)
        for setup in SETUP.get(tuple(args), []):
            corral.ok(*setup)
        quick = _run(corral, [*QUICK, *args])
        quick_said = _pids_named(corral, quick.stdout)
        imports, said = _split(quick.stderr)
        assert "argparse" not in imports, f"corral {' '.join(args)} took the full parser"
        if "status" in args:  # the pid and age in the rows may differ between the two
            assert (quick.returncode, said) == (full.returncode, full.stderr), args
            continue
        assert (quick.returncode, quick_said, said) == (
            full.returncode,
            full_said,
            full.stderr,
        ), args
        verb = next(word for word in args if not word.startswith("-") and "/" not in word)
        if quick.returncode == 0 and verb != "status":
            assert "_json" not in imports, f"corral {' '.join(args)} decoded its reply with json"
        if full.returncode == 0 and verb in ("start", "stop", "restart"):
            expected = "" if "--no-wait" in args else ": "  # a line per instance reached
            assert expected in full_said and (expected or not full_said), (args, full_said)
    assert corral.one("calm")["state"] == "running"
    assert {r["instance"] for r in corral.status("tty") if r["state"] == "running"} == set()


@pytest.mark.parametrize(
    "args",
    [["down"], ["start", "web"], ["stop", "web", "--no-wait"], ["reload", "web"]],
)
def test_no_daemon_is_exit_4_with_the_same_message(corral: Corral, args: list[str]) -> None:
    quick = corral.run(*args)
    full = _run(corral, [*FULL, *args])
    assert quick.returncode == full.returncode == 4
    assert quick.stderr == full.stderr
    assert "cannot reach corral" in quick.stderr


@pytest.mark.parametrize(
    "args", [["start"], ["down", "web"], ["reload", "--no-wait", "web"], ["stop", "--help"]]
)
def test_what_the_quick_path_does_not_know_gets_argparse(corral: Corral, args: list[str]) -> None:
    result = corral.run(*args)
    expected = 0 if "--help" in args else 2
    assert result.returncode == expected
    assert "usage: corral" in result.stdout + result.stderr


def test_down_through_the_quick_path_stops_everything(corral: Corral) -> None:
    corral.write(CONFIG)
    process = corral.up()
    pid = corral.wait_state("web", "running")["pid"]
    result = _run(corral, [*QUICK, "down"])
    assert result.returncode == 0
    assert "argparse" not in _split(result.stderr)[0]
    assert process.wait(timeout=30) == 0
    wait_until(lambda: not pid_alive(pid), 5, "web's process to be gone")


def test_up_takes_the_quick_path_and_runs_the_daemon(corral: Corral) -> None:
    corral.write(CONFIG)
    with open(corral.output, "ab") as out:
        corral.process = subprocess.Popen(
            [*QUICK, "up", "-c", "corral.toml"], cwd=corral.root, env=corral.env(),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    wait_until(corral.ping, 15, "the daemon's socket")
    corral.wait_state("web", "running")
    imports, _ = _split(corral.log())
    assert "corral.daemon.loop" in imports
    assert "argparse" not in imports
