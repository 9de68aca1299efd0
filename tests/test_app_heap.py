"""Once started, the daemon hides its start-up heap from the cyclic GC and collects the young
generation less often (`ccrouter.app.settle_heap`)."""

from __future__ import annotations

import gc

from ccrouter.app import GC_THRESHOLDS, settle_heap


def test_settle_heap_freezes_what_exists_and_sets_the_thresholds() -> None:
    before = gc.get_threshold()
    built_at_start = [[i] for i in range(1000)]  # containers the GC tracks
    try:
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() >= len(built_at_start)
        young = {id(x) for x in gc.get_objects(0)}
        assert not any(id(x) in young for x in built_at_start)  # none left to collect again
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
