"""The files bridge's watching and debouncing, with real inotify in a temporary directory and
the reports recorded (the bridge under corral is ``tests/system/test_bridges_files.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from corral.bridges import files as files_bridge
from corral.bridges.files import Files, Pattern
from corral.bridges.inotify import Inotify
from tests.bridges.fakes import RecordingLink


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Let the loop run until ``predicate`` holds; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def watching(values: list[str], body: Callable[[Files, RecordingLink], Awaitable[None]]) -> None:
    async def main() -> None:
        notify = Inotify()
        link = RecordingLink()
        files = Files(link, notify)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        loop.add_reader(notify.fileno(), files.readable)
        try:
            files.watch(values, first=True)
            await body(files, link)
        finally:
            loop.remove_reader(notify.fileno())
            notify.close()

    asyncio.run(main())


def emitted(link: RecordingLink) -> list[str]:
    return [what[1]["FILE"] for kind, what in link.said if kind == "emit"]


def test_a_pattern_is_a_path_or_a_glob_in_its_last_part() -> None:
    assert Pattern.of("/srv/in/*.csv") == Pattern("/srv/in/*.csv", "/srv/in", "*.csv", True)
    assert Pattern.of("/etc/app.conf").names("app.conf")
    assert not Pattern.of("/etc/app.conf").names("app.conf~")


def test_the_first_report_is_what_exists(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("")
    (tmp_path / "b.txt").write_text("")

    async def body(files: Files, link: RecordingLink) -> None:
        assert link.take() == [("replace", [("path-exists", {"FILE": f"{tmp_path}/a.csv"}),
                                            ("path-exists", {"FILE": f"{tmp_path}/gone"})])]  # fmt: skip

    (tmp_path / "gone").mkdir()
    watching([f"{tmp_path}/*.csv", f"{tmp_path}/gone", f"{tmp_path}/nothing"], body)


def test_a_burst_of_writes_is_one_change_and_each_file_its_own(tmp_path: Path) -> None:
    async def body(files: Files, link: RecordingLink) -> None:
        for number in range(20):  # without yielding: whatever the machine's load, in a burst
            with open(tmp_path / "a.csv", "a") as handle:
                handle.write(f"{number}\n")
        (tmp_path / "b.csv").write_text("")
        (tmp_path / "c.txt").write_text("")
        await until(lambda: len(emitted(link)) >= 2)
        await until(lambda: not files.pending)
        assert sorted(emitted(link)) == [f"{tmp_path}/a.csv", f"{tmp_path}/b.csv"]
        holds = [what[1]["FILE"] for kind, what in link.said if kind == "hold"]
        assert holds == [f"{tmp_path}/a.csv", f"{tmp_path}/b.csv"]

    watching([f"{tmp_path}/*.csv"], body)


def test_a_file_written_without_pause_still_reports_within_the_longest_wait(
    tmp_path: Path,
) -> None:
    async def body(files: Files, link: RecordingLink) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not emitted(link):
            assert loop.time() - start < files_bridge.LONGEST + 3, "never reported"
            with open(tmp_path / "log", "a") as handle:
                handle.write("x\n")
            await asyncio.sleep(files_bridge.QUIET / 4)
        assert loop.time() - start >= files_bridge.LONGEST - 0.1

    watching([f"{tmp_path}/log"], body)


def test_a_directory_made_later_is_waited_for_and_a_named_directory_changes_with_its_entries(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "var" / "spool"

    async def body(files: Files, link: RecordingLink) -> None:
        spool.mkdir(parents=True)
        await until(lambda: ("hold", ("path-exists", {"FILE": str(spool)})) in link.said)
        await until(lambda: str(spool) in files.watches)
        await until(lambda: not files.pending)
        link.take()
        (spool / "job1").write_text("")
        await until(lambda: emitted(link) == [str(spool)])
        (spool / "job1").unlink()
        spool.rmdir()
        await until(lambda: ("release", ("path-exists", {"FILE": str(spool)})) in link.said)

    watching([str(spool)], body)


def test_new_paths_from_a_reload_are_reported_as_state_not_as_changes(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("")
    (tmp_path / "new").write_text("")

    async def body(files: Files, link: RecordingLink) -> None:
        link.take()
        files.watch([str(tmp_path / "new")], first=False)
        assert link.take() == [("release", ("path-exists", {"FILE": str(tmp_path / "old")})),
                               ("hold", ("path-exists", {"FILE": str(tmp_path / "new")}))]  # fmt: skip
        assert not files.pending

    watching([str(tmp_path / "old")], body)
