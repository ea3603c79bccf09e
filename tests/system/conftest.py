"""Real daemons in temporary directories, driven through the real CLI and socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CORRAL = [sys.executable, "-m", "corral"]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail (never hang) after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Corral:
    """One project directory with a corral.toml, its daemon, and a CLI pointed at it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = str(root / ".corral" / "control.sock")
        self.process: subprocess.Popen[bytes] | None = None
        self.output = root / "up.out"

    def write(self, text: str, name: str = "corral.toml") -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text))
        return path

    def up(
        self, *extra: str, wait: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [*CORRAL, "up", *extra],
                env={**os.environ, **(env or {})},
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if wait:
            wait_until(lambda: self.ping(), 15, "the daemon's socket")
        return self.process

    def ping(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"corral up exited {self.process.returncode}:\n{self.log()}")
        return self.run("status", timeout=10).returncode == 0

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def env(self) -> dict[str, str]:
        """The environment of a CLI call aimed at this daemon."""
        return dict(os.environ, CORRAL_SOCKET=self.socket)

    def run(
        self, *args: str, timeout: float = 30, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = self.env()
        full_env.update(env or {})
        return subprocess.run(
            [*CORRAL, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )

    def ok(self, *args: str, timeout: float = 30) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, (
            f"corral {' '.join(args)} -> {result.returncode}\n{result.stderr}"
        )
        return result.stdout

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """One request over the raw protocol (faster than the CLI, for storms)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(self.socket)
            sock.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
            with sock.makefile("rb") as reader:
                reply: dict[str, Any] = json.loads(reader.readline())
        return reply

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok("status", "--json"))
        return [r for r in rows if name is None or r["name"] == name]

    def one(self, name: str) -> dict[str, Any]:
        rows = self.status(name)
        assert len(rows) == 1, rows
        return rows[0]

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_until(
            lambda: (row := self.one(name))["state"] == state and row,
            timeout,
            f"{name} to be {state}",
        )

    def down(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.run("down", timeout=30)
            self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@pytest.fixture
def corral(tmp_path: Path) -> Iterator[Corral]:
    instance = Corral(tmp_path)
    try:
        yield instance
    finally:
        instance.down()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    return True


def env_of(pid: int) -> dict[str, str]:
    """The environment a process was started with."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [i.decode().partition("=") for i in f.read().split(b"\0") if i]
    return {k: v for k, _, v in items}


def uses_cgroups(daemon_pid: int) -> bool:
    """Whether a daemon keeps its services in cgroups, as it does where the machine gives it a
    writable cgroup v2 hierarchy: its ``corral-PID`` cgroup is there once its socket accepts."""
    with open("/proc/self/mounts") as mounts:
        fields = [line.split() for line in mounts]
    mount = next((f[1] for f in fields if len(f) > 2 and f[2] == "cgroup2"), None)
    with open(f"/proc/{daemon_pid}/cgroup") as handle:
        own = next((line[3:].strip() for line in handle if line.startswith("0::")), None)
    if mount is None or own is None:
        return False
    root = os.path.join(mount, own.lstrip("/"), f"corral-{daemon_pid}")
    return os.path.exists(os.path.join(root, "cgroup.kill"))
