"""The collector during and after the start-up burst (see ``loop._settle_memory``)."""

from __future__ import annotations

import gc

from corral.daemon.loop import _settle_memory


def test_after_the_start_the_collector_runs_again_and_the_start_is_set_apart() -> None:
    gc.disable()
    try:
        _settle_memory()
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()
