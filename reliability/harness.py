"""What every part of the suite shares: a real ``corral up`` in a directory of its own, raw
protocol clients, the measures read from /proc, and the report each part prints.

Nothing here fakes corral: the daemon is the installed one, started as a user starts it, and
every figure is read from the kernel (``/proc``) or timed on the real socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

CORRAL = [sys.executable, "-m", "corral"]
T = TypeVar("T")


class Timeout(AssertionError):
    """A bounded wait ran out (an AssertionError, so pytest shows it as a failed check)."""


def wait_until(
    predicate: Callable[[], T | None], timeout: float, what: str, step: float = 0.05
) -> T:
    """Poll ``predicate`` until it returns something truthy; raise Timeout after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)


class NoReply(Exception):
    """The daemon closed a connection, or did not answer in time, where a reply was due."""


class Client:
    """One persistent connection speaking the raw protocol, a request and a reply at a time."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._reader = self._sock.makefile("rb")

    def send_line(self, line: bytes) -> dict[str, Any]:
        """Send ``line`` as it is; the reply's decoded object (NoReply if none comes)."""
        try:
            self._sock.sendall(line)
            while True:
                reply = self._reader.readline()
                if not reply.endswith(b"\n"):
                    raise NoReply("the daemon closed the connection without a reply")
                decoded: dict[str, Any] = json.loads(reply)
                if "progress" not in decoded or "ok" in decoded:  # progress lines come first
                    return decoded
        except OSError as exc:
            raise NoReply(f"{exc.__class__.__name__}: {exc}") from None

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        return self.send_line(json.dumps({"cmd": cmd, **args}).encode() + b"\n")

    def timed(self, cmd: str, **args: Any) -> tuple[dict[str, Any], float]:
        """A request and how long its reply took, in seconds."""
        began = time.perf_counter()
        reply = self.request(cmd, **args)
        return reply, time.perf_counter() - began

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._reader.close()
            self._sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Daemon:
    """``corral up`` in ``root`` (its own session, so nothing it leaves outlives ``stop``),
    of ``config`` written as its corral.toml."""

    def __init__(
        self,
        root: Path,
        config: str | None,
        env: Mapping[str, str] | None = None,
        nofile: int | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.root = root
        self.config = config
        self.socket = str(root / ".corral" / "control.sock")
        self.output = root / "up.out"
        self.extra_env = dict(env or {})
        self.nofile = nofile  # the daemon's RLIMIT_NOFILE soft limit, if given
        self.die_with_parent = die_with_parent  # SIGTERM when this process ends, however
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the daemon was not started"
        return self.process.pid

    def start(self, timeout: float = 60.0) -> Daemon:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.config is not None:  # else the sources are there already (corral.d/, say)
            (self.root / "corral.toml").write_text(self.config)
        with open(self.output, "ab") as out:
            self.process = subprocess.Popen(
                [*CORRAL, "up"],
                cwd=self.root,
                env={**os.environ, **self.extra_env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=self._in_child,
            )
        wait_until(self._answers, timeout, "the daemon's socket", step=0.05)
        return self

    def _in_child(self) -> None:
        """Between fork and exec: the fd limit, and the signal at this process's end."""
        if self.nofile is not None:
            import resource

            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))
        if self.die_with_parent:
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)

    def _answers(self) -> bool:
        if not self.alive():
            raise AssertionError(f"corral up exited {self.returncode()}:\n{self.log()[-4000:]}")
        try:
            with Client(self.socket, timeout=5) as client:
                return bool(client.request("ping")["ok"])
        except (OSError, NoReply):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def client(self, timeout: float = 30.0) -> Client:
        return Client(self.socket, timeout)

    def request(self, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        """One request on a connection of its own."""
        with self.client(timeout) as client:
            return client.request(cmd, **args)

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CORRAL, *args],
            cwd=self.root,
            env={**os.environ, "CORRAL_SOCKET": self.socket},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def status(self) -> list[dict[str, Any]]:
        reply = self.request("status")
        assert reply["ok"], reply
        rows: list[dict[str, Any]] = reply["result"]
        return rows

    def stop(self, timeout: float = 60.0) -> bool:
        """``corral down``, then the daemon's exit; True if both happened within ``timeout``.
        Whatever is left of its session is SIGKILLed in any case."""
        if self.process is None:
            return True
        clean = False
        try:
            if self.alive():
                self.cli("down", timeout=timeout)
            self.process.wait(timeout=timeout)
            clean = self.process.returncode == 0
        except subprocess.TimeoutExpired:
            clean = False
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        return clean

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# --- what /proc says ---------------------------------------------------------------------


