"""A short, fixed training budget per trainer on real data (MNIST, else digits), timed as
a whole, with validation/test accuracy and the whole-run peaks. See ffbench/pytest_plugin.py."""

import math

import pytest


@pytest.mark.ffbench_grid("accuracy")
def test_accuracy(accuracy_bench, trainer, depth, batch, width):
    info = accuracy_bench()
    assert 0.0 <= info["val_accuracy"] <= 1.0 and not math.isnan(info["test_accuracy"])
    # one epoch is far above chance (10 classes) for every trainer on MNIST and digits
    assert info["test_accuracy"] > 0.2, info["test_accuracy"]
