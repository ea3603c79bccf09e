"""One adapter per manager: its configuration for N ``sleep MARK`` services with automatic
restart and no start delay, how to launch it, query its status, stop everything, and clean up.

Fairness settings (also in bench/README.md): every run directory is on tmpfs (/dev/shm), as
real installs use /run; services print nothing; restart delays are 0 where the manager allows
it (s6-supervise and supervisord keep a fixed one-second throttle that cannot be turned off;
circus respawns on its ``check_delay`` timer, set to its minimum useful value).
Each manager is started in its own session, and cleanup kills that process group and the
marked services it left (found by their unique argv), never anything by process name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / ".venv" / "bin"
CORRAL = Path(sys.executable).parent / "corral"
SLEEP = shutil.which("sleep") or "/bin/sleep"


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (by scanning /proc once)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


class Manager:
    name = "?"
    status_note = ""

    def __init__(self, workdir: Path, n: int, mark: str) -> None:
        self.dir = workdir
        self.n = n
        self.mark = mark
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)

    # -- to override ---------------------------------------------------------------------

    def configure(self) -> None: ...

    def argv(self) -> list[str]:
        raise NotImplementedError

    def status_argv(self) -> list[str] | None:
        return None

    def status_argvs(self) -> list[list[str]]:
        """The commands one full status takes, run one after another (each exec'd by the
        harness, no shell between: a shell's start would be timed for this manager only)."""
        argv = self.status_argv()
        return [] if argv is None else [argv]

    def stop_all(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)

    # -- shared --------------------------------------------------------------------------

    def launch(self) -> None:
        log = open(self.dir / "manager.log", "ab")  # noqa: SIM115 - kept for the child
        self.proc = subprocess.Popen(
            self.argv(), cwd=self.dir, env=self.env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

    def own_pids(self, services: set[int]) -> list[int]:
        """The manager's own processes: itself and what it runs that is not a service."""
        assert self.proc is not None
        return [self.proc.pid, *(p for p in descendants(self.proc.pid) if p not in services)]

    def status(self) -> float:
        """Seconds for one full status query through the manager's own CLI."""
        argvs = self.status_argvs()  # made before the clock starts, globs expanded
        if not argvs:
            return float("nan")
        began = time.perf_counter()
        for argv in argvs:
            self._run_waited(argv)
        return time.perf_counter() - began

    def _run_waited(self, argv: list[str]) -> None:
        query = subprocess.Popen(argv, cwd=self.dir, env=self.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        # A blocking wait, bounded by a watchdog: Popen.wait(timeout) polls with sleeps that
        # double up to 50 ms, which rounded every figure up to 3.5, 7.5, ... 31.5, 63.5 ms.
        watchdog = threading.Timer(120, query.kill)
        watchdog.start()
        try:
            query.wait()
        finally:
            watchdog.cancel()

    #: Seconds to let the manager end by itself after its stop, before it is killed.
    exit_grace = 0.0

    def cleanup(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=self.exit_grace)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


class Floor(Manager):
    """The physical limit: a plain loop of posix_spawn, respawning on exit."""

    name = "floor"

    def argv(self) -> list[str]:
        return [sys.executable, str(BENCH / "floor.py"), str(self.n), SLEEP, self.mark]


class Corral(Manager):
    name = "corral"

    def configure(self) -> None:
        services = "".join(
            f'[service.s{i}]\nexec = ["{SLEEP}", "{self.mark}"]\nrestart = "always"\n'
            f"restart_delay = 0\nrestart_limit = [1000000, 1]\n\n"
            for i in range(self.n)
        )
        (self.dir / "corral.toml").write_text(services)
        self.env["CORRAL_SOCKET"] = str(self.dir / "control.sock")
        self.env["CORRAL_WATCH"] = "0"

    def argv(self) -> list[str]:
        return [str(CORRAL), "up", "-c", "corral.toml"]

    def status_argv(self) -> list[str]:
        return [str(CORRAL), "status"]

    def stop_all(self) -> None:
        subprocess.run([str(CORRAL), "down"], env=self.env, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        # ``corral down`` returns once every service is down; the daemon then removes its
        # cgroups and exits. Killed before that, it would leave them behind.
        self.exit_grace = 30.0


class Supervisord(Manager):
    name = "supervisord"

    def configure(self) -> None:
        sock = self.dir / "supervisor.sock"
        head = f"""[unix_http_server]
file={sock}

[supervisord]
nodaemon=true
logfile={self.dir}/supervisord.log
pidfile={self.dir}/supervisord.pid
minfds=16384
minprocs=4096

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{sock}
"""
        programs = "".join(
            f"[program:s{i}]\ncommand={SLEEP} {self.mark}\nautorestart=true\nstartsecs=0\n"
            f"startretries=1000000\nstdout_logfile=NONE\nstderr_logfile=NONE\n\n"
            for i in range(self.n)
        )
        (self.dir / "supervisord.conf").write_text(head + "\n" + programs)

    def argv(self) -> list[str]:
        return [str(PEERS / "supervisord"), "-c", "supervisord.conf"]

    def status_argv(self) -> list[str]:
        return [str(PEERS / "supervisorctl"), "-c", "supervisord.conf", "status"]

    def stop_all(self) -> None:
        subprocess.run([*self.status_argv()[:-1], "stop", "all"], cwd=self.dir, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


class Circus(Manager):
    name = "circus"

    def configure(self) -> None:
        self.endpoint = f"ipc://{self.dir}/circus.sock"
        head = f"""[circus]
endpoint = {self.endpoint}
pubsub_endpoint = ipc://{self.dir}/pubsub.sock
statsd = False
check_delay = 0.1
warmup_delay = 0
"""
        watchers = "".join(
            f"[watcher:s{i}]\ncmd = {SLEEP}\nargs = {self.mark}\nnumprocesses = 1\n"
            f"respawn = True\nwarmup_delay = 0\n\n"
            for i in range(self.n)
        )
        (self.dir / "circus.ini").write_text(head + "\n" + watchers)

    def argv(self) -> list[str]:
        return [str(PEERS / "circusd"), "circus.ini"]

    def status_argv(self) -> list[str]:
        return [str(PEERS / "circusctl"), "--endpoint", self.endpoint, "status"]

    def stop_all(self) -> None:
        subprocess.run([str(PEERS / "circusctl"), "--endpoint", self.endpoint, "stop"],
                       timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


class _ScanDir(Manager):
    """s6, runit and daemontools: one directory per service with a ``run`` script."""

    def configure(self) -> None:
        self.svc = self.dir / "svc"
        self.svc.mkdir()
        for i in range(self.n):
            service = self.svc / f"s{i}"
            service.mkdir()
            run = service / "run"
            run.write_text(f"#!/bin/sh\nexec {SLEEP} {self.mark}\n")
            run.chmod(0o755)
        # runsvdir and svscan skip a directory modified in the current second: let it pass.
        time.sleep(1.05)

    def dirs(self) -> list[str]:
        """``DIR/*`` as a shell expands it: every entry but the hidden ones (s6-svscan's
        ``.s6-svscan``), in sorted order."""
        return sorted(str(path) for path in self.svc.iterdir() if not path.name.startswith("."))


class S6(_ScanDir):
    name = "s6"

    def argv(self) -> list[str]:
        return ["s6-svscan", "-c", str(self.n + 16), "-t0", str(self.svc)]  # default max: 500

    def status_argvs(self) -> list[list[str]]:
        # No all-services form: one s6-svstat per service directory, as a shell loop over
        # them would run (without the shell's own start, which no other manager pays).
        return [["s6-svstat", d] for d in self.dirs()]

    def stop_all(self) -> None:
        subprocess.run(["s6-svscanctl", "-t", str(self.svc)], timeout=60)


class Runit(_ScanDir):
    name = "runit"

    def argv(self) -> list[str]:
        return ["runsvdir", "-P", str(self.svc)]

    def status_argv(self) -> list[str]:
        return ["sv", "status", *self.dirs()]  # ``sv status DIR/*``, the glob expanded here

    def stop_all(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGHUP)  # runsvdir: TERM every runsv, which stop theirs


class Daemontools(_ScanDir):
    name = "daemontools"

    def argv(self) -> list[str]:
        return ["svscan", str(self.svc)]

    def status_argv(self) -> list[str]:
        return ["svstat", *self.dirs()]  # ``svstat DIR/*``, the glob expanded here

    def stop_all(self) -> None:
        # As daemontools' own shutdown goes: svscan first, or its rescan (every 5 s) starts a
        # supervise again that -x let go, and that one starts its service again.
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        subprocess.run(["svc", "-dx", *self.dirs()], timeout=60)


ALL: dict[str, type[Manager]] = {
    m.name: m for m in (Floor, Corral, S6, Runit, Daemontools, Supervisord, Circus)
}
