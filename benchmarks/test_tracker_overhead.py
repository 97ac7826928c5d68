"""Cost of the tensor-level tracker: tracked vs untracked step on the same trainer,
alternating (untracked in pedantic's untimed setup, tracked in the timed round)."""

import pytest


@pytest.mark.ffbench_grid("overhead")
def test_tracker_overhead(overhead_bench, trainer, depth, batch, width):
    info = overhead_bench()
    if "tracker_overhead_factor" in info:  # absent under --benchmark-disable
        assert info["tracker_overhead_factor"] > 0
