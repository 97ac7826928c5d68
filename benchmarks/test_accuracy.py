"""A short, fixed training budget per trainer on real data (MNIST), timed as a whole, with
validation/test accuracy and the whole-run peaks. See ffbench/pytest_plugin.py. Without MNIST
these benchmarks are skipped, with one reason (pytest folds them into one summary line): the
8x8 digits are not the data their accuracy floor is about."""

import math

import pytest


@pytest.fixture(scope="module", autouse=True)
def needs_mnist(ffbench_mnist):
    """Skip the module's benchmarks, all with the same reason and place, without MNIST."""
    data, why = ffbench_mnist
    if data is None:
        pytest.skip(f"accuracy benchmarks need MNIST (no fallback to other data): {why}")


@pytest.mark.ffbench_grid("accuracy")
def test_accuracy(accuracy_bench, trainer, depth, batch, width):
    info = accuracy_bench()
    assert 0.0 <= info["val_accuracy"] <= 1.0 and not math.isnan(info["test_accuracy"])
    # one epoch is far above chance (10 classes) for every trainer on MNIST
    assert info["test_accuracy"] > 0.2, info["test_accuracy"]
