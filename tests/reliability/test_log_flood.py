"""The log flood at small size (reliability/log_flood.py; full size: python -m reliability)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from reliability import log_flood
from reliability.harness import Client
from tests.reliability.test_protocol import killed_if_stuck
from tests.system.conftest import Corral, wait_until


@pytest.mark.timeout(300)
def test_the_log_flood_at_small_size_loses_and_tears_nothing() -> None:
    # On disk (not /dev/shm: 200 MB of logs), under a short path (the socket's has a limit).
    report = log_flood.run(log_flood.SMALL, parent=Path(tempfile.gettempdir()))
    print(report.text())
    assert report.ok, report.text()


def test_a_huge_keep_costs_a_rotation_no_more_than_a_small_one(corral: Corral) -> None:
    """Found by reliability/config_fuzz.py: ``keep`` takes any integer, and a rotation made
    one stat per kept number (1e12 of them, on the daemon's loop: it never answered again)."""
    corral.write(
        """
        [service.chatty]
        script = "for i in 1 2 3 4 5 6 7 8; do echo line-$i-0123456789012345678901234567; done; sleep 60"
        log = { max_size = 100, keep = 1000000000000 }
        """
    )
    logs = corral.root / ".corral" / "logs"
    with killed_if_stuck(corral):
        corral.up()
        wait_until(lambda: (logs / "chatty.log.2").exists(), 10, "two rotations")
        assert Client(corral.socket, timeout=5).request("ping")["ok"] is True
    rotated = sorted(p.name for p in logs.iterdir() if p.name.startswith("chatty.log"))
    assert len(rotated) > 3 and (logs / "chatty.log.1").read_text().count("line-") >= 1


def test_rotation_keeps_the_newest_keep_files_in_order(tmp_path: Path) -> None:
    from corral.daemon.logs import RotatingFile

    log = RotatingFile(str(tmp_path / "s.log"), max_size=16, keep=3)
    for number in range(20):
        log.write_lines([b"line-%02d\n" % number])  # 8 bytes: two lines a file
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["s.log", "s.log.1", "s.log.2", "s.log.3"]
    texts = [(tmp_path / n).read_text() for n in ["s.log.3", "s.log.2", "s.log.1", "s.log"]]
    assert "".join(texts) == "".join(f"line-{n:02d}\n" for n in range(12, 20))
