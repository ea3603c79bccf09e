"""Protocol fuzz: hostile lines and connections against a real daemon, while another client
times ``status`` throughout.

    python -m reliability.protocol_fuzz [--random N] [--idle N]

Passes when the daemon never crashes, every bad line gets an error reply (and the connection
goes on serving), every real request with a value of the wrong type gets a reply that is
not an internal error, pipelined and half-closed requests are all answered, idle
connections past the limit are closed with a clear line while other clients are served, and
the daemon's fds come back to where they were.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from msgspec import Struct

from corral.control.protocol import MAX_LINE
from reliability import protocol_cases as cases
from reliability.chaos import start_prober, stop_prober
from reliability.harness import (
    Client,
    Daemon,
    NoReply,
    Report,
    fd_count,
    latency_text,
    percentile,
    pss_kb,
    run_dir,
)


class Sizes(Struct, frozen=True):
    random_lines: int
    truncated: int
    pipelined: int
    idle: int
    swaps_every: int = 1  # every Nth type swap (1: all of them)


SMALL = Sizes(random_lines=200, truncated=100, pipelined=300, idle=300, swaps_every=7)
FULL = Sizes(random_lines=5000, truncated=2000, pipelined=5000, idle=500)


class Tally:
    """How many lines of one kind were sent, and what went wrong with which."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self.sent: dict[str, int] = {}
        self.bad: dict[str, list[str]] = {}

    def one(self, kind: str, ok: bool, what: object) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + 1
        if not ok:
            self.bad.setdefault(kind, []).append(str(what)[:300])

    def close(self) -> None:
        for kind, count in self.sent.items():
            bad = self.bad.get(kind, [])
            self._report.figure(f"{kind} lines", f"{count} sent, {len(bad)} wrong")
            self._report.check(f"{kind}: every line answered as it should", not bad, bad[:5])


def ask(daemon: Daemon, line: bytes, then_ping: bool = True, timeout: float = 15) -> str | None:
    """Send one line on a fresh connection: what is wrong with the reply, or None."""
    try:
        with Client(daemon.socket, timeout) as client:
            reply = client.send_line(line)
            if not cases.is_reply(reply):
                return f"{line[:120]!r} -> {reply}"
            if then_ping and not client.request("ping").get("ok"):
                return f"{line[:120]!r}: the connection stopped serving"
    except NoReply as exc:
        return f"{line[:120]!r}: no reply ({exc})"
    return None


def fuzz_types(daemon: Daemon, tally: Tally, every: int) -> None:
    for index, request in enumerate(cases.type_swaps()):
        if index % every:
            continue
        follows = request.get("follow") is True
        problem = ask(daemon, cases.encode(request), then_ping=not follows)
        tally.one("type swap", problem is None, problem)


def fuzz_bad_lines(daemon: Daemon, tally: Tally, sizes: Sizes, rng: random.Random) -> None:
    """Random bytes and truncated requests on one connection: an error reply for each."""
    with daemon.client() as client:
        for _ in range(sizes.random_lines):
            line = cases.random_bytes(rng, rng.choice((1, 8, 64, 512, 4096)))
            expect_error(client, tally, "random bytes", line)
        for _ in range(sizes.truncated):
            expect_error(client, tally, "truncated", cases.truncated(rng))
        for line in (cases.deep(100_000), cases.deep(100_000, "object"), b"\xff\xfe\xfd\n"):
            expect_error(client, tally, "deep or invalid UTF-8", line)
    for size in (MAX_LINE + 1, 10 * 1024 * 1024):
        line = b'{"cmd": "ping", "pad": "' + b"x" * size + b'"}\n'
        expect_error_then_ping(daemon, tally, "overlong", line)


def expect_error(client: Client, tally: Tally, kind: str, line: bytes) -> None:
    if not line.strip():
        return  # a blank line is no request, and gets no reply
    try:
        reply = client.send_line(line)
    except NoReply as exc:
        tally.one(kind, False, f"{line[:80]!r}: no reply ({exc})")
        return
    tally.one(kind, cases.is_error(reply), f"{line[:80]!r} -> {reply}")


def expect_error_then_ping(daemon: Daemon, tally: Tally, kind: str, line: bytes) -> None:
    try:
        with daemon.client() as client:
            reply = client.send_line(line)
            pong = client.request("ping")
        tally.one(kind, cases.is_error(reply) and pong.get("ok") is True, (reply, pong))
    except NoReply as exc:
        tally.one(kind, False, f"no reply ({exc})")


def fuzz_pipelined(daemon: Daemon, tally: Tally, count: int, rng: random.Random) -> None:
    """``count`` lines in one write, good and bad mixed: every reply, in order."""
    lines = [b'{"cmd": "ping"}\n' if rng.random() < 0.5 else b"garbage\n" for _ in range(count)]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(daemon.socket)
        sock.sendall(b"".join(lines))
        sock.shutdown(socket.SHUT_WR)
        replies = sock.makefile("rb").read().splitlines()
    for index, line in enumerate(lines):
        reply = replies[index] if index < len(replies) else b""
        tally.one("pipelined", (b'"ok":true' in reply) == line.startswith(b"{"), (line, reply))


