"""What a service's process is given at exec, by either spawn path (posix_spawn for the
plain case, a ready fd included; Popen where cwd, user, group or umask is set)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from tests.system.conftest import CORRAL, Corral, wait_until


def _fds_of(pid: int) -> dict[int, str]:
    found = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass
    return found


def _status_field(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_bare_command_is_found_on_the_services_own_path(corral: Corral, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    program = tools / "only-here"
    program.write_text("#!/bin/sh\nexec sleep 60\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    corral.write(
        f"""
        [service.found]
        exec = ["only-here"]
        env = {{ PATH = "{tools}:/usr/bin:/bin" }}

        [service.missing]
        exec = ["only-here"]
        autostart = false
        """
    )
    corral.up()
    assert corral.wait_state("found", "running")["pid"] > 0
    result = corral.run("start", "missing")
    assert result.returncode == 1 and "only-here: command not found" in result.stderr
    assert corral.one("found")["state"] == "running"


def test_a_plain_child_gets_null_stdin_its_own_group_and_no_fd_of_corrals(
    corral: Corral, tmp_path: Path
) -> None:
    corral.write('[service.plain]\nexec = ["sleep", "60"]\n')
    leaked = open(tmp_path / "inherited", "w")  # noqa: SIM115 - held open for the daemon
    try:
        os.set_inheritable(leaked.fileno(), True)
        with open(corral.output, "ab") as out:
            corral.process = subprocess.Popen(
                [*CORRAL, "up"], cwd=corral.root, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=(leaked.fileno(),),
            )  # fmt: skip
        wait_until(corral.ping, 15, "the daemon's socket")
        assert str(tmp_path / "inherited") in _fds_of(corral.process.pid).values()
    finally:
        leaked.close()
    pid = corral.wait_state("plain", "running")["pid"]
    fds = _fds_of(pid)
    assert sorted(fds) == [0, 1, 2], fds
    assert fds[0] == "/dev/null"
    assert fds[1] == fds[2] and fds[1].startswith("pipe:")
    assert os.getpgid(pid) == pid
    # No standard signal stays ignored (Python ignores SIGPIPE and SIGXFSZ). glibc's spawn
    # leaves its own two internal real-time signals (32, 33) ignored, which glibc programs
    # override when they use them.
    assert int(_status_field(pid, "SigIgn"), 16) & 0x7FFFFFFF == 0


def test_a_child_with_cwd_and_umask_gets_them_and_no_fd_of_corrals(
    corral: Corral, tmp_path: Path
) -> None:
    place = tmp_path / "place"
    place.mkdir()
    corral.write(
        f"""
        [service.placed]
        exec = ["sleep", "60"]
        cwd = "{place}"
        umask = "027"
        """
    )
    corral.up()
    pid = corral.wait_state("placed", "running")["pid"]
    assert os.readlink(f"/proc/{pid}/cwd") == str(place)
    assert _status_field(pid, "Umask") == "0027"
    assert sorted(_fds_of(pid)) == [0, 1, 2]
    assert os.getpgid(pid) == pid


def test_a_ready_fd_child_gets_that_fd_and_no_other_by_either_path(
    corral: Corral, tmp_path: Path
) -> None:
    """ready_fd = 3 by posix_spawn (plain) and by Popen (with cwd); fd 3 is the one pipe."""
    corral.write(
        f"""
        [service.plain]
        script = "echo >&3; exec sleep 60"
        ready_fd = 3

        [service.placed]
        script = "echo >&5; exec sleep 60"
        ready_fd = 5
        cwd = "{tmp_path}"
        """
    )
    corral.up()
    for name, fd in (("plain", 3), ("placed", 5)):
        row = corral.wait_state(name, "running")
        assert row["ready"] is True
        fds = _fds_of(row["pid"])
        assert sorted(fds) == [0, 1, 2, fd], (name, fds)
        assert fds[fd].startswith("pipe:") and fds[fd] != fds[1]


def test_with_many_fds_open_children_come_from_the_spawner_thread_and_get_the_same(
    corral: Corral, tmp_path: Path
) -> None:
    """CORRAL_SPAWNER_FDS=0 sends every plain spawn through the thread that corral uses once
    it holds a thousand fds: the children get what the in-place spawn gives them, the
    daemon's output and readiness pipes work through the reopened ends, and the thread's fd
    table holds nothing of corral's."""
    corral.write(
        f"""
        [service.plain]
        script = "echo hello from plain; echo >&3; exec sleep 60"
        ready_fd = 3

        [service.placed]
        exec = ["sleep", "60"]
        cwd = "{tmp_path}"

        [service.flaky]
        script = "echo run; sleep 0.2; exit 3"
        restart = "always"
        """
    )
    corral.up(env={"CORRAL_SPAWNER_FDS": "0"})
    row = corral.wait_state("plain", "running")
    assert row["ready"] is True
    fds = _fds_of(row["pid"])
    assert sorted(fds) == [0, 1, 2, 3], fds
    assert fds[0] == "/dev/null"
    assert fds[1] == fds[2] and fds[1].startswith("pipe:") and fds[3].startswith("pipe:")
    assert os.getpgid(row["pid"]) == row["pid"]
    assert int(_status_field(row["pid"], "SigIgn"), 16) & 0x7FFFFFFF == 0
    assert int(_status_field(row["pid"], "SigBlk"), 16) == 0
    assert sorted(_fds_of(corral.wait_state("placed", "running")["pid"])) == [0, 1, 2]
    wait_until(lambda: corral.one("flaky")["restarts"] >= 2, 10, "two respawns of flaky")
    wait_until(lambda: "hello from plain" in corral.ok("logs", "plain"), 5, "plain's output")
    assert corral.ok("logs", "flaky").count("run") >= 2
    assert corral.process is not None
    tables = {
        task: len(os.listdir(f"/proc/{corral.process.pid}/task/{task}/fd"))
        for task in os.listdir(f"/proc/{corral.process.pid}/task")
    }
    assert min(tables.values()) == 3 and max(tables.values()) > 10, tables
