"""Log files on real disk: only the recently written stay open, and nothing is lost by it."""

from __future__ import annotations

import os
from pathlib import Path

from corral.daemon.logs import RotatingFile


def _open_fds_under(directory: Path) -> int:
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith(str(directory)):
                count += 1
        except OSError:
            pass
    return count


def test_no_more_than_the_limit_stay_open_and_every_line_lands(tmp_path: Path) -> None:
    files = [RotatingFile(str(tmp_path / f"s{i}.log"), 1 << 20, 2) for i in range(100)]
    assert _open_fds_under(tmp_path) == 0  # created, then let go
    for round_ in range(3):
        for i, log in enumerate(files):
            log.write_lines([f"{i} {round_}\n".encode()])
    assert _open_fds_under(tmp_path) == RotatingFile.OPEN_LIMIT
    for i in range(100):
        text = (tmp_path / f"s{i}.log").read_text()
        assert text == "".join(f"{i} {r}\n" for r in range(3))
    for log in files:
        log.close()
    assert _open_fds_under(tmp_path) == 0


def test_rotation_still_works_for_a_file_that_was_let_go(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    big = RotatingFile(str(path), 40, 2)
    others = [RotatingFile(str(tmp_path / f"o{i}.log"), 1 << 20, 0) for i in range(80)]
    big.write_lines([b"a" * 30 + b"\n"])
    for other in others:  # push big.log out of the open set
        other.write_lines([b"x\n"])
    big.write_lines([b"b" * 30 + b"\n"])  # passes 40 bytes: rotates first
    assert (tmp_path / "big.log.1").read_text() == "a" * 30 + "\n"
    assert path.read_text() == "b" * 30 + "\n"
    for log in [big, *others]:
        log.close()
