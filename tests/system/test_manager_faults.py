"""corral itself SIGKILLed while services run: the next corral on the same socket finds what
the killed one left (its record of main processes, and every process carrying the socket's
CORRAL_SOCKET), stops it, and only then starts the services: never two copies at once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.system.conftest import Corral, pid_alive, wait_until

#: Each start appends its pid to a file: how many copies ever ran, and which still run.
CONFIG = """
[service.plain]
script = "echo $$ >> {root}/plain.pids; exec sleep 600"

[service.stubborn]
script = "trap '' TERM; echo $$ >> {root}/stubborn.pids; while true; do sleep 0.1; done"
stop_timeout = 1

[service.daemon]
script = "setsid env -i sleep 601 & echo $! > {root}/daemon.pid; echo $! >> {root}/daemon.pids"
type = "forking"
pid_file = "{root}/daemon.pid"
"""


def pids(root: Path, name: str) -> list[int]:
    path = root / f"{name}.pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def running(root: Path, name: str) -> list[int]:
    return [pid for pid in pids(root, name) if pid_alive(pid)]


def test_a_killed_corrals_services_are_stopped_before_the_next_starts_them(
    corral: Corral,
) -> None:
    root = corral.root
    corral.write(CONFIG.format(root=root))
    first = corral.up()
    for name in ("plain", "stubborn", "daemon"):
        corral.wait_state(name, "running", 15)
    record = root / ".corral" / "processes"
    wait_until(lambda: record.exists() and len(record.read_text().split()) >= 6, 10,
               "the record of main processes")  # fmt: skip
    old = {name: running(root, name) for name in ("plain", "stubborn", "daemon")}
    assert all(len(found) == 1 for found in old.values()), old
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert all(pid_alive(found[0]) for found in old.values()), "they outlive a killed corral"

    corral.up()
    for name in ("plain", "stubborn", "daemon"):
        corral.wait_state(name, "running", 30)
    for name, (pid,) in old.items():
        assert not pid_alive(pid), f"{name}'s old process {pid} still runs"
        assert len(running(root, name)) == 1, (name, pids(root, name))
    assert "the last corral did not exit cleanly: stopping" in corral.log()
    assert "ignored SIGTERM: SIGKILL" in corral.log()  # the stubborn one


def test_a_clean_exit_leaves_no_record_and_the_next_start_looks_for_nothing(
    corral: Corral,
) -> None:
    corral.write('[service.plain]\nexec = ["sleep", "600"]\n')
    corral.up()
    corral.wait_state("plain", "running")
    record = corral.root / ".corral" / "processes"
    wait_until(record.exists, 10, "the record")
    corral.down()
    assert not record.exists()
    corral.up()
    corral.wait_state("plain", "running")
    assert "did not exit cleanly" not in corral.log()
