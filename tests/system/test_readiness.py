"""Readiness with real processes: notify, ready_fd, forking with a late pid file, probes,
and timeout_start. A service is running only once it is ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from tests.system.conftest import Corral, free_port, pid_alive, wait_until

NOTIFIER = """
import os, socket, sys, time

def notify(message):
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\\0" + address[1:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(message.encode(), address)
    sock.close()

mode = sys.argv[1]
if mode == "never":
    notify("STATUS=stuck")
    time.sleep(600)
notify("STATUS=warming up")
time.sleep(0.6)
if mode == "extend":
    notify("EXTEND_TIMEOUT_USEC=3000000")
    time.sleep(1.5)
if mode == "mainpid":
    import subprocess
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    notify(f"MAINPID={child.pid}")
    with open(sys.argv[2] + ".launcher", "w") as f:
        f.write(str(os.getpid()))
    with open(sys.argv[2], "w") as f:
        f.write(str(child.pid))
    notify("READY=1")
    sys.exit(0)
with open(sys.argv[2], "w") as f:
    f.write("ready")
notify("READY=1\\nSTATUS=serving")
time.sleep(600)
"""


def notifier(root: Path) -> str:
    path = root / "notifier.py"
    path.write_text(NOTIFIER)
    return f'["{sys.executable}", "{path}"'


def test_notify_is_running_only_after_ready_with_status_text(corral: Corral) -> None:
    marker = corral.root / "marker"
    corral.write(
        f"""
        [service.n]
        exec = {notifier(corral.root)}, "normal", "{marker}"]
        type = "notify"
        autostart = false

        [service.after]
        script = "test -f {marker}; exec sleep 600"
        requires = ["n"]
        autostart = false
        """
    )
    corral.up()
    began = time.monotonic()
    corral.ok("start", "after")
    assert time.monotonic() - began >= 0.5
    row = corral.one("n")
    assert row["state"] == "running" and row["ready"] and row["status_text"] == "serving"


def test_notify_that_never_says_ready_fails_at_timeout_start(corral: Corral) -> None:
    corral.write(
        f"""
        [service.n]
        exec = {notifier(corral.root)}, "never", "x"]
        type = "notify"
        timeout_start = 1
        autostart = false
        """
    )
    corral.up()
    corral.run("start", "n", "--no-wait")
    row = wait_until(  # the STATUS= line may arrive a moment after the spawn
        lambda: (r := corral.one("n"))["state"] == "spawned" and r["status_text"] == "stuck" and r,
        5,
        "n spawned with its status text",
    )
    assert row["ready"] is False
    pid = row["pid"]
    result = corral.run("start", "n")
    assert result.returncode == 1 and "not ready within timeout_start (1s)" in result.stderr
    assert corral.one("n")["state"] == "failed"
    wait_until(lambda: not pid_alive(pid), 5, "the unready process to be killed")


def test_extend_timeout_usec_and_mainpid(corral: Corral) -> None:
    pidfile = corral.root / "main.pid"
    corral.write(
        f"""
        [service.slow]
        exec = {notifier(corral.root)}, "extend", "{corral.root / "m1"}"]
        type = "notify"
        timeout_start = 1
        autostart = false

        [service.handover]
        exec = {notifier(corral.root)}, "mainpid", "{pidfile}"]
        type = "notify"
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "slow")  # ready after 2.1 s, past timeout_start 1 s, thanks to EXTEND
    corral.ok("start", "handover")
    row = corral.one("handover")
    assert row["state"] == "running" and row["pid"] == int(pidfile.read_text())
    launcher = int(Path(f"{pidfile}.launcher").read_text())
    # Gone from /proc once corral reaped it, which is when corral handles its exit.
    wait_until(lambda: not os.path.exists(f"/proc/{launcher}"), 5, "the launcher's exit")
    assert corral.one("handover")["state"] == "running"  # the adopted main keeps it running
    corral.ok("stop", "handover")
    wait_until(lambda: not pid_alive(row["pid"]), 5, "the adopted main to be stopped")


def test_forking_with_a_late_pid_file(corral: Corral) -> None:
    pidfile = corral.root / "daemon.pid"
    corral.write(
        f"""
        [service.forker]
        script = "( setsid sleep 600 & echo $! > {pidfile}.tmp; sleep 0.5; mv {pidfile}.tmp {pidfile} ) & exit 0"
        type = "forking"
        pid_file = "{pidfile}"
        autostart = false
        """
    )
    corral.up()
    began = time.monotonic()
    corral.ok("start", "forker")
    assert time.monotonic() - began >= 0.4
    row = corral.one("forker")
    pid = int(pidfile.read_text())
    assert row["state"] == "running" and row["pid"] == pid
    os.kill(pid, signal.SIGKILL)
    row = corral.wait_state("forker", "failed", 5)
    assert row["exit_signal"] == "KILL"


