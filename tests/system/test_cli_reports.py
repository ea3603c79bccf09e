"""Commands that report what happened, with a real daemon: a start that dies within its grace
fails, every start/stop/restart says how each instance ended (and, on a terminal, what it
waits for meanwhile), waits that are overruled return, ``all`` and ``--socket`` before the
verb, ``wait --timeout`` naming what it gave up on, and the protocol version exchanged."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.system.conftest import CORRAL, Corral, wait_until

#: The full argparse CLI (the quick path is what ``corral.run`` takes for these verbs).
FULL = [sys.executable, "-c", "import sys; from corral.cli.main import main; sys.exit(main())"]


def _popen(corral: Corral, *args: str, command: list[str] = CORRAL) -> subprocess.Popen[str]:
    """A CLI call left running (a wait that something else must end)."""
    return subprocess.Popen(
        [*command, *args], cwd=corral.root, env=corral.env(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _finish(process: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str, str]:
    """Its exit code and output; fails (and kills it) if it does not end in time."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"{process.args} did not return within {timeout}s") from None
    return process.returncode, out, err


# -- a start that dies within its grace is a failed start ---------------------------------

DYING = """
[service.dying]
script = "echo starting up; echo cannot bind to port 80 >&2; sleep 0.3; exit 3"
restart = "{restart}"
autostart = false
"""


def test_a_start_whose_process_dies_within_its_grace_exits_1_with_its_exit_and_last_lines(
    corral: Corral,
) -> None:
    corral.write(DYING.format(restart="no"))
    corral.up()
    result = corral.run("start", "dying")
    assert result.returncode == 1, result
    assert "dying: main process exited with status 3 within its start grace" in result.stderr
    assert "dying | starting up" in result.stderr
    assert "dying | cannot bind to port 80" in result.stderr
    assert result.stdout == ""


def test_with_restart_always_a_death_and_respawn_within_the_grace_fails_the_start(
    corral: Corral,
) -> None:
    corral.write(DYING.format(restart="always"))
    corral.up()
    result = corral.run("start", "dying")
    assert result.returncode == 1, result
    assert "within its start grace" in result.stderr
    assert "corral restarts it" in result.stderr
    assert corral.one("dying")["goal"] == "start"  # it goes on trying, as its policy says


def test_a_restart_whose_process_dies_within_its_grace_fails_too(corral: Corral) -> None:
    corral.write(
        f"""
        [service.flaky]
        script = "if [ -e {corral.root}/second ]; then exit 4; fi; touch {corral.root}/second; exec sleep 600"
        restart = "no"
        """
    )
    corral.up()
    corral.wait_state("flaky", "running")
    result = corral.run("restart", "flaky")
    assert result.returncode == 1, result
    assert "flaky: main process exited with status 4 within its start grace" in result.stderr


def test_a_notify_service_that_dies_before_it_is_ready_fails_its_start_at_once(
    corral: Corral,
) -> None:
    corral.write(
        """
        [service.early]
        script = "echo no config file; exit 2"
        type = "notify"
        restart = "always"
        restart_delay = 5
        autostart = false
        """
    )
    corral.up()
    began = time.monotonic()
    result = corral.run("start", "early")
    assert result.returncode == 1, result
    assert "early: main process exited with status 2 before it was ready" in result.stderr
    assert "early | no config file" in result.stderr
    assert time.monotonic() - began < 5, "it waited for the respawn"


def test_start_waits_out_the_grace_but_not_for_a_service_up_longer_than_it(
    corral: Corral,
) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        start_grace = 2
        autostart = false
        """
    )
    corral.up()
    began = time.monotonic()
    corral.ok("start", "web")
    assert time.monotonic() - began >= 2
    began = time.monotonic()
    corral.ok("start", "web")  # up for more than its grace: nothing to wait for
    assert time.monotonic() - began < 1.5


def test_no_wait_waits_for_nothing(corral: Corral) -> None:
    corral.write(DYING.format(restart="no"))
    corral.up()
    result = corral.run("start", "--no-wait", "dying")  # waiting, it would see the death
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# -- one line per instance; the live line on a terminal ------------------------------------

LINES = """
[service.web]
exec = ["sleep", "600"]
autostart = false
start_grace = 0

