"""corral as PID 1 of a PID namespace (``unshare --pid --fork --mount-proc``), as in a container."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.system.conftest import Corral, wait_until

#: What the orphaner leaves behind: a process it cannot be mistaken for.
ORPHAN = [b"sleep", b"0.7"]


@pytest.fixture(autouse=True)
def _a_pid_namespace_can_be_made() -> None:
    if os.getuid() != 0:
        missing("root (to make a PID namespace)")
    if shutil.which("unshare") is None:
        missing("unshare")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


def _stat(pid: int) -> tuple[str, int]:
    """(state, ppid) of a host pid."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _orphans_of(parent: int) -> set[int]:
    """The orphaner's orphans whose parent is now ``parent`` (their own parent has exited)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
            _, ppid = _stat(int(entry.name))
        except (OSError, IndexError):
            continue
        if argv == ORPHAN and ppid == parent:
            found.add(int(entry.name))
    return found


@pytest.fixture
def pid1(corral: Corral) -> tuple[Corral, subprocess.Popen[bytes]]:
    corral.write(
        """
        [service.orphaner]
        # Every 0.1 s, leave behind a child that outlives its parent: it is reparented to
        # PID 1 (corral), and exits shortly after; unreaped, it would stay a zombie.
        script = "while true; do sh -c 'sleep 0.7 &'; sleep 0.1; done"

        [service.web]
        exec = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"]
        stop_signal = "INT"
        post_stop = "echo web-down >> order.txt"

        [service.worker]
        script = "trap 'echo got-TERM; exit 0' TERM; echo trap-set; while :; do sleep 0.1; done"
        requires = ["web"]
        post_stop = "echo worker-down >> order.txt"
        """
    )
    with open(corral.output, "ab") as out:
        process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "corral", "up",
             "--socket", corral.socket],
            cwd=corral.root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    corral.process = process
    wait_until(corral.ping, 15, "corral as PID 1")
    return corral, process


def _inner(process: subprocess.Popen[bytes]) -> int:
    """corral's host pid: the one child of ``unshare --fork``."""
    return int(wait_until(lambda: _children(process.pid), 5, "corral inside the namespace")[0])


def test_corral_is_pid_1_and_reaps_orphans(pid1: tuple[Corral, subprocess.Popen[bytes]]) -> None:
    corral, process = pid1
    inner = _inner(process)
    assert corral.wait_state("orphaner", "running")["pid"] is not None
    # corral's own view of its pid is 1: its children report ppid 1 inside the namespace.
    nspid = [
        ln
        for ln in Path(f"/proc/{inner}/status").read_text().splitlines()
        if ln.startswith("NSpid:")
    ]
    assert nspid and nspid[0].split()[-1] == "1", nspid
    adopted: set[int] = set()

    def five_adopted() -> bool:
        adopted.update(_orphans_of(inner))
        return len(adopted) >= 5

    wait_until(five_adopted, 10, "five orphans reparented to corral")
    # Only its parent can reap a process: each one that is gone (not left a zombie) was
    # reaped by corral.
    wait_until(
        lambda: not [pid for pid in adopted if Path(f"/proc/{pid}").exists()],
        10,
        f"corral to reap the orphans {sorted(adopted)}",
    )


def _stops_in_order_on(
    number: signal.Signals, pid1: tuple[Corral, subprocess.Popen[bytes]]
) -> None:
    """The signal to corral stops every service, each with its stop signal, dependents
    first; corral says so, and exits 0."""
    corral, process = pid1
    for name in ("web", "worker", "orphaner"):
        corral.wait_state(name, "running")
    # Each ready for its stop signal: web's Python has its SIGINT handler, worker its trap.
    wait_until(lambda: "Serving HTTP" in corral.ok("logs", "web"), 10, "web to serve")
    wait_until(lambda: "trap-set" in corral.ok("logs", "worker"), 10, "worker's trap")
    os.kill(_inner(process), number)
    assert process.wait(timeout=30) == 0
    assert (corral.root / "order.txt").read_text().split() == ["worker-down", "web-down"]
    log = corral.log()
    assert "Keyboard interrupt received" in log, log  # web's stop_signal, INT, reached it
    assert "got-TERM" in log, log  # worker's, TERM, reached its trap
    for name in ("web", "worker", "orphaner"):
        assert f"{name}: stopped" in log, log
    assert "all services stopped" in log


def test_sigterm_stops_every_service_then_exits_0(
    pid1: tuple[Corral, subprocess.Popen[bytes]],
) -> None:
    _stops_in_order_on(signal.SIGTERM, pid1)


def test_sigint_works_too(pid1: tuple[Corral, subprocess.Popen[bytes]]) -> None:
    _stops_in_order_on(signal.SIGINT, pid1)
