"""Socket activation with real programs: corral binds each service's sockets when the
configuration loads and hands them over as fds 3, 4, ... (gunicorn and a small Python server
read them); a restart never refuses a connection; on-connection services start at their first
connection; accept = true runs one instance per connection, up to max_connections."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import sys
import threading
import urllib.request
from pathlib import Path

from tests.conftest import missing
from tests.system.conftest import Corral, env_of, free_port, wait_until

#: Serves each connection on the socket at fd 3 with one line naming its own pid; a udp
#: socket at fd 4, when there is one, answers each datagram the same way.
SERVER = """
import os, socket, sys, threading
assert int(os.environ["LISTEN_PID"]) == os.getpid(), "LISTEN_PID is not my pid"
listener = socket.socket(fileno=3)
if int(os.environ["LISTEN_FDS"]) > 1:
    udp = socket.socket(fileno=4)
    def answer():
        while True:
            data, peer = udp.recvfrom(100)
            udp.sendto(f"udp {os.getpid()}".encode(), peer)
    threading.Thread(target=answer, daemon=True).start()
print("serving", os.environ["LISTEN_FDS"], os.environ["LISTEN_FDNAMES"], flush=True)
while True:
    connection, _ = listener.accept()
    connection.sendall(f"hello {os.getpid()}\\n".encode())
    connection.close()
"""

#: A WSGI app for gunicorn: says which worker answered.
APP = """
import os
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"worker {os.getpid()}".encode()]
"""


def server(root: Path) -> str:
    path = root / "server.py"
    path.write_text(SERVER)
    return f'["{sys.executable}", "{path}"]'


def hello(port: int, timeout: float = 10.0) -> str:
    """One connection's line from the server (a refused connection raises)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        return sock.makefile().readline().strip()


class Hammer:
    """Connects to a port again and again from a thread, keeping every error."""

    def __init__(self, ask: object) -> None:
        self.ask = ask
        self.answers = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.ask()  # type: ignore[operator]
                self.answers += 1
            except OSError as exc:
                self.errors.append(repr(exc))

    def __enter__(self) -> Hammer:
        self._thread.start()
        wait_until(lambda: self.answers > 5 or self.errors, 10, "the first answers")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_sockets_reach_the_service_as_fds_with_listen_variables(corral: Corral) -> None:
    port = free_port()
    corral.write(
        f"""
        [service.web]
        exec = {server(corral.root)}
        sockets = [{{ listen = "127.0.0.1:{port}" }}, {{ listen = "udp:127.0.0.1:{port}", name = "dns" }}]

        [service.plain]
        exec = ["sleep", "600"]
        """
    )
    corral.up()
    row = corral.wait_state("web", "running")
    pid = row["pid"]
    assert hello(port) == f"hello {pid}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(10)
        udp.sendto(b"?", ("127.0.0.1", port))
        assert udp.recv(100) == f"udp {pid}".encode()
    env = env_of(pid)
    assert (env["LISTEN_FDS"], env["LISTEN_PID"], env["LISTEN_FDNAMES"]) == (
        "2",
        str(pid),
        "web:dns",
    )
    assert "WATCHDOG_USEC" not in env and "WATCHDOG_PID" not in env
    plain = env_of(corral.wait_state("plain", "running")["pid"])
    assert not [k for k in plain if k.startswith(("LISTEN_", "WATCHDOG_"))]


def test_no_connection_is_refused_across_a_restart(corral: Corral) -> None:
    port = free_port()
    corral.write(
        f"""
        [service.web]
        exec = {server(corral.root)}
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        """
    )
    corral.up()
    old = corral.wait_state("web", "running")["pid"]
    with Hammer(lambda: hello(port)) as hammer:
        corral.ok("restart", "web")
        new = corral.one("web")["pid"]
        wait_until(lambda: hello(port) == f"hello {new}", 10, "the new process to answer")
    assert new != old
    assert hammer.errors == [] and hammer.answers > 5


def test_gunicorn_serves_on_the_socket_corral_holds_and_restarts_without_refusing(
    corral: Corral,
) -> None:
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    if gunicorn is None:
        missing("gunicorn (pip install gunicorn)")
    (corral.root / "app.py").write_text(APP)
    port = free_port()
    corral.write(
        f"""
        [service.web]
        exec = ["{gunicorn}", "--workers", "2", "--chdir", "{corral.root}", "app:app"]
        type = "notify"
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        stop_timeout = 20
        """
    )
    corral.up()

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20) as answer:
            return str(answer.read().decode())

    corral.ok("start", "web", timeout=60)  # notify: running once gunicorn said READY=1
    assert get().startswith("worker ")
    # Not told where to bind (it would take 127.0.0.1:8000): it took fd 3 from LISTEN_FDS.
    assert f"Listening at: http://127.0.0.1:{port}" in corral.ok("logs", "web")
    with Hammer(get) as hammer:
        corral.ok("restart", "web", timeout=60)
        served = hammer.answers
        wait_until(lambda: hammer.answers > served + 5, 20, "answers after the restart")
    assert hammer.errors == []