def test_tcp_and_http_probes_wait_for_the_port(corral: Corral) -> None:
    """Until the test lets the servers listen, both services stay spawned (a wait on a
    condition that cannot come true yet); once they listen, ``start`` returns ready."""
    tcp_port, http_port = free_port(), free_port()
    server = f"{sys.executable} -m http.server --bind 127.0.0.1"
    go = corral.root / "go"
    wait_go = f"while [ ! -e {go} ]; do sleep 0.05; done"
    corral.write(
        f"""
        [service.tcp]
        script = "{wait_go}; exec {server} {tcp_port}"
        ready = {{ tcp = "127.0.0.1:{tcp_port}", interval = "50ms" }}
        autostart = false

        [service.http]
        script = "{wait_go}; exec {server} {http_port}"
        ready = {{ http = "http://127.0.0.1:{http_port}/", interval = 0.05 }}
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "tcp", "http", "--no-wait")
    waited = corral.run("wait", "tcp", "http", "--timeout", "1")  # probes tried ~20 times
    assert waited.returncode == 1 and "timed out" in waited.stderr
    assert {(r["state"], r["ready"]) for r in corral.status()} == {("spawned", False)}
    go.touch()
    corral.ok("start", "tcp", "http")
    assert {(r["state"], r["ready"]) for r in corral.status()} == {("running", True)}
    for port in (tcp_port, http_port):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_log_and_exec_probes_and_a_probe_that_gives_up(corral: Corral) -> None:
    """Neither service is ready before its condition holds (a line that does not match, a
    check that fails), both are once it does; a probe that never passes fails the start."""
    flag, go = corral.root / "flag", corral.root / "go"
    corral.write(
        f"""
        [service.logged]
        script = "echo starting; while [ ! -e {go} ]; do sleep 0.05; done; echo 'listening on 8080'; exec sleep 600"
        ready = {{ log = "listening on \\\\d+" }}
        autostart = false

        [service.checked]
        exec = ["sleep", "600"]
        ready = {{ exec = "test -f {flag}", interval = 0.05 }}
        autostart = false

        [service.never]
        exec = ["sleep", "600"]
        ready = {{ exec = "echo nope; exit 1", interval = 0.1, timeout = 0.6 }}
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "logged", "checked", "--no-wait")
    wait_until(lambda: "starting" in corral.ok("logs", "logged"), 10, "logged's first line")
    waited = corral.run("wait", "logged", "checked", "--timeout", "1")
    assert waited.returncode == 1 and "timed out" in waited.stderr
    rows = [corral.one(name) for name in ("logged", "checked")]
    assert {(r["state"], r["ready"]) for r in rows} == {("spawned", False)}
    go.touch()
    flag.touch()
    corral.ok("start", "logged", "checked")
    assert corral.one("logged")["ready"] and corral.one("checked")["ready"]
    result = corral.run("start", "never")
    assert result.returncode == 1
    assert "ready probe (exec) did not pass within 0.6s" in result.stderr
    assert "status 1 nope" in result.stderr


def test_ready_fd_closed_without_a_newline_is_never_ready(corral: Corral) -> None:
    corral.write(
        """
        [service.quiet]
        script = "exec 3>&-; exec sleep 600"
        ready_fd = 3
        timeout_start = 0.7
        autostart = false
        """
    )
    corral.up()
    result = corral.run("start", "quiet")
    assert result.returncode == 1 and "not ready within timeout_start" in result.stderr


def test_a_notify_message_from_a_stranger_is_ignored(corral: Corral) -> None:
    address_file = corral.root / "address"
    corral.write(
        f"""
        [service.n]
        script = "echo $NOTIFY_SOCKET > {address_file}; exec sleep 600"
        type = "notify"
        autostart = false
        """
    )
    corral.up()
    corral.run("start", "n", "--no-wait")
    address = wait_until(lambda: address_file.exists() and address_file.read_text().strip(), 5)
    assert address.startswith("@corral/")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(b"READY=1", "\0" + address[1:])
    sock.close()
    wait_until(lambda: "ignored a notify message" in corral.ok("logs", "n"), 5, "the refusal")
    assert corral.one("n")["state"] == "spawned"


def _status_round_trips(corral: Corral, duration: float) -> list[float]:
    """Seconds each raw ``status`` request took, asked back to back for ``duration``; a
    request that got no answer within 5 s counts as 5 s (and ends the sampling)."""
    times: list[float] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(corral.socket)
        reader = sock.makefile("rb")
        end = time.monotonic() + duration
        while time.monotonic() < end:
            began = time.monotonic()
            sock.sendall(b'{"cmd": "status"}\n')
            try:
                reply = json.loads(reader.readline())
            except TimeoutError:
                return [*times, 5.0]
            times.append(time.monotonic() - began)
            assert reply["ok"] is True, reply
    return times


def test_a_backtracking_log_pattern_against_long_lines_never_stalls_the_daemon(
    corral: Corral,
) -> None:
    """``(a+)+$`` against a long line of ``a``s and a ``!`` takes a backtracking matcher
    exponential time; matched in bounded time, off the loop, ``status`` still answers at once
    while such lines stream in, and the probe gives up at its timeout as usual."""
    started = corral.root / "started"
    corral.write(
        f"""
        [service.greedy]
        script = '''
            line=$(printf '%16000s' '' | tr ' ' a)
            echo "$line!"; touch {started}
            while :; do
                for i in 1 2 3 4 5 6 7 8 9 10; do echo "$line!"; done
                sleep 0.05
            done
        '''
        ready = {{ log = "(a+)+$", timeout = 4 }}
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "greedy", "--no-wait")
    wait_until(started.exists, 10, "the first long line to be written")
    times = _status_round_trips(corral, 1.5)
    assert len(times) > 10 and max(times) < 0.5, f"status round trips: {times}"
    assert corral.one("greedy")["state"] == "spawned"
    result = corral.run("start", "greedy")
    assert result.returncode == 1
    assert "ready probe (log) did not pass within 4s: no output line matched '(a+)+$'" in (
        result.stderr
    )
