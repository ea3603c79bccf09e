"""Log flood: a service writing 50 MB/s (two processes on one pipe) for seconds on end,
while its log file rotates, a follower never reads, and another client times ``status``.

    python -m reliability.log_flood [--rate MB] [--seconds S]

Passes when every line the service wrote is in its log files, whole and in order, across
every rotation (none lost, none torn, none twice); the memory ring and ``corral logs`` have
the last lines whole too; the daemon's memory stays within a bound; ``status`` answers in
under 50 ms at the 99th percentile throughout; and a quiet service beside it is untouched.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
import time
from pathlib import Path

from msgspec import Struct

from reliability.chaos import start_prober, stop_prober
from reliability.harness import (
    Client,
    Daemon,
    Report,
    latency_text,
    percentile,
    pss_kb,
    run_dir,
    wait_until,
)

FLOODER = Path(__file__).resolve().parent / "flooder.py"
LINE = re.compile(rb"^\S+ F(\d+) (\d+) (\d+) ([a-z]*)$")
END = re.compile(rb"^\S+ END (\d+) (\d+) (\d+) ([\d.]+)$")
CORRALS = re.compile(rb"^\S+ \[corral\] ")
MB = 1e6


class Sizes(Struct, frozen=True):
    rate_mb: float
    seconds: float
    writers: int = 2
    longest: int = 3000  # letters in the longest line (the shortest has 20)
    max_size_mb: int = 8  # each log file; keep is chosen so that no line rotates away
    memory_bound_mb: float = 64.0  # the daemon's PSS may grow this much during the flood
    status_p99_ms: float = 50.0


SMALL = Sizes(rate_mb=50, seconds=2)
FULL = Sizes(rate_mb=50, seconds=10, max_size_mb=32)


def config(sizes: Sizes) -> str:
    total_mb = sizes.rate_mb * sizes.seconds
    keep = int(total_mb / sizes.max_size_mb) + 4
    return f"""\
[service.flood]
exec = ["{sys.executable}", "-I", "{FLOODER}", "{sizes.rate_mb}", "{sizes.seconds}", \
"{sizes.writers}", "{sizes.longest}"]
restart = "no"
autostart = false
start_grace = 0
log = {{ max_size = {sizes.max_size_mb * 1024 * 1024}, keep = {keep}, lines = 2000 }}

[service.quiet]
exec = ["sleep", "3600"]
start_grace = 0
"""


class Memory:
    """The daemon's PSS every 0.1 s while the flood runs."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.samples: list[int] = []

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(0.1):
            try:
                self.samples.append(pss_kb(self._pid))
            except OSError:
                return


def run(sizes: Sizes, parent: Path | None = None) -> Report:
    report = Report(
        "log flood",
        f"{sizes.writers} writers, {sizes.rate_mb:g} MB/s for {sizes.seconds:g} s, lines of "
        f"20 to {sizes.longest} bytes, files of {sizes.max_size_mb} MB",
    )
    with run_dir(parent, "flood") as root, Daemon(root, config(sizes)) as daemon:
        daemon.start()
        quiet = daemon.status()
        _flood(daemon, sizes, report)
        after = {row["name"]: row for row in daemon.status()}
        before = next(row for row in quiet if row["name"] == "quiet")
        report.check(
            "the quiet service is untouched",
            after["quiet"]["pid"] == before["pid"] and after["quiet"]["state"] == "running",
            after["quiet"],
        )
        report.check("the daemon is alive", daemon.alive(), daemon.log()[-2000:])
        report.check("corral down afterwards", daemon.stop())
    return report


def _flood(daemon: Daemon, sizes: Sizes, report: Report) -> None:
    baseline = pss_kb(daemon.pid)
    memory, stop = Memory(daemon.pid), threading.Event()
    sampler = threading.Thread(target=memory.run, args=(stop,), daemon=True)
    sampler.start()
    prober = start_prober(daemon, 0.02)
    with _stalled_follower(daemon):
        began = time.monotonic()
        reply = daemon.request("start", targets=[{"name": "flood"}], wait=False)
        assert reply["ok"], reply
        log = daemon.root / ".corral" / "logs" / "flood.log"
        ends = wait_until(
            lambda: _ends(log, sizes.writers), sizes.seconds * 10 + 60, "every writer's END line"
        )
        took = time.monotonic() - began
        assert ends is not None
    stop.set()
    sampler.join(timeout=10)
    probe = stop_prober(prober)
    _check_files(report, log, ends)
    _check_ring(report, daemon)
    written = sum(end[1] for end in ends.values())
    pace = max(end[2] for end in ends.values())
    report.figure("written", f"{written / MB:.0f} MB in {pace:.1f} s by the service")
    report.figure("rate the service reached", f"{written / MB / pace:.1f} MB/s")
    report.figure("until the last line was in the file", f"{took:.1f} s")
    peak = max(memory.samples, default=baseline)
    report.figure("daemon PSS MB (before / peak)", f"{baseline / 1024:.1f} / {peak / 1024:.1f}")
    report.check(
        f"daemon memory bounded (grew under {sizes.memory_bound_mb:g} MB)",
        peak - baseline < sizes.memory_bound_mb * 1024,
        f"grew {(peak - baseline) / 1024:.1f} MB",
    )
    report.figure("status latency during the flood", latency_text(probe["latencies"]))
    p99 = percentile([s * 1000 for s in probe["latencies"]], 0.99)
    report.check(
        f"status p99 under {sizes.status_p99_ms:g} ms", p99 < sizes.status_p99_ms, f"{p99:.1f} ms"
    )
    report.check("the timing client was always answered", not probe["errors"], probe["errors"])