class Proc:
    """One line of ``/proc/PID/stat``: what the checks need of a process."""

    __slots__ = ("pgid", "pid", "ppid", "start", "state")

    def __init__(self, pid: int, state: str, ppid: int, pgid: int, start: int) -> None:
        self.pid, self.state, self.ppid, self.pgid, self.start = pid, state, ppid, pgid, start


def proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return Proc(pid, fields[0], int(fields[1]), int(fields[2]), int(fields[19]))


def process_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := proc(int(entry))) is not None:
            table[found.pid] = found
    return table


def descendants(root: int, table: Mapping[int, Proc]) -> set[int]:
    children: dict[int, list[int]] = {}
    for item in table.values():
        children.setdefault(item.ppid, []).append(item.pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def corral_marks(pid: int) -> dict[str, str]:
    """The ``CORRAL_*`` variables a process was started with ({} if gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return {}
    marks = {}
    for entry in entries:
        if entry.startswith(b"CORRAL_"):
            key, _, value = entry.decode("utf-8", "replace").partition("=")
            marks[key] = value
    return marks


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def pss_kb(pid: int) -> int:
    """Proportional set size of one process, in KiB (``smaps_rollup``)."""
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` (0..1) of ``values`` lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank]


def latency_text(seconds: list[float]) -> str:
    if not seconds:
        return "none measured"
    ms = [s * 1000 for s in seconds]
    return (
        f"p50 {percentile(ms, 0.5):.1f} / p99 {percentile(ms, 0.99):.1f} / "
        f"max {max(ms):.1f} ms (n={len(ms)})"
    )


# --- the report --------------------------------------------------------------------------


class Report:
    """The figures and verdicts of one part: printed as a block, kept for docs/reliability.md."""

    def __init__(self, part: str, sizes: str) -> None:
        self.part = part
        self.sizes = sizes
        self.figures: list[tuple[str, str]] = []
        self.checks: list[tuple[str, bool, str]] = []

    def figure(self, label: str, value: object) -> None:
        self.figures.append((label, str(value)))

    def check(self, name: str, ok: bool, detail: object = "") -> bool:
        self.checks.append((name, bool(ok), str(detail)))
        return bool(ok)

    @property
    def failures(self) -> list[str]:
        return [f"{name}: {detail}" for name, ok, detail in self.checks if not ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        lines = [f"== {self.part} ({self.sizes})"]
        width = max([len(label) for label, _ in self.figures] + [10])
        lines += [f"  {label.ljust(width)}  {value}" for label, value in self.figures]
        for name, ok, detail in self.checks:
            shown = f": {detail}" if detail and not ok else ""
            lines.append(f"  {'ok  ' if ok else 'FAIL'} {name}{shown}")
        lines.append(f"  {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)

    def print(self) -> None:
        print(self.text(), flush=True)


@contextlib.contextmanager
def run_dir(parent: Path | None, name: str) -> Iterator[Path]:
    """A fresh directory for one part's daemon (under /dev/shm where there is one, as real
    installs keep their state in /run), removed afterwards unless the part failed."""
    import shutil
    import tempfile

    base = parent or (Path("/dev/shm") if os.path.isdir("/dev/shm") else None)
    path = Path(tempfile.mkdtemp(prefix=f"corral-rel-{name}-", dir=base))
    keep = False
    try:
        yield path
    except BaseException:
        keep = True
        raise
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)