[service.setup]
script = "echo set up"
type = "oneshot"
autostart = false
"""


def test_start_stop_and_restart_say_one_line_per_instance(corral: Corral) -> None:
    corral.write(LINES)
    corral.up()
    for command in (CORRAL, FULL):
        started = _finish(_popen(corral, "start", "web", "setup", command=command))
        pid = corral.one("web")["pid"]
        assert started == (0, f"web: running (pid {pid})\nsetup: done\n", "")
        restarted = _finish(_popen(corral, "restart", "web", command=command))
        pid = corral.one("web")["pid"]
        assert restarted == (0, f"web: running (pid {pid})\n", "")
        stopped = _finish(_popen(corral, "stop", "web", "setup", command=command))
        assert stopped == (0, "web: stopped\nsetup: stopped\n", "")


PROBED = """
[service.web]
exec = ["sleep", "600"]
ready = {{ exec = "test -e {flag}", interval = 0.1 }}
autostart = false
"""


def _on_a_terminal(corral: Corral, command: list[str], *args: str) -> tuple[int, str, bytes]:
    """Run the CLI with stderr on a pseudo-terminal, creating the flag file once the live
    line shows; its exit code, stdout, and all it wrote to the terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*command, *args], cwd=corral.root, env=corral.env(), stdout=subprocess.PIPE,
        stderr=follower, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the last writer closed it
                    break
                if not chunk:
                    break
                seen += chunk
            if b"exec probe, 1 s" in seen:
                (corral.root / "flag").touch()
            if process.poll() is not None and not ready:
                break
        assert process.stdout is not None
        out = process.stdout.read().decode()
        return process.wait(timeout=10), out, seen
    finally:
        os.close(leader)
        if process.poll() is None:
            process.kill()


def test_on_a_terminal_the_wait_shows_what_it_waits_for_and_then_erases_it(
    corral: Corral,
) -> None:
    corral.write(PROBED.format(flag=corral.root / "flag"))
    corral.up()
    for command in (CORRAL, FULL):
        (corral.root / "flag").unlink(missing_ok=True)
        code, out, seen = _on_a_terminal(corral, command, "start", "web")
        assert code == 0, seen
        assert out == f"web: running (pid {corral.one('web')['pid']})\n"
        text = seen.decode()
        assert "\r\x1b[Kwaiting for web: exec probe, 0 s" in text, text
        assert "\r\x1b[Kwaiting for web: exec probe, 1 s" in text, text
        assert text.endswith("\r\x1b[K"), "the live line is erased at the end"
        corral.ok("stop", "web")


def test_not_on_a_terminal_nothing_but_the_lines_is_said(corral: Corral) -> None:
    corral.write(PROBED.format(flag=corral.root / "flag"))
    corral.up()
    process = _popen(corral, "start", "web")
    wait_until(lambda: corral.one("web")["state"] == "spawned", 10, "web to wait for its probe")
    (corral.root / "flag").touch()
    code, out, err = _finish(process)
    assert (code, err) == (0, "")
    assert out == f"web: running (pid {corral.one('web')['pid']})\n"


def _progress(corral: Corral, cmd: str, **args: Any) -> tuple[list[Any], dict[str, Any]]:
    """A request with ``progress`` over the raw socket: the progress lists, and the reply."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(corral.socket)
        request = {"cmd": cmd, "v": 2, "progress": True, **args}
        sock.sendall(json.dumps(request).encode() + b"\n")
        progress = []
        with sock.makefile("rb") as reader:
            while True:
                message = json.loads(reader.readline())
                if "progress" not in message:
                    return progress, message
                progress.append(message["progress"])


def test_progress_names_the_requirements_then_the_readiness_it_waits_for(
    corral: Corral,
) -> None:
    flag = corral.root / "flag"
    corral.write(
        f"""
        [service.db]
        exec = ["sleep", "600"]
        ready = {{ exec = "test -e {flag}", interval = 0.1 }}
        autostart = false

        [service.web]
        exec = ["sleep", "600"]
        requires = ["db"]
        pre_start = "sleep 0.3"
        start_grace = 0.5
        autostart = false
        """
    )
    corral.up()

    def release() -> None:
        wait_until(lambda: corral.one("db")["state"] == "spawned", 10, "db to be probed")
        flag.touch()

    threading.Thread(target=release, daemon=True).start()
    began = time.time()
    progress, reply = _progress(corral, "start", targets=[{"name": "web"}])
    assert reply["ok"], reply
    said = [[(p["name"], p["waiting_for"]) for p in items] for items in progress]
    assert said == [
        [("web", "requirements: db")],
        [("web", "pre-start hook")],
        [("web", "start grace")],
    ], said
    assert all(began - 1 <= p["since"] <= time.time() for items in progress for p in items)


def test_progress_of_a_stop_names_its_hook_then_the_exit_it_waits_for(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sh", "-c", "trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.1; done"]
        pre_stop = "sleep 0.5"
        start_grace = 0
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    progress, reply = _progress(corral, "stop", targets=[{"name": "web"}])
    assert reply["ok"], reply
    said = [[(p["name"], p["waiting_for"]) for p in items] for items in progress]
    assert said == [[("web", "pre-stop hook")], [("web", "exit after SIGTERM")]], said


# -- waits that are overruled return --------------------------------------------------------


def test_a_stop_overruled_by_a_start_during_pre_stop_returns_1(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        pre_stop = "sleep 2"
        start_grace = 0
        """
    )
    corral.up()
    pid = corral.wait_state("web", "running")["pid"]
    stop = _popen(corral, "stop", "web")
    corral.wait_state("web", "pre-stop")
    corral.ok("start", "web")
    code, out, err = _finish(stop)
    assert (code, out) == (1, ""), err
    assert err == "corral: web: started again before it stopped\n"
    assert corral.one("web")["pid"] == pid


