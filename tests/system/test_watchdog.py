"""A running service's health with real processes: the watchdog (``WATCHDOG=1`` or
SIGABRT, then a restart), liveness probes of every kind, notify-reload, a stop's
``EXTEND_TIMEOUT_USEC``, and an idle corral that wakes for nothing but what is due."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.system.conftest import Corral, env_of, free_port, wait_until

NOTIFY = """
import os, resource, socket
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a SIGABRT leaves no core file

def notify(message):
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)
"""

#: The first run pings a little and then hangs; every later run pings on, one line a ping.
PINGER = (
    NOTIFY
    + """
import sys, time
first = not os.path.exists(sys.argv[1])
open(sys.argv[1], "a").close()
notify("READY=1")
for _ in range(3 if first else 10**6):
    notify("WATCHDOG=1")
    with open(sys.argv[1], "a") as pings:
        pings.write(f"{os.getpid()}\\n")
    time.sleep(0.2)
time.sleep(600)
"""
)

#: Answers tcp connections and http requests on a port until a marker file appears; then,
#: taking the marker away, answers http with 500 and (for "tcp") refuses connections.
SERVER = (
    NOTIFY
    + """
import sys, threading, time
port, marker, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if os.path.exists(marker + ".exec"):
    os.unlink(marker + ".exec")  # what made the last process fail its exec check
listener = socket.create_server(("127.0.0.1", port))
sick = False

def serve():
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        connection.recv(1000)
        status = "500 Sick" if sick else "200 OK"
        connection.sendall(f"HTTP/1.0 {status}\\r\\nContent-Length: 0\\r\\n\\r\\n".encode())
        connection.close()

threading.Thread(target=serve, daemon=True).start()
while not os.path.exists(marker):
    time.sleep(0.05)
os.unlink(marker)
sick = True
if kind == "tcp":
    listener.shutdown(socket.SHUT_RDWR)
time.sleep(600)
"""
)


def script(root: Path, name: str, text: str) -> str:
    path = root / name
    path.write_text(text)
    return f'"{sys.executable}", "{path}"'


def test_a_service_that_stops_pinging_gets_sigabrt_and_is_restarted(corral: Corral) -> None:
    pings = corral.root / "pings"
    corral.write(
        f"""
        [service.w]
        exec = [{script(corral.root, "pinger.py", PINGER)}, "{pings}"]
        type = "notify"
        watchdog = "1s"
        restart = "on-failure"
        restart_delay = 0
        """
    )
    corral.up()
    first = corral.wait_state("w", "running")["pid"]
    env = env_of(first)
    assert (env["WATCHDOG_USEC"], env["WATCHDOG_PID"]) == ("1000000", str(first))
    row = wait_until(lambda: (r := corral.one("w"))["restarts"] == 1 and r["pid"] and r, 15)
    assert row["pid"] != first and row["exit_signal"] == "ABRT"
    assert "watchdog: no WATCHDOG=1 within 1s: sending SIGABRT" in corral.ok("logs", "w")
    # The new process pings on: more than three watchdog periods later it still runs.
    second = str(row["pid"])
    wait_until(lambda: pings.read_text().split().count(second) >= 16, 20, "16 pings")
    row = corral.one("w")
    assert (row["pid"], row["restarts"], row["state"]) == (int(second), 1, "running")


def test_a_missed_watchdog_without_restart_fails_the_service(corral: Corral) -> None:
    corral.write(
        f"""
        [service.w]
        exec = [{script(corral.root, "pinger.py", PINGER)}, "{corral.root / "pings"}"]
        type = "notify"
        watchdog = "500ms"
        """
    )
    corral.up()
    row = corral.wait_state("w", "failed", timeout=15)
    assert row["goal"] == "stop" and row["restarts"] == 0


@pytest.mark.parametrize("kind", ["tcp", "http", "exec"])
def test_a_failing_liveness_probe_gets_sigabrt_and_a_restart(corral: Corral, kind: str) -> None:
    port = free_port()
    marker = corral.root / "sick"
    probe = {
        "tcp": f'tcp = "127.0.0.1:{port}"',
        "http": f'http = "http://127.0.0.1:{port}/health"',
        "exec": f'exec = ["test", "!", "-e", "{marker}.exec"]',
    }[kind]
    corral.write(
        f"""
        [service.s]
        exec = [{script(corral.root, "server.py", SERVER)}, "{port}", "{marker}", "{kind}"]
        liveness = {{ {probe}, interval = "300ms", failures = 2 }}
        restart = "always"
        restart_delay = 0
        """
    )
    corral.up()
    first = corral.wait_state("s", "running")["pid"]
    (corral.root / ("sick.exec" if kind == "exec" else "sick")).touch()
    row = wait_until(lambda: (r := corral.one("s"))["restarts"] == 1 and r["pid"] and r, 15)
    assert row["pid"] != first and row["exit_signal"] == "ABRT"
    log = corral.ok("logs", "s")
    assert "liveness probe failed 2 times in a row" in log and "sending SIGABRT" in log


def test_reloading_is_not_ready_until_ready_again(corral: Corral) -> None:
    done = corral.root / "done"
    reloader = (
        NOTIFY
        + f"""
