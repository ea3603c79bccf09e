"""``corral up`` in the foreground: the first Ctrl-C (SIGINT) stops every service in order and
says so; a second one, while that stop is under way, SIGKILLs what is left and exits 1."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import termios
from pathlib import Path

from tests.system.conftest import CORRAL, Corral, pid_alive, wait_until

STUBBORN = """
[service.stubborn]
script = "trap '' TERM INT; echo armed; while true; do sleep 0.1; done"
stop_timeout = 60

[service.polite]
exec = ["sleep", "600"]
"""


def test_a_first_sigint_says_what_it_stops_and_a_second_kills_it(corral: Corral) -> None:
    corral.write(STUBBORN)
    process = corral.up()
    wait_until(lambda: "armed" in corral.ok("logs", "stubborn"), 10, "the trap to be set")
    stubborn = corral.one("stubborn")["pid"]
    polite = corral.one("polite")["pid"]
    os.kill(process.pid, signal.SIGINT)
    wait_until(lambda: "stopping 2 services (Ctrl-C again to kill)" in corral.log(), 10,
               "the first Ctrl-C's line")  # fmt: skip
    wait_until(lambda: not pid_alive(polite), 10, "the polite service to stop")
    assert pid_alive(stubborn) and process.poll() is None  # it ignores TERM: still stopping
    os.kill(process.pid, signal.SIGINT)
    assert process.wait(timeout=10) == 1
    assert not pid_alive(stubborn)
    assert "killed 1 service that had not stopped" in corral.log()


def _take_terminal() -> None:
    """In the child: make the pty (its stdin) the controlling terminal of its new session."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_ctrl_c_on_a_terminal_reaches_corral_and_not_the_services(tmp_path: Path) -> None:
    """Typed on the terminal, Ctrl-C goes to the foreground process group; the services are in
    groups of their own, so corral alone decides how they stop (a polite stop, in order)."""
    (tmp_path / "corral.toml").write_text(
        "[service.svc]\nscript = \"trap 'echo got-INT' INT; echo armed; "
        'while true; do sleep 0.1; done"\n'
    )
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*CORRAL, "up"], cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True, env={**os.environ, "CORRAL_SOCKET": str(tmp_path / "s.sock")},
        preexec_fn=_take_terminal,
    )  # fmt: skip
    os.close(slave)
    seen = b""

    def read_until(text: bytes) -> bool:
        nonlocal seen
        if select.select([master], [], [], 0.1)[0]:
            try:
                seen += os.read(master, 65536)
            except OSError:
                pass
        return text in seen

    try:
        wait_until(lambda: read_until(b"armed"), 15, "the service to start")
        os.write(master, b"\x03")  # Ctrl-C, as typed
        wait_until(lambda: read_until(b"all services stopped; bye"), 15, "corral to stop all")
        assert process.wait(timeout=10) == 0
        assert b"stopping 1 service (Ctrl-C again to kill)" in seen
        assert b"got-INT" not in seen
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        os.close(master)