def test_a_stop_overruled_by_a_start_while_killed_returns_1(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
        stop_timeout = 2
        start_grace = 0
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    stop = _popen(corral, "stop", "web")
    corral.wait_state("web", "killed")
    start = _popen(corral, "start", "web")
    code, _, err = _finish(stop)
    assert code == 1 and "web: started again before it stopped" in err, err
    assert _finish(start)[0] == 0
    assert corral.one("web")["state"] == "running"


def test_a_destroy_overruled_by_a_start_returns_1(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sleep", "600"]
        start_grace = 0

        [service.holder]
        exec = ["sleep", "600"]
        stop_on = "stopping web"
        pre_stop = "sleep 2"
        start_grace = 0
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    corral.wait_state("holder", "running")
    destroy = _popen(corral, "destroy", "web")
    corral.wait_state("holder", "pre-stop")  # web's stopping is held meanwhile
    corral.ok("start", "web", "--no-wait")
    code, _, err = _finish(destroy)
    assert code == 1 and "web: started again before it stopped" in err, err


def test_a_start_cut_short_by_a_stop_says_so(corral: Corral) -> None:
    corral.write(
        """
        [service.hang]
        exec = ["sleep", "600"]
        type = "notify"
        autostart = false
        """
    )
    corral.up()
    start = _popen(corral, "start", "hang")
    corral.wait_state("hang", "spawned")
    corral.ok("stop", "hang")
    assert _finish(start) == (1, "", "corral: hang: stopped before it was ready\n")


def test_a_restart_cut_short_by_a_stop_says_so(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
        stop_timeout = 2
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    restart = _popen(corral, "restart", "web")
    corral.wait_state("web", "killed")
    corral.ok("stop", "web", "--no-wait")
    assert _finish(restart) == (1, "", "corral: web: stopped before it was ready\n")


# -- wait --timeout, all, --socket before the verb ------------------------------------------


def test_wait_timeout_names_the_instances_it_gave_up_on(corral: Corral) -> None:
    corral.write(
        """
        [service.hang]
        exec = ["sleep", "600"]
        type = "notify"

        [service.web]
        exec = ["sleep", "600"]
        """
    )
    corral.up()
    corral.wait_state("web", "running")
    result = corral.run("wait", "--timeout", "0.5")
    assert result.returncode == 1
    assert result.stderr == "corral: timed out waiting for: hang\n"


ALL = """
[service.web]
exec = ["sleep", "600"]
start_grace = 0

[service.db]
exec = ["sleep", "600"]
start_grace = 0

[service.idle]
exec = ["sleep", "600"]
autostart = false
start_grace = 0
"""


def test_all_stops_restarts_and_starts_every_service(corral: Corral) -> None:
    corral.write(ALL)
    corral.up()
    for command in (CORRAL, FULL):
        corral.wait_state("web", "running")
        pids = {name: corral.wait_state(name, "running")["pid"] for name in ("web", "db")}
        assert _finish(_popen(corral, "restart", "all", command=command))[0] == 0
        rows = {row["name"]: row for row in corral.status()}
        assert {n: rows[n]["state"] for n in rows} == {
            "web": "running", "db": "running", "idle": "waiting",
        }  # fmt: skip
        assert all(rows[name]["pid"] != pid for name, pid in pids.items())
        code, out, _ = _finish(_popen(corral, "stop", "all", command=command))
        assert (code, out) == (0, "web: stopped\ndb: stopped\nidle: stopped\n")
        code, out, _ = _finish(_popen(corral, "start", "all", command=command))
        assert code == 0 and out.splitlines()[0].startswith("web: running (pid ")
        assert [line.split(":")[0] for line in out.splitlines()] == ["web", "db"]


def test_a_service_named_all_wins_over_the_word(corral: Corral) -> None:
    corral.write(ALL + '\n[service.all]\nexec = ["sleep", "600"]\nstart_grace = 0\n')
    corral.up()
    corral.wait_state("all", "running")
    assert corral.ok("stop", "all") == "all: stopped\n"
    assert corral.one("web")["state"] == "running"


def test_the_socket_may_come_before_the_verb(corral: Corral, tmp_path: Path) -> None:
    corral.write(ALL)
    corral.up()
    corral.wait_state("web", "running")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_SOCKET"}
    for command in (CORRAL, FULL):
        for args in (["--socket", corral.socket, "status"], [f"--socket={corral.socket}",
                     "stop", "idle"], ["--socket", corral.socket, "logs", "web"]):  # fmt: skip
            result = subprocess.run(
                [*command, *args], cwd=elsewhere, env=env, capture_output=True, text=True,
                timeout=30,
            )  # fmt: skip
            assert result.returncode == 0, (command, args, result.stderr)


# -- the protocol version -------------------------------------------------------------------


def test_hello_answers_the_versions_and_another_version_is_refused(corral: Corral) -> None:
    from corral import __version__

    corral.write(ALL)
    corral.up()
    assert corral.request("hello") == {
        "ok": True, "result": {"protocol": 2, "corral": __version__},
    }  # fmt: skip
    refused = corral.request("stop", v=99, targets=[{"name": "web"}])
    assert refused["error"]["code"] == 4
    assert "protocol version mismatch" in refused["error"]["message"]
    assert corral.one("web")["goal"] == "start", "a refused request does nothing"


def _listening(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(20)
    return server


def _answer_once(server: socket.socket, reply: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """In a thread, take one request and answer it; what gives the request, once taken."""
    taken: list[dict[str, Any]] = []

    def answer() -> None:
        connection, _ = server.accept()
        with connection, connection.makefile("rb") as reader:
            taken.append(json.loads(reader.readline()))
            connection.sendall(json.dumps(reply).encode() + b"\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()

    def request() -> dict[str, Any]:
        thread.join(20)
        assert taken, "no request came"
        return taken[0]

    return request


def test_every_cli_request_carries_the_version_and_a_refusal_is_said_plainly(
    tmp_path: Path,
) -> None:
    """Against a daemon of another version (a socket answering as one would)."""
    path = tmp_path / "other.sock"
    server = _listening(path)
    message = "protocol version mismatch: the client speaks corral protocol 2, this daemon ..."
    refusal = {"ok": False, "error": {"code": 4, "message": message}}
    for command in (CORRAL, FULL):
        for args in (["status"], ["status", "--json"], ["stop", "web"], ["logs", "web"]):
            request = _answer_once(server, refusal)
            result = subprocess.run(
                [*command, "--socket", str(path), *args], capture_output=True, text=True,
                timeout=30,
            )  # fmt: skip
            assert request()["v"] == 2, (command, args)
            assert (result.returncode, result.stderr) == (4, f"corral: {message}\n"), args
    server.close()


def test_a_daemon_of_protocol_1_is_said_to_be_older(tmp_path: Path) -> None:
    path = tmp_path / "old.sock"
    server = _listening(path)
    refusal = {"ok": False, "error": {"code": 2, "message": "status: unknown argument(s) v"}}
    for command in (CORRAL, FULL):
        request = _answer_once(server, refusal)
        result = subprocess.run(
            [*command, "--socket", str(path), "status"], capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
        assert request()["cmd"] == "status"
        assert result.returncode == 4
        assert "the daemon is an older corral" in result.stderr
    server.close()
