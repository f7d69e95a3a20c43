"""What a server has when start-up is done is frozen out of the collector's sight; what
it makes later is collected as before."""

from __future__ import annotations

import gc

from amanat.platform.startup_heap import freeze_startup_heap


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_startup_objects_are_frozen_and_later_garbage_is_still_collected() -> None:
    kept = _Cycle()
    gc.unfreeze()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects()), "frozen: the collector skips it"
        later = _Cycle()
        gone = id(later)
        del later
        gc.collect()
        assert all(id(o) != gone for o in gc.get_objects() if isinstance(o, _Cycle))
    finally:
        gc.unfreeze()  # the test process goes on collecting everything
