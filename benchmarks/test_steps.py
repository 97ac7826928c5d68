"""One optimizer step per grid point: time (tracker-free rounds) and memory (separate
tracked steps, process/CUDA peaks around every timed round). See ffbench/pytest_plugin.py."""

import pytest


@pytest.mark.ffbench_grid("step")
def test_train_step(step_bench, trainer, depth, batch, width):
    info = step_bench()
    assert info["tensor_peak_bytes"] > 0
    assert info["tensor_peak_parameters_bytes"] > 0