class _stalled_follower:  # a context manager named for what it is
    """A ``logs -f`` client of the flood that never reads: corral must drop lines for it
    rather than hold them (its memory stays bounded, nothing else waits)."""

    def __init__(self, daemon: Daemon) -> None:
        self._client = Client(daemon.socket, timeout=30)

    def __enter__(self) -> None:
        reply = self._client.request("logs", targets=[{"name": "flood"}], lines=0, follow=True)
        assert reply["ok"], reply

    def __exit__(self, *_: object) -> None:
        self._client.close()


def _ends(log: Path, writers: int) -> dict[int, tuple[int, int, float]] | None:
    """Each writer's END line (its line count, bytes, seconds), once all are in the file."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - 64 * 1024))
            tail = handle.read().splitlines()
    except OSError:
        return None
    ends = {}
    for text in tail:
        if found := END.match(text):
            ends[int(found[1])] = (int(found[2]), int(found[3]), float(found[4]))
    return ends if len(ends) == writers else None


def _check_files(report: Report, log: Path, ends: dict[int, tuple[int, int, float]]) -> None:
    """Every line of every writer in the files (oldest first), once, whole, in order."""
    files = [*sorted(log.parent.glob("flood.log.*"), key=lambda p: -int(p.suffix[1:])), log]
    expected = dict.fromkeys(ends, 0)
    torn: list[bytes] = []
    disorder: list[str] = []
    for path in files:
        with open(path, "rb") as handle:
            for text in handle.read().splitlines():
                if END.match(text) or CORRALS.match(text):
                    continue  # the END lines, and corral's own words about the service
                found = LINE.match(text)
                if not found or not _whole(found):
                    torn.append(text[:120])
                    continue
                writer, seq = int(found[1]), int(found[2])
                if seq != expected.get(writer):
                    disorder.append(f"F{writer} {seq} where {expected.get(writer)} was due")
                expected[writer] = seq + 1
    lost = sum(max(0, ends[w][0] - expected[w]) for w in ends)
    lines = sum(end[0] for end in ends.values())
    report.figure("log files (rotations)", f"{len(files)} ({len(files) - 1})")
    report.figure("lines written / lost / torn", f"{lines} / {lost} / {len(torn)}")
    report.check("the file rotated during the flood", len(files) > 2, len(files))
    report.check("0 lines lost across rotation", not lost and not disorder, disorder[:5])
    report.check("0 lines torn", not torn, torn[:3])


def _whole(found: re.Match[bytes]) -> bool:
    size, letters = int(found[3]), found[4]
    return len(letters) == size and letters == bytes([97 + int(found[2]) % 26]) * size


def _check_ring(report: Report, daemon: Daemon) -> None:
    """``corral logs`` (the memory ring): its last lines whole too."""
    reply = daemon.request("logs", targets=[{"name": "flood"}], lines=500)
    texts = [line["text"].encode() for line in reply["result"] if line["process"] == "main"]
    broken = [
        t[:80]
        for t in texts
        if not END.match(b"- " + t) and not ((m := LINE.match(b"- " + t)) and _whole(m))
    ]
    report.check("corral logs: the last lines whole", len(texts) > 400 and not broken, broken)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=FULL.rate_mb, help="MB/s")
    parser.add_argument("--seconds", type=float, default=FULL.seconds)
    parser.add_argument("--longest", type=int, default=FULL.longest, help="bytes of a line")
    args = parser.parse_args(argv)
    sizes = Sizes(args.rate, args.seconds, longest=args.longest, max_size_mb=FULL.max_size_mb)
    report = run(sizes)
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
