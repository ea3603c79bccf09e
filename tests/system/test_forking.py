"""``type = "forking"`` with real forking daemons: nginx in its classic mode, and small sh
daemons that write their pid file before or after the launcher exits. A daemon that called
setsid and rewrote its environment is found through its pid file, with or without cgroups,
and nothing of it is left behind by a stop, a destroy or a failed start."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.system.conftest import Corral, free_port, pid_alive, wait_until

#: A daemon that leaves everything corral could know it by: it double-forks, calls setsid
#: (its own session and process group) and execs with an empty environment (no CORRAL_*).
ESCAPE = "setsid env -i sleep 600"


def ppid_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


@pytest.fixture(params=["cgroups", "no-cgroups"])
def cgroups_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Both ways corral keeps track of a service's processes."""
    return {"CORRAL_CGROUPS": "0"} if request.param == "no-cgroups" else {}


def test_a_pid_file_written_before_the_launcher_exits_is_seen(corral: Corral) -> None:
    """systemd requires a forking daemon to write its pid file before the launcher exits; the
    watch must see one that is already there when the launcher's exit is recorded."""
    pidfile = corral.root / "early.pid"
    corral.write(
        f"""
        [service.early]
        script = "{ESCAPE} & echo $! > {pidfile}; sleep 0.2; exit 0"
        type = "forking"
        pid_file = "{pidfile}"
        timeout_start = 5
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "early", timeout=15)
    row = corral.one("early")
    assert row["state"] == "running" and row["pid"] == int(pidfile.read_text())
    corral.ok("stop", "early")
    wait_until(lambda: not pid_alive(row["pid"]), 5, "the daemon to be stopped")


def test_a_pid_file_written_after_the_launcher_exits_is_waited_for(corral: Corral) -> None:
    pidfile = corral.root / "late.pid"
    corral.write(
        f"""
        [service.late]
        script = "( {ESCAPE} & p=$!; sleep 0.6; echo $p > {pidfile} ) & exit 0"
        type = "forking"
        pid_file = "{pidfile}"
        timeout_start = 5
        autostart = false
        """
    )
    corral.up()
    corral.ok("start", "late", timeout=15)
    row = corral.one("late")
    assert row["state"] == "running" and row["pid"] == int(pidfile.read_text())
    corral.ok("stop", "late")
    wait_until(lambda: not pid_alive(row["pid"]), 5, "the daemon to be stopped")


def test_a_failed_forking_start_kills_what_its_pid_file_names(
    corral: Corral, cgroups_env: dict[str, str]
) -> None:
    """The launcher never exits, so the start times out; the daemon it already started and
    named in the pid file has left the launcher's group and environment, and must go too."""
    pidfile = corral.root / "hung.pid"
    corral.write(
        f"""
        [service.hung]
        script = "{ESCAPE} & echo $! > {pidfile}; exec sleep 600"
        type = "forking"
        pid_file = "{pidfile}"
        timeout_start = 1
        autostart = false
        """
    )
    corral.up(env=cgroups_env)
    result = corral.run("start", "hung", timeout=30)
    assert result.returncode == 1, result.stderr
    daemon = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 5, "pid"))
    corral.wait_state("hung", "failed", 10)
    wait_until(lambda: not pid_alive(daemon), 5, "the pid file's daemon to be killed")


def test_destroy_kills_what_the_pid_file_names(corral: Corral, cgroups_env: dict[str, str]) -> None:
    pidfile = corral.root / "d.pid"
    corral.write(
        f"""
        [service.d]
        script = "{ESCAPE} & echo $! > {pidfile}; exit 0"
        type = "forking"
        pid_file = "{pidfile}"
        autostart = false
        """
    )
    corral.up(env=cgroups_env)
    corral.ok("start", "d", timeout=15)
    pid = corral.one("d")["pid"]
    assert pid == int(pidfile.read_text())
    corral.ok("destroy", "d")
    wait_until(lambda: not pid_alive(pid), 5, "the daemon to be killed")


def test_a_stale_pid_file_naming_a_stranger_is_not_trusted(corral: Corral) -> None:
    """A pid file left from another run that names some unrelated process (here: one the test
    started, not a child of corral's) is never adopted nor killed."""
    stranger = os.spawnlp(os.P_NOWAIT, "sleep", "sleep", "600")
    pidfile = corral.root / "stale.pid"
    pidfile.write_text(f"{stranger}\n")
    try:
        corral.write(
            f"""
            [service.stale]
            script = "exit 0"
            type = "forking"
            pid_file = "{pidfile}"
            timeout_start = 1
            autostart = false
            """
        )
        corral.up()
        assert corral.run("start", "stale", timeout=30).returncode == 1
        corral.wait_state("stale", "failed", 10)
        assert pid_alive(stranger)
    finally:
        os.kill(stranger, signal.SIGKILL)
        os.waitpid(stranger, 0)


# -- nginx, in its classic forking mode --------------------------------------------------------


@pytest.fixture
def nginx_conf(tmp_path: Path) -> Iterator[tuple[Path, Path, int]]:
    """An nginx configuration of its own in a temp dir: daemon on, master and two workers,
    its pid file, logs and temp dirs there. Yields (conf, pid file, port)."""
    if shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin") is None:
        missing("nginx")
    base = tmp_path / "nginx"
    base.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(base, 0o755)
    port = free_port()
    pidfile = base / "nginx.pid"
    conf = base / "nginx.conf"
    conf.write_text(
        f"""
daemon on;
master_process on;
worker_processes 2;
pid {pidfile};
error_log {base}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi;
    scgi_temp_path {base}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "served by nginx\\n"; }}
    }}
}}
"""
    )
    yield conf, pidfile, port


def nginx_pids() -> set[int]:
    """Every nginx process on the machine, by the name the kernel gives it."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "nginx":
                        found.add(int(entry))
            except OSError:
                pass
    return found


def test_nginx_forking_is_ready_then_stopped_without_a_trace(
    corral: Corral, nginx_conf: tuple[Path, Path, int], cgroups_env: dict[str, str]
) -> None:
    conf, pidfile, port = nginx_conf
    before = nginx_pids()
    corral.write(
        f"""
        [service.nginx]
        exec = ["nginx", "-c", "{conf}", "-p", "{conf.parent}"]
        type = "forking"
        pid_file = "{pidfile}"
        ready = {{ http = "http://127.0.0.1:{port}/", timeout = 10 }}
        timeout_start = 15
        autostart = false
        """
    )
    corral.up(env=cgroups_env)
    corral.ok("start", "nginx", timeout=30)
    row = corral.one("nginx")
    master = int(pidfile.read_text())
    assert row["state"] == "running" and row["ready"] and row["pid"] == master
    # The master left the launcher's session and was reparented to corral (the subreaper).
    assert os.getsid(master) == master
    assert ppid_of(master) == corral.process.pid  # type: ignore[union-attr]
    ours = nginx_pids() - before
    assert master in ours and len(ours) >= 3  # the master and its two workers
    corral.ok("stop", "nginx", timeout=30)
    wait_until(lambda: not (nginx_pids() & ours), 10, "every nginx process to be gone")
    assert corral.one("nginx")["state"] == "waiting"


def test_without_cgroups_corral_says_so_once(corral: Corral) -> None:
    corral.write('[service.s]\nexec = ["sleep", "600"]\n')
    corral.up(env={"CORRAL_CGROUPS": "0"})
    corral.wait_state("s", "running")
    assert corral.log().count("no cgroup v2 hierarchy corral may use here") == 1
