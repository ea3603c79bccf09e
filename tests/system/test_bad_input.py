"""Bad configs, bad requests, bad users, vanished clients: clear errors, nothing else touched."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from tests.conftest import missing
from tests.system.conftest import Corral, pid_alive, wait_until


def _raw(path: str, payload: bytes, read: bool = True) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon refused before reading all of it; its reply is still there
        if not read:
            return b""
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_config_check_names_file_service_key_and_line(corral: Corral) -> None:
    corral.write(
        """
        [service.web]
        exec = "sleep 1"
        restart = "sometimes"
        frobnicate = true

        [service.db]
        exec = []
        """
    )
    result = corral.run("config", "check")
    assert result.returncode == 1
    err = result.stderr
    assert "corral.toml:4: service.web.restart" in err and '"on-failure"' in err
    assert "corral.toml:5: service.web.frobnicate: unknown key" in err
    assert "service.db.exec" in err
    good = corral.write('[service.a]\nexec = "sleep 1"\n', "good.toml")
    assert corral.run("config", "check", "-c", str(good)).returncode == 0
    broken = corral.write("[service.a\nexec = 1\n", "broken.toml")
    result = corral.run("config", "check", "-c", str(broken))
    assert (
        result.returncode == 1
        and "broken.toml:1" in result.stderr
        and "invalid TOML" in result.stderr
    )


def test_up_with_a_bad_config_exits_1_and_says_where(corral: Corral) -> None:
    corral.write('[service.a]\nexec = "sleep 1"\nstop_signal = "NOPE"\n')
    process = corral.up(wait=False)
    assert process.wait(timeout=20) == 1
    assert "corral.toml:3: service.a.stop_signal" in corral.log()
    home = _own_cgroup_dir()
    if home is not None:  # the cgroup probe, begun before the config was read, left nothing
        assert not os.path.exists(os.path.join(home, f"corral-{process.pid}"))


def _own_cgroup_dir() -> str | None:
    """This process's cgroup v2 directory (where a daemon it starts makes ``corral-PID``)."""
    with open("/proc/self/mounts") as mounts:
        found = [line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]]
    with open("/proc/self/cgroup") as handle:
        own = [line[3:].strip() for line in handle if line.startswith("0::")]
    if not found or not own:
        return None
    return os.path.join(found[0], own[0].lstrip("/"))


def test_garbage_requests_get_errors_and_the_connection_survives(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up()
    pid = corral.wait_state("a", "running")["pid"]
    for garbage in (b"not json\n", b"[1,2]\n", b'{"cmd": 5}\n', b'{"cmd": "explode"}\n',
                    b'{"cmd": "start", "targets": "a"}\n', b'{"cmd": "status", "x": 1}\n',
                    b"\xff\xfe\n"):  # fmt: skip
        reply = json.loads(_raw(corral.socket, garbage))
        assert reply["ok"] is False and reply["error"]["code"] == 2 and reply["error"]["message"]
    # several requests on one connection, garbage in between
    data = _raw(corral.socket, b'nonsense\n{"cmd": "ping"}\n', read=True)
    assert json.loads(data.split(b"\n")[0])["ok"] is False
    assert corral.one("a")["pid"] == pid and pid_alive(pid)


def test_a_client_that_vanishes_mid_request_changes_nothing_else(corral: Corral) -> None:
    corral.write(
        """
        [service.slow]
        exec = ["sleep", "60"]
        pre_start = "sleep 1"
        autostart = false

        [service.other]
        exec = ["sleep", "60"]
        """
    )
    corral.up()
    other = corral.wait_state("other", "running")["pid"]
    _raw(corral.socket, b'{"cmd": "start", "targets": [{"name": "slow"}]}\n', read=False)
    _raw(corral.socket, b'{"cmd": "sta', read=False)  # half a request, then gone
    corral.wait_state("slow", "running", 10)  # the start carried on without its client
    assert corral.one("other")["pid"] == other


def test_a_huge_request_line_is_refused(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up()
    reply = _raw(corral.socket, b'{"cmd": "ping", "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}\n')
    assert b"too long" in reply
    corral.ok("status")


def test_unknown_user_and_missing_cwd_fail_that_service_only(corral: Corral) -> None:
    corral.write(
        """
        [service.nobodyhome]
        exec = ["sleep", "60"]
        user = "no-such-user-here"
        autostart = false

        [service.nowhere]
        exec = ["sleep", "60"]
        cwd = "/no/such/dir"
        autostart = false

        [service.fine]
        exec = ["sleep", "60"]
        """
    )
    corral.up()
    fine = corral.wait_state("fine", "running")["pid"]
    result = corral.run("start", "nobodyhome")
    assert result.returncode == 1 and "no-such-user-here" in result.stderr
    result = corral.run("start", "nowhere")
    assert result.returncode == 1 and "/no/such/dir" in result.stderr
    assert corral.one("fine")["pid"] == fine


def test_runs_as_another_user_when_root(corral: Corral) -> None:
    """``user`` alone gives the process that user's uid, primary gid and groups, as ``id``
    lists them: not root's gid 0 nor root's groups."""
    if os.getuid() != 0:
        missing("root (to run a service as another user)")
    corral.write('[service.asnobody]\nscript = "id -un; sleep 60"\nuser = "nobody"\n')
    corral.up()
    pid = corral.wait_state("asnobody", "running")["pid"]
    wait_until(lambda: "nobody" in corral.ok("logs", "asnobody"), 5, "id -un's output")
    uid, gid = _id_of_nobody("-u"), _id_of_nobody("-g")
    with open(f"/proc/{pid}/status") as status:
        fields = {
            key: value.split()
            for key, _, value in (line.partition(":") for line in status)
            if key in ("Uid", "Gid", "Groups")
        }
    assert fields == {
        "Uid": [uid] * 4,
        "Gid": [gid] * 4,
        "Groups": sorted(_id_of_nobody("-G").split(), key=int),
    }


def _id_of_nobody(flag: str) -> str:
    return subprocess.run(
        ["id", flag, "nobody"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_service_that_never_reads_stdin_is_fine(corral: Corral) -> None:
    corral.write('[service.reader]\nscript = "cat; echo stdin-closed; sleep 60"\n')
    corral.up()
    corral.wait_state("reader", "running")
    wait_until(lambda: "stdin-closed" in corral.ok("logs", "reader"), 5, "cat to see EOF")
