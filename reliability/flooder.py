"""The log flood's service: WRITERS processes writing numbered lines to stdout (one pipe,
shared) at RATE MB/s in all, for SECONDS; then each writes ``END W COUNT`` and they exit.

    python flooder.py RATE_MB SECONDS WRITERS LONGEST

Line ``SEQ`` of writer ``W`` is ``F<W> <SEQ> <N> <N letters>`` (N from 20 to LONGEST, the
letter from SEQ), so the log files can be checked for every line, whole and in order. Lines
go out in writes of at most PIPE_BUF bytes, which the kernel never interleaves: whatever
the writers do at once, each line reaches corral's pipe in one piece.
"""

from __future__ import annotations

import os
import sys
import time

PIPE_BUF = 4096


def line(writer: int, seq: int, longest: int) -> bytes:
    size = 20 + (seq * 7919) % (longest - 19)
    return b"F%d %d %d %s\n" % (writer, seq, size, bytes([97 + seq % 26]) * size)


def flood(writer: int, rate: float, seconds: float, longest: int) -> None:
    """Write lines until ``seconds`` have passed, never ahead of ``rate`` bytes a second
    (behind it when the pipe is full: corral reads slower than the service writes)."""
    began = time.monotonic()
    seq = written = 0
    batch: list[bytes] = []
    size = 0
    while (now := time.monotonic()) - began < seconds:
        ahead = written / rate - (now - began)
        if ahead > 0.002:
            time.sleep(ahead)
        while True:
            next_line = line(writer, seq, longest)
            if size + len(next_line) > PIPE_BUF:
                break
            batch.append(next_line)
            size += len(next_line)
            seq += 1
        _write_all(b"".join(batch))
        written += size
        batch, size = [], 0
    elapsed = time.monotonic() - began
    _write_all(b"END %d %d %d %.3f\n" % (writer, seq, written, elapsed))


def _write_all(data: bytes) -> None:
    """One write for a batch of at most PIPE_BUF bytes: atomic on a pipe, so whole."""
    while data:
        data = data[os.write(1, data) :]


def main() -> int:
    rate, seconds, writers = float(sys.argv[1]) * 1e6, float(sys.argv[2]), int(sys.argv[3])
    longest = int(sys.argv[4])
    children = []
    for writer in range(1, writers):
        pid = os.fork()
        if pid == 0:
            flood(writer, rate / writers, seconds, longest)
            os._exit(0)
        children.append(pid)
    flood(0, rate / writers, seconds, longest)
    for pid in children:
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
