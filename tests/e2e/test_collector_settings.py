"""The collector's settings the server applies after start-up (api._freeze_gc)."""

from __future__ import annotations

import gc

from g4f_server import api


def test_freeze_raises_the_young_threshold_and_keeps_the_collector_on() -> None:
    before, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()  # as cli.main leaves it during start-up
    try:
        api._freeze_gc()
        young, older, oldest = gc.get_threshold()
        assert young == api.YOUNG_GENERATION_THRESHOLD > 700
        assert (older, oldest) == before[1:]  # only the young generation's changes
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # start-up's survivors out of the collector's way
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        if not enabled:
            gc.disable()
