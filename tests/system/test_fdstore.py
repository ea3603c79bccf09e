"""The fd store with a real client: a notify service hands its accepted connection to corral
(``FDSTORE=1``), crashes, and its next process takes the connection back from
``LISTEN_FDS``, so the client never notices; a stop drops what was stored."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tests.system.conftest import Corral, env_of, free_port

#: Accepts one client (or takes it back from the store), answers each line with its pid,
#: and crashes (exit 3) on "crash".
KEEPER = """
import array, os, socket

def notify(message, fds=()):
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        sock.sendmsg([message.encode()], rights, 0, address)

count = int(os.environ.get("LISTEN_FDS", "0"))
names = os.environ.get("LISTEN_FDNAMES", "").split(":")
fds = dict(zip(names, range(3, 3 + count)))
if "client" in fds:
    connection = socket.socket(fileno=fds["client"])
    connection.sendall(f"resumed {os.getpid()}\\n".encode())
else:
    connection, _ = socket.socket(fileno=fds["web"]).accept()
    notify("FDSTORE=1\\nFDNAME=client", [connection.fileno()])
    connection.sendall(f"stored {os.getpid()}\\n".encode())
notify("READY=1")
for line in connection.makefile():
    if line == "crash\\n":
        os._exit(3)
    connection.sendall(f"pong {os.getpid()}\\n".encode())
"""


def keeper(root: Path, port: int) -> str:
    path = root / "keeper.py"
    path.write_text(KEEPER)
    return f"""
        [service.web]
        exec = ["{sys.executable}", "{path}"]
        type = "notify"
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        restart = "on-failure"
        restart_delay = 0
        """


def test_a_stored_connection_survives_a_crash(corral: Corral) -> None:
    port = free_port()
    corral.write(keeper(corral.root, port))
    corral.up()
    client = socket.create_connection(("127.0.0.1", port), timeout=20)
    lines = client.makefile("rb")
    first = int(lines.readline().split()[1])  # "stored PID"
    client.sendall(b"ping\n")
    assert lines.readline() == f"pong {first}\n".encode()
    client.sendall(b"crash\n")
    resumed = lines.readline()  # the same connection, now served by the next process
    second = int(resumed.split()[1])
    assert resumed.startswith(b"resumed ") and second != first
    assert env_of(second)["LISTEN_FDNAMES"] == "web:client"
    client.sendall(b"ping\n")
    assert lines.readline() == f"pong {second}\n".encode()
    row = corral.one("web")
    assert (row["pid"], row["restarts"], row["state"]) == (second, 1, "running")
    lines.close()
    client.close()


def test_a_stop_drops_the_store(corral: Corral) -> None:
    port = free_port()
    corral.write(keeper(corral.root, port))
    corral.up()
    client = socket.create_connection(("127.0.0.1", port), timeout=20)
    lines = client.makefile("rb")
    assert lines.readline().startswith(b"stored ")
    corral.ok("stop", "web")
    assert lines.readline() == b""  # corral's copy is closed too: the client sees the end
    corral.ok("start", "web", "--no-wait")  # a fresh start: nothing stored, it accepts anew
    again = socket.create_connection(("127.0.0.1", port), timeout=20)
    assert again.makefile("rb").readline().startswith(b"stored ")
    assert env_of(corral.one("web")["pid"])["LISTEN_FDNAMES"] == "web"
    for sock in (lines, client, again):
        sock.close()
