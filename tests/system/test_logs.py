"""Output capture: the memory ring, files with rotation, following, and floods."""

from __future__ import annotations

import select
import subprocess
import time

from tests.system.conftest import CORRAL, Corral, wait_until


def test_logs_tail_and_file(corral: Corral) -> None:
    corral.write(
        """
        [service.talker]
        script = "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 60"
        """
    )
    corral.up()
    wait_until(lambda: "oops" in corral.ok("logs", "talker"), 5, "output")
    tail = corral.ok("logs", "talker", "-n", "2").strip().split("\n")
    assert len(tail) == 2 and tail[0].endswith("| line 5") and tail[1].endswith("| oops")
    text = (corral.root / ".corral" / "logs" / "talker.log").read_text()
    assert "line 1" in text and "oops" in text
    assert "talker | line 1" in corral.log()  # honcho-style foreground lines


def test_log_file_rotates_by_size(corral: Corral) -> None:
    corral.write(
        """
        [service.chatty]
        script = "i=0; while [ $i -lt 400 ]; do echo 'some fairly long line of output number' $i; i=$((i+1)); done; sleep 60"
        log = { max_size = 4096, keep = 2 }
        """
    )
    corral.up()
    logs = corral.root / ".corral" / "logs"
    wait_until(lambda: (logs / "chatty.log.2").exists(), 10, "two rotations")
    assert not (logs / "chatty.log.3").exists()
    assert (logs / "chatty.log").stat().st_size <= 4096 + 200
    wait_until(lambda: "number 399" in (logs / "chatty.log").read_text(), 5, "the last line")


def test_logs_follow_streams_new_lines(corral: Corral) -> None:
    corral.write(
        '[service.ticker]\nscript = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"\n'
    )
    corral.up()
    follower = subprocess.Popen(
        [*CORRAL, "logs", "ticker", "-f", "-n", "0", "--socket", corral.socket],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        first = follower.stdout.readline()
        second = follower.stdout.readline()
        assert "tick" in first and "tick" in second
    finally:
        follower.kill()
        follower.wait(timeout=5)
    corral.ok("status")  # the daemon noticed the follower leave and is fine


def test_a_flooding_service_does_not_stall_the_daemon(corral: Corral) -> None:
    corral.write(
        """
        [service.flood]
        exec = ["sh", "-c", "yes 'flooding flooding flooding flooding flooding'"]
        log = false

        [service.quiet]
        exec = ["sleep", "60"]
        autostart = false
        """
    )
    corral.up()
    corral.wait_state("flood", "running")
    time.sleep(0.5)
    began = time.monotonic()
    for _ in range(5):
        corral.ok("status")
    corral.ok("start", "quiet")
    corral.ok("stop", "quiet")
    assert time.monotonic() - began < 10
    assert "flooding" in corral.ok("logs", "flood", "-n", "1")


def test_a_line_without_newline_is_cut_not_buffered_forever(corral: Corral) -> None:
    corral.write(
        """
        [service.noline]
        script = "head -c 100000 /dev/zero | tr '\\\\0' x; sleep 60"
        """
    )
    corral.up()
    wait_until(lambda: "xxxx" in corral.ok("logs", "noline", "-n", "20"), 5, "the pieces")


def test_last_words_come_before_the_exit_in_the_log(corral: Corral) -> None:
    """What a process printed just before it died is logged before corral's word on its
    exit (the SIGCHLD can be handled before the pipe is read: its rest is read first)."""
    corral.write(
        """
        [service.dying]
        script = "echo starting up; printf 'cannot open the database'; exit 3"
        restart = "no"
        """
    )
    corral.up()
    corral.wait_state("dying", "failed")
    lines = corral.ok("logs", "dying").splitlines()
    words = next(i for i, line in enumerate(lines) if "cannot open the database" in line)
    verdict = next(i for i, line in enumerate(lines) if "exited with status 3" in line)
    assert words < verdict, lines


#: Two services that print in turns (each waits for the other's mark, then a moment, so
#: the daemon has read the line before): first one, second one, first two, second two.
TWO_TALKERS = """
[service.first]
script = "echo first one; touch a; until [ -e b ]; do sleep 0.05; done; sleep 0.2; echo first two; touch c; exec sleep 60"

[service.second]
script = "until [ -e a ]; do sleep 0.05; done; sleep 0.2; echo second one; touch b; until [ -e c ]; do sleep 0.05; done; sleep 0.2; echo second two; exec sleep 60"
"""


def _said(text: str) -> list[str]:
    """Each line's ``name | text`` part, the name's padding squeezed."""
    return [" ".join(line.split(None, 1)[1].split()) for line in text.splitlines()]


def test_logs_of_two_services_shows_both_merged_in_time_order(corral: Corral) -> None:
    corral.write(TWO_TALKERS)
    corral.up()
    wait_until(lambda: "second two" in corral.ok("logs", "second"), 5, "the second's lines")
    shown = [line for line in _said(corral.ok("logs", "first", "second")) if "[corral]" not in line]
    assert shown == [
        "first | first one",
        "second | second one",
        "first | first two",
        "second | second two",
    ]


def test_logs_without_a_name_shows_every_service_prefixed_like_up(corral: Corral) -> None:
    corral.write(TWO_TALKERS)
    corral.up()
    wait_until(lambda: "second two" in corral.ok("logs", "second"), 5, "the second's lines")
    text = corral.ok("logs", "-n", "100")
    assert [line for line in _said(text) if "[corral]" not in line] == [
        "first | first one",
        "second | second one",
        "first | first two",
        "second | second two",
    ]
    lines = text.splitlines()
    assert all(line[2] == ":" and line[5] == ":" and line[8] == " " for line in lines)  # 12:00:01
    bars = {line.index(" | ") for line in lines}
    assert len(bars) == 1, "the names are padded to one column, as up's console pads them"
    assert corral.ok("logs", "-n", "2").count("\n") == 2  # the last two of all of them


def test_logs_follow_without_a_name_follows_every_service(corral: Corral) -> None:
    corral.write(
        """
        [service.tick]
        script = "while true; do echo tick; sleep 0.1; done"

        [service.tock]
        script = "while true; do echo tock; sleep 0.1; done"
        """
    )
    corral.up()
    follower = subprocess.Popen(
        [*CORRAL, "logs", "-f", "-n", "0", "--socket", corral.socket],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        seen: set[str] = set()
        deadline = time.monotonic() + 10
        while seen != {"tick | tick", "tock | tock"}:
            assert time.monotonic() < deadline, f"followed only {seen}"
            ready, _, _ = select.select([follower.stdout], [], [], 0.5)
            if ready:
                seen.update(_said(follower.stdout.readline()))
    finally:
        follower.kill()
        follower.wait(timeout=5)
