"""Readiness with real processes: notify, ready_fd, forking with a late pid file, probes,
and timeout_start. A service is running only once it is ready."""

from __future__ import annotations

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
    time.sleep(0.3)  # the launcher has exited by now; the adopted main keeps it running
    assert corral.one("handover")["state"] == "running"
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
    tcp_port, http_port = free_port(), free_port()
    server = f"{sys.executable} -m http.server --bind 127.0.0.1"
    corral.write(
        f"""
        [service.tcp]
        script = "sleep 0.7; exec {server} {tcp_port}"
        ready = {{ tcp = "127.0.0.1:{tcp_port}", interval = "50ms" }}
        autostart = false

        [service.http]
        script = "sleep 0.7; exec {server} {http_port}"
        ready = {{ http = "http://127.0.0.1:{http_port}/", interval = 0.05 }}
        autostart = false
        """
    )
    corral.up()
    corral.run("start", "tcp", "http", "--no-wait")
    assert {corral.one(n)["state"] for n in ("tcp", "http")} == {"spawned"}
    corral.ok("start", "tcp", "http")
    for port in (tcp_port, http_port):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_log_and_exec_probes_and_a_probe_that_gives_up(corral: Corral) -> None:
    flag = corral.root / "flag"
    corral.write(
        f"""
        [service.logged]
        script = "echo starting; sleep 0.5; echo 'listening on 8080'; exec sleep 600"
        ready = {{ log = "listening on \\\\d+" }}
        autostart = false

        [service.checked]
        script = "sleep 0.5; touch {flag}; exec sleep 600"
        ready = {{ exec = "test -f {flag}", interval = 0.05 }}
        autostart = false

        [service.never]
        exec = ["sleep", "600"]
        ready = {{ exec = "echo nope; exit 1", interval = 0.1, timeout = 0.6 }}
        autostart = false
        """
    )
    corral.up()
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
