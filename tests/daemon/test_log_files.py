"""Log files on real disk: only the recently written stay open, and nothing is lost by it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from corral.core.definition import LogConfig
from corral.daemon.logs import LogLine, RotatingFile, ServiceLog


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


def test_a_file_is_made_at_the_first_line_and_counts_what_was_there(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "web.log"
    log = RotatingFile(str(path), 40, 1)
    assert (tmp_path / "logs").is_dir() and not path.exists()  # nothing printed yet
    path.write_text("o" * 30 + "\n")  # left by an earlier run
    log.write_lines([b"n" * 20 + b"\n"])  # 31 + 21 passes 40: the old content rotates
    assert (tmp_path / "logs" / "web.log.1").read_text() == "o" * 30 + "\n"
    assert path.read_text() == "n" * 20 + "\n"
    log.close()


def test_a_log_directory_removed_meanwhile_is_made_again(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    first = RotatingFile(str(directory / "a.log"), 1 << 20, 0)
    directory.rmdir()
    second = RotatingFile(str(directory / "b.log"), 1 << 20, 0)  # the directory was seen
    second.write_lines([b"b\n"])
    first.write_lines([b"a\n"])
    assert (directory / "a.log").read_text() == "a\n"
    assert (directory / "b.log").read_text() == "b\n"
    first.close()
    second.close()


def _line(service: str, text: str) -> LogLine:
    return LogLine(time.time(), service, "", "main", text)


def _in_a_loop(turns: list[list[tuple[ServiceLog, str]]]) -> list[dict[str, Any]]:
    """Each turn's lines added as the daemon adds them, on a running loop whose turn ends
    between two turns (that is when files are written); what reached the loop's
    exception handler (nothing, when the daemon goes on untroubled)."""
    errors: list[dict[str, Any]] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        for turn in turns:
            for log, text in turn:
                log.add([_line(log.name, text)])
            await asyncio.sleep(0)  # the end of the turn: the files are written

    asyncio.run(run())
    return errors


def test_an_unwritable_file_loses_only_its_lines(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("")  # a file where web's log directory should be
    web = ServiceLog("web", LogConfig(file=str(blocked / "web.log")), str(tmp_path))
    db = ServiceLog("db", LogConfig(), str(tmp_path / "logs"))
    turns = [[(web, f"web {i}"), (db, f"db {i}")] for i in range(3)]
    assert _in_a_loop(turns) == []  # no exception: the daemon goes on
    assert [line.text for line in web.tail(None)] == ["web 0", "web 1", "web 2"]
    written = (tmp_path / "logs" / "db.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in written] == ["db 0", "db 1", "db 2"]
    assert blocked.read_text() == ""
    blocked.unlink()  # the way is clear again: the next line lands
    assert _in_a_loop([[(web, "web 3")]]) == []
    assert (blocked / "web.log").read_text().endswith(" web 3\n")
    web.close()
    db.close()


def test_a_file_deleted_before_its_rotation_is_made_again(tmp_path: Path) -> None:
    """``rm web.log`` while the service runs: the rotation that comes finds nothing to move
    aside, and the file is made again with the line that rotated it."""
    path = tmp_path / "web.log"
    web = ServiceLog("web", LogConfig(file=str(path), max_size=80, keep=2), str(tmp_path))
    assert _in_a_loop([[(web, "a" * 30)]]) == []
    path.unlink()
    assert _in_a_loop([[(web, "b" * 30)], [(web, "c" * 3)]]) == []
    assert [line.split(" ", 1)[1] for line in path.read_text().splitlines()] == ["b" * 30, "c" * 3]
    assert [line.text for line in web.tail(None)] == ["a" * 30, "b" * 30, "c" * 3]
    web.close()


def test_clock_text_is_strftime_of_the_second() -> None:
    from corral.daemon.logs import clock_text

    for when in (0.0, 1_700_000_000.25, 1_700_000_000.99, 1_700_000_001.0, 1_800_000_000.5):
        for form in ("%H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
            assert clock_text(form, when) == time.strftime(form, time.localtime(when))