import signal, time
def reload(*_):
    notify("RELOADING=1")
    while not os.path.exists("{done}"):
        time.sleep(0.05)
    os.unlink("{done}")
    notify("READY=1")
signal.signal(signal.SIGHUP, reload)
notify("READY=1")
while True:
    time.sleep(600)
"""
    )
    corral.write(
        f"""
        [service.r]
        exec = [{script(corral.root, "reloader.py", reloader)}]
        type = "notify"
        """
    )
    corral.up()
    pid = corral.wait_state("r", "running")["pid"]
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: not corral.one("r")["ready"], 10, "not ready while reloading")
    assert corral.one("r")["state"] == "running"
    done.touch()
    wait_until(lambda: corral.one("r")["ready"], 10, "ready again")
    assert "reloading (RELOADING=1): not ready until READY=1" in corral.ok("logs", "r")


def test_corral_reload_waits_until_ready_again(corral: Corral) -> None:
    reloader = (
        NOTIFY
        + """
import signal, time
def reload(*_):
    notify("RELOADING=1")
    time.sleep(1.5)
    notify("READY=1")
signal.signal(signal.SIGHUP, reload)
notify("READY=1")
while True:
    time.sleep(600)
"""
    )
    corral.write(
        f"""
        [service.r]
        exec = [{script(corral.root, "reloader.py", reloader)}]
        type = "notify"
        """
    )
    corral.up()
    corral.wait_state("r", "running")
    began = time.monotonic()
    corral.ok("reload", "r")
    assert time.monotonic() - began >= 1.4
    assert corral.one("r")["ready"]


def test_extend_timeout_usec_extends_a_stop(corral: Corral) -> None:
    slow = (
        NOTIFY
        + """
import signal, time
def stop(*_):
    notify("EXTEND_TIMEOUT_USEC=10000000")
    time.sleep(1.5)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
notify("READY=1")
while True:
    time.sleep(600)
"""
    )
    corral.write(
        f"""
        [service.s]
        exec = [{script(corral.root, "slow.py", slow)}]
        type = "notify"
        stop_timeout = "500ms"
        """
    )
    corral.up()
    corral.wait_state("s", "running")
    corral.ok("stop", "s")
    row = corral.one("s")
    assert (row["exit_status"], row["exit_signal"]) == (0, None)  # not SIGKILLed at 500 ms
    assert "sending SIGKILL" not in corral.ok("logs", "s")


def test_an_idle_corral_with_sockets_and_watchdogs_wakes_for_nothing(corral: Corral) -> None:
    """Sockets are watched by the loop's selector and a watchdog is one timer at its
    deadline: with nothing due for a minute, the daemon does not run at all."""
    ports = [free_port() for _ in range(8)]
    sockets = "\n".join(
        f"""
        [service.lazy{n}]
        exec = ["sleep", "600"]
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        {"accept = true" if n % 2 else 'activate = "on-connection"'}
        """
        for n, port in enumerate(ports)
    )
    corral.write(
        f"""
        {sockets}
        [service.w]
        exec = [{script(corral.root, "pinger.py", PINGER.replace("0.2", "60"))}, "{corral.root / "p"}"]
        type = "notify"
        watchdog = "5m"
        liveness = {{ exec = "true", interval = "1m" }}
        """
    )
    corral.up()
    corral.wait_state("w", "running")
    pid = corral.process.pid if corral.process else 0
    time.sleep(0.5)  # let the start's own work (log writes, cgroup moves) finish
    before = _switches(pid)
    time.sleep(3)
    woke = _switches(pid) - before
    assert woke <= 2, f"the idle daemon woke {woke} times in 3 s"


def _switches(pid: int) -> int:
    """Context switches of every thread of a process so far."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except OSError:
            pass
    return total
