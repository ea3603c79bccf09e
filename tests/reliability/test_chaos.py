"""The chaos soak at small size (reliability/chaos.py; full size: python -m reliability)."""

from __future__ import annotations

import pytest

from reliability import chaos


@pytest.mark.timeout(300)
def test_the_chaos_soak_at_small_size_loses_nothing() -> None:
    report = chaos.run(chaos.SMALL)
    print(report.text())
    assert report.ok, report.text()
