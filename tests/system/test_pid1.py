"""corral as PID 1 of a PID namespace (``unshare --pid --fork --mount-proc``), as in a container."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.conftest import Corral, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None or os.getuid() != 0, reason="needs unshare and root"
)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


def _stat(pid: int) -> tuple[str, int]:
    """(state, ppid) of a host pid."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _zombies_of(parent: int) -> list[int]:
    zombies = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = _stat(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == parent and state == "Z":
            zombies.append(int(entry.name))
    return zombies


@pytest.fixture
def pid1(corral: Corral) -> tuple[Corral, subprocess.Popen[bytes]]:
    corral.write(
        """
        [service.orphaner]
        # Every 0.1 s, leave behind a child that outlives its parent: it is reparented to
        # PID 1 (corral), and exits shortly after; unreaped, it would stay a zombie.
        script = "while true; do sh -c 'sleep 0.05 &'; sleep 0.1; done"

        [service.web]
        exec = ["python3", "-m", "http.server", "0", "--bind", "127.0.0.1"]
        stop_signal = "INT"
        post_stop = "echo web-down >> order.txt"

        [service.worker]
        exec = ["sleep", "600"]
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


def test_corral_is_pid_1_and_reaps_orphans(pid1: tuple[Corral, subprocess.Popen[bytes]]) -> None:
    corral, process = pid1
    inner = wait_until(lambda: _children(process.pid), 5, "corral inside the namespace")[0]
    assert corral.wait_state("orphaner", "running")["pid"] is not None
    # corral's own view of its pid is 1: its children report ppid 1 inside the namespace.
    assert "NSpid" in Path(f"/proc/{inner}/status").read_text()
    nspid = [
        ln
        for ln in Path(f"/proc/{inner}/status").read_text().splitlines()
        if ln.startswith("NSpid")
    ]
    assert nspid[0].split()[-1] == "1"
    time.sleep(1.5)  # ~15 orphans have come and gone
    seen = set(_zombies_of(inner))  # a zombie may exist for an instant before the reaper runs
    time.sleep(0.3)
    lingering = seen & set(_zombies_of(inner))
    assert not lingering, f"unreaped zombies: {lingering}"


def test_sigterm_stops_every_service_then_exits_0(
    pid1: tuple[Corral, subprocess.Popen[bytes]],
) -> None:
    corral, process = pid1
    for name in ("web", "worker", "orphaner"):
        corral.wait_state(name, "running")
    inner = _children(process.pid)[0]
    os.kill(inner, signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    order = (corral.root / "order.txt").read_text().split()
    assert sorted(order) == ["web-down", "worker-down"]
    assert "all services stopped" in corral.log()


def test_sigint_works_too(pid1: tuple[Corral, subprocess.Popen[bytes]]) -> None:
    corral, process = pid1
    corral.wait_state("worker", "running")
    os.kill(_children(process.pid)[0], signal.SIGINT)
    assert process.wait(timeout=30) == 0