def test_an_on_connection_service_starts_at_its_first_connection(corral: Corral) -> None:
    port = free_port()
    corral.write(
        f"""
        [service.api]
        exec = {server(corral.root)}
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        activate = "on-connection"

        [service.web]
        exec = ["sleep", "600"]
        requires = ["api"]
        """
    )
    corral.up()
    web = corral.wait_state("web", "running")  # its requirement's socket already accepts
    api = corral.one("api")
    assert (api["goal"], api["state"], api["pid"]) == ("stop", "waiting", None)
    answer = hello(port, timeout=20)  # waits in the backlog while api starts
    api = corral.wait_state("api", "running")
    assert answer == f"hello {api['pid']}"
    corral.ok("stop", "api")
    assert corral.one("web")["pid"] == web["pid"]  # what requires it needs only the socket
    assert corral.one("api")["state"] == "waiting"
    again = hello(port, timeout=20)  # stopped, it starts again at the next connection
    assert again == f"hello {corral.wait_state('api', 'running')['pid']}"


def test_accept_runs_one_instance_per_connection_named_by_its_peer(corral: Corral) -> None:
    port = free_port()
    corral.write(
        f"""
        [service.echo]
        script = 'echo "from $REMOTE_ADDR $REMOTE_PORT"; exec cat'
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        accept = true
        """
    )
    corral.up()
    assert [r["instance"] for r in corral.status("echo")] == [""]  # the service, no instance
    first = socket.create_connection(("127.0.0.1", port), timeout=10)
    second = socket.create_connection(("127.0.0.1", port), timeout=10)
    readers = [first.makefile("rb"), second.makefile("rb")]
    for sock, reader in zip((first, second), readers, strict=True):
        peer_port = sock.getsockname()[1]
        assert reader.readline() == f"from 127.0.0.1 {peer_port}\n".encode()
        sock.sendall(b"ping\n")
        assert reader.readline() == b"ping\n"  # stdin and stdout are the connection
    one, two = (f"127.0.0.1:{sock.getsockname()[1]}" for sock in (first, second))
    rows = {r["instance"]: r for r in corral.status("echo")}
    assert rows[one]["state"] == rows[two]["state"] == "running"
    assert env_of(rows[one]["pid"])["REMOTE_PORT"] == one.rpartition(":")[2]
    readers[0].close()
    first.close()  # cat sees end of file and exits 0: its instance goes away
    wait_until(lambda: one not in {r["instance"] for r in corral.status("echo")}, 10, "gone")
    assert {r["instance"]: r["state"] for r in corral.status("echo")}[two] == "running"
    readers[1].close()
    second.close()


def test_past_max_connections_a_connection_is_closed_at_once(corral: Corral) -> None:
    port = free_port()
    corral.write(
        f"""
        [service.echo]
        exec = ["cat"]
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        accept = true
        max_connections = 2
        """
    )
    corral.up()
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    for sock in held:
        sock.sendall(b"x\n")
        assert sock.recv(10) == b"x\n"  # both served
    extra = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert extra.recv(10) == b""  # closed by corral at once, no instance for it
    assert len([r for r in corral.status("echo") if r["instance"]]) == 2
    assert "max_connections (2) reached: closed one" in corral.ok("logs", "echo")
    held.pop().close()
    wait_until(lambda: len([r for r in corral.status("echo") if r["instance"]]) == 1, 10, "one")
    third = socket.create_connection(("127.0.0.1", port), timeout=10)
    third.sendall(b"y\n")
    assert third.recv(10) == b"y\n"  # room again
    for sock in (*held, extra, third):
        sock.close()


def test_a_unix_socket_is_made_with_its_mode_before_the_service_starts(corral: Corral) -> None:
    path = corral.root / "run" / "api.sock"
    corral.write(
        f"""
        [service.api]
        exec = {server(corral.root)}
        sockets = [{{ listen = "unix:run/api.sock", mode = "0660" }}]
        activate = "on-connection"
        """
    )
    corral.up()
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o660
    assert corral.one("api")["state"] == "waiting"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(str(path))
        assert sock.makefile().readline().startswith("hello ")


def test_a_socket_that_cannot_be_bound_fails_each_start_until_it_can(corral: Corral) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    corral.write(
        f"""
        [service.web]
        exec = {server(corral.root)}
        sockets = [{{ listen = "127.0.0.1:{port}" }}]
        autostart = false
        """
    )
    corral.up()
    result = corral.run("start", "web")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stdout + (
        result.stderr
    )
    blocker.close()
    corral.ok("start", "web")
    assert hello(port) == f"hello {corral.one('web')['pid']}"
