"""Episode lines: GC pausing."""

from __future__ import annotations

import gc

import pytest

from components.episode import gc_paused


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(RuntimeError), gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("the block failed")
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()