def fuzz_half_closed(daemon: Daemon, tally: Tally) -> None:
    """A last line without its newline, then EOF: answered as any other."""
    for line, good in ((b'{"cmd": "ping"}', True), (b'{"cmd": "pi', False), (b"\x00", False)):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(15)
            sock.connect(daemon.socket)
            sock.sendall(line)
            sock.shutdown(socket.SHUT_WR)
            reply = sock.makefile("rb").read()
        tally.one("half-closed", (b'"ok":true' in reply) == good and reply.endswith(b"\n"), reply)


def fuzz_idle(daemon: Daemon, report: Report, count: int) -> None:
    """``count`` idle connections: the daemon keeps serving others, and closes the oldest
    idle ones past its limit with a line that says why."""
    before = fd_count(daemon.pid)
    idle: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(15)
            sock.connect(daemon.socket)
            idle.append(sock)
            time.sleep(0.001)
        served = _timed(lambda: daemon.request("status", timeout=15)["ok"])
        report.figure("status with the idle connections open", f"{served * 1000:.1f} ms")
        report.check("other clients are served while idle connections are open", served < 5)
        closed = [_closing_line(sock) for sock in idle]
        said = [line for line in closed if line]
        report.figure("idle connections closed by the limit", f"{len(said)} of {count}")
        expected = max(0, count + 1 - _limit(daemon))
        report.check(
            "idle connections past the limit are closed with a clear line",
            len(said) >= expected and all(b"idle connection" in line for line in said),
            said[:2],
        )
    finally:
        for sock in idle:
            sock.close()
    after = fd_count(daemon.pid)
    for _ in range(100):
        if after <= before:
            break
        time.sleep(0.05)
        after = fd_count(daemon.pid)
    report.figure("daemon fds before → after the idle connections", f"{before} → {after}")
    report.check("the idle connections' fds are all closed again", after <= before)


def _limit(daemon: Daemon) -> int:
    """The daemon's connection limit, from the rule it uses and its own RLIMIT_NOFILE."""
    from corral.control.server import MAX_CONNECTIONS

    with open(f"/proc/{daemon.pid}/limits") as limits:
        soft = next(line.split()[3] for line in limits if line.startswith("Max open files"))
    return MAX_CONNECTIONS if soft == "unlimited" else max(8, min(MAX_CONNECTIONS, int(soft) // 4))


def _closing_line(sock: socket.socket) -> bytes:
    """What the daemon sent on an idle connection (b"": nothing, it is still open)."""
    sock.setblocking(False)
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return b""
    finally:
        sock.setblocking(True)


def _timed(call: Callable[[], Any]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def run(sizes: Sizes, parent: Path | None = None, seed: int | None = None) -> Report:
    report = Report("protocol fuzz", _describe(sizes))
    rng = random.Random(seed)
    began = time.monotonic()
    with run_dir(parent, "protocol") as root, Daemon(root, cases.CONFIG) as daemon:
        daemon.start()
        pss_before = pss_kb(daemon.pid)
        prober = start_prober(daemon, 0.02)
        tally = Tally(report)
        fuzz_types(daemon, tally, sizes.swaps_every)
        fuzz_bad_lines(daemon, tally, sizes, rng)
        fuzz_pipelined(daemon, tally, sizes.pipelined, rng)
        fuzz_half_closed(daemon, tally)
        tally.close()
        fuzz_idle(daemon, report, sizes.idle)
        probe = stop_prober(prober)
        report.figure("status latency throughout", latency_text(probe["latencies"]))
        p99 = percentile([s * 1000 for s in probe["latencies"]], 0.99)
        # A short run has few samples, its p99 is its slowest: a bound with room for a busy
        # machine's hiccup (the chaos soak holds status to 50 ms, over thousands of samples).
        report.check("status p99 under 100 ms throughout", p99 < 100, f"{p99:.1f} ms")
        report.check("the timing client was always answered", not probe["errors"], probe["errors"])
        report.figure("daemon PSS MB before → after", f"{pss_before / 1024:.1f} → "
                      f"{pss_kb(daemon.pid) / 1024:.1f}")  # fmt: skip
        report.check("0 daemon crashes", daemon.alive(), daemon.log()[-3000:])
        internal = daemon.log().count("corral: internal error")
        report.check("no internal error in the daemon's output", not internal, internal)
        report.check("corral down afterwards", daemon.stop())
    report.figure("seconds", f"{time.monotonic() - began:.0f}")
    return report


def _describe(sizes: Sizes) -> str:
    swaps = "every type swap" if sizes.swaps_every == 1 else f"1 in {sizes.swaps_every} swaps"
    return f"{swaps}, {sizes.random_lines} random lines, {sizes.idle} idle connections"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=FULL.random_lines)
    parser.add_argument("--idle", type=int, default=FULL.idle)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    sizes = Sizes(args.random, FULL.truncated, FULL.pipelined, args.idle)
    report = run(sizes, seed=args.seed)
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
