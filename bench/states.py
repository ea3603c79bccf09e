"""The seed's state operators at scale: how long one change of state takes to settle.

    .venv/bin/python bench/states.py                  # N = 1000 states, 9 rounds per operator
    .venv/bin/python bench/states.py --n 10,1000 --rounds 15

A real ``corral up`` holds N instances of the process-less state ``net`` (``net:if0`` ...,
each brought up by ``corral emit net-up IF=...``, as DESIGN.md's ``tty``), plus the few that
the rounds toggle. Beside them, one ``while`` job per form of condition, process-less too so
that only corral's own work is timed:

    any     while = "net(IF=z1|z2)"            a list: any of it
    all     while = "all net(IF=q1|q2|q3)"     (q1 and q2 held throughout)
    quorum  while = "2 of net(IF=k1|k2|k3)"    (k1 held throughout)
    each    while = "net(IF=*)", instance = "${IF}"   one instance per state (N+ of them)

A round is one emit over the raw protocol that adds (``net-up``) or removes (``net-down``)
one instance; the time is from sending it until the ``started``/``stopped`` event of the
``while`` job arrives on an ``events`` stream (so it includes two socket hops and the
daemon's JSON work, not a CLI's start-up); "emit reply" is until the emit's own reply, which
comes once every ``while`` job the change marked has been looked at. Median and worst of the
rounds, in ms, per operator and direction. Goal: under 5 ms at N = 1000. The last row flips
``quorum`` through the real ``corral emit`` instead (its process start included), for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RUN_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else None
CORRAL = Path(sys.executable).parent / "corral"

CONFIG = """
[service.net]
start_on = "net-up IF=*"
stop_on = "net-down IF=$IF"
instance = "${IF}"

[service.any]
while = "net(IF=z1|z2)"

[service.all]
while = "all net(IF=q1|q2|q3)"

[service.quorum]
while = "2 of net(IF=k1|k2|k3)"

[service.each]
instance = "${IF}"
while = "net(IF=*)"
"""

#: operator -> (the interface a round toggles, the instance whose event ends the round)
ROUNDS = {
    "any": ("z1", ""),
    "all": ("q3", ""),
    "quorum": ("k2", ""),
    "each": ("e1", "e1"),
}
#: Held throughout, so that one more (or one fewer) decides ``all`` and ``quorum``.
HELD = ["q1", "q2", "k1"]


class Connection:
    """One connection to the daemon: requests, or an event stream."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")

    def send(self, cmd: str, **args: Any) -> None:
        self.sock.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")

    def read(self) -> dict[str, Any]:
        line = self.reader.readline()
        if not line:
            raise RuntimeError("the daemon closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def request(self, cmd: str, **args: Any) -> Any:
        self.send(cmd, **args)
        reply = self.read()
        if not reply.get("ok"):
            raise RuntimeError(f"{cmd}: {reply}")
        return reply.get("result")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def wait_for_socket(path: str, daemon: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"corral up exited {daemon.returncode}:\n{log.read_text()}")
        try:
            Connection(path).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the daemon's socket never accepted")


def until_event(stream: Connection, name: str, job: str, instance: str) -> float:
    """Read the stream until ``name JOB=job INSTANCE=instance``; when it arrived."""
    while True:
        event = stream.read().get("event")
        if event is None:
            continue
        env = event["env"]
        if event["name"] == name and env.get("JOB") == job and env.get("INSTANCE") == instance:
            return time.perf_counter()


def one_round(
    control: Connection, stream: Connection, operator: str, direction: str
) -> tuple[float, float]:
    """One emit that flips ``operator``'s job; (ms until its event, ms until the reply)."""
    interface, instance = ROUNDS[operator]
    event, lifecycle = ("net-up", "started") if direction == "up" else ("net-down", "stopped")
    began = time.perf_counter()
    control.send("emit", event=event, env={"IF": interface}, wait=False)
    settled = until_event(stream, lifecycle, operator, instance)
    reply = control.read()
    replied = time.perf_counter()
    if not reply.get("ok"):
        raise RuntimeError(f"emit {event}: {reply}")
    return (settled - began) * 1000, (replied - began) * 1000


def flips(
    control: Connection, stream: Connection, operator: str, rounds: int
) -> dict[str, list[float]]:
    """``rounds`` times up then down: the times of each way, and of the emit's replies."""
    found: dict[str, list[float]] = {"up": [], "down": [], "reply": []}
    for _ in range(rounds):
        for direction in ("up", "down"):
            settled, replied = one_round(control, stream, operator, direction)
            found[direction].append(settled)
            found["reply"].append(replied)
    return found


def cli_round(path: str, stream: Connection, direction: str) -> float:
    """The same flip of ``quorum`` through ``corral emit`` (the CLI's start-up included)."""
    interface, instance = ROUNDS["quorum"]
    event, lifecycle = ("net-up", "started") if direction == "up" else ("net-down", "stopped")
    began = time.perf_counter()
    subprocess.run(
        [str(CORRAL), "emit", event, f"IF={interface}"],
        env=dict(os.environ, CORRAL_SOCKET=path), check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return (until_event(stream, lifecycle, "quorum", instance) - began) * 1000


def measure(n: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Start a daemon with ``n`` states, time ``rounds`` flips of each operator each way."""
    root = Path(tempfile.mkdtemp(prefix="corral-states-", dir=RUN_DIR))
    (root / "corral.toml").write_text(CONFIG)
    path = str(root / "control.sock")
    log = root / "up.out"
    env = dict(os.environ, CORRAL_WATCH="0")
    env.pop("CORRAL_CHECK_STATUS", None)
    with open(log, "wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "corral", "up", "-c", "corral.toml", "--socket", path],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_socket(path, daemon, log)
        control = Connection(path)
        for interface in [*(f"if{i}" for i in range(n)), *HELD]:
            control.request("emit", event="net-up", env={"IF": interface})
        stream = Connection(path)
        stream.request("events", lines=0, follow=True)
        times = {operator: flips(control, stream, operator, rounds) for operator in ROUNDS}
        cli: dict[str, list[float]] = {"up": [], "down": [], "reply": []}
        times["corral emit"] = cli
        for _ in range(rounds):
            for direction in ("up", "down"):  # alternately: each emit flips quorum
                cli[direction].append(cli_round(path, stream, direction))
        control.request("down")
        daemon.wait(timeout=120)
        return times
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, 9)
            daemon.wait()
        shutil.rmtree(root, ignore_errors=True)


def report(n: int, times: dict[str, dict[str, list[float]]]) -> None:
    print(f"\nN = {n} state instances (+{len(HELD)} held, {n + len(HELD)} each:* instances)")
    print(f"{'operator':<12} {'start ms':>18} {'stop ms':>18} {'emit reply ms':>18}")
    for operator, found in times.items():
        cells = [
            f"{statistics.median(found[k]):6.2f} (max {max(found[k]):6.2f})" if found[k] else "-"
            for k in ("up", "down", "reply")
        ]
        print(f"{operator:<12} " + " ".join(f"{cell:>18}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default="1000", help="state instances, comma-separated runs")
    parser.add_argument("--rounds", type=int, default=9, help="flips per operator and way")
    args = parser.parse_args()
    for n in (int(part) for part in args.n.split(",")):
        report(n, measure(n, args.rounds))


if __name__ == "__main__":
    main()
