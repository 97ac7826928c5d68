"""Rough time estimates for `--dry-run` and the full profile's CPU warning.

Arithmetic only: 6 flops per weight per example for a training step (forward 2, backward
4; FF forwards 2 x batch rows), at a speed measured here on one matmul (`measure_speed`),
plus a fixed start-up per worker process (python and torch imports). Good to a factor of
two or so: enough to choose between a coffee and a night.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..config import RunConfig

WORKER_START_SECONDS = 4.0  # one fresh `python -m ffbench.run.worker`: imports torch
MEMORY_STEPS = 6  # the harness's untimed steps: first, untracked, tracked (slower), eval, process
MNIST_SHAPE = (784, 10, 60000)  # in_features, classes, training examples


def weights(depth: int, width: int, in_features: int = MNIST_SHAPE[0]) -> int:
    return in_features * width + (depth - 1) * width**2


def macs(config: RunConfig, in_features: int = MNIST_SHAPE[0]) -> int:
    """Multiply-adds per example of one forward: the MLP's weights, or under --arch conv|local
    every layer's outputs x its filter size (unshared or not: the same count), plus the head."""
    from ..arch import is_image, layer_specs

    if not is_image(config.arch):
        return weights(config.depth, config.width, in_features)
    given = config.image_shape or config.dataset in ("synthetic", "cifar10")  # else MNIST's 1x28x28
    specs = layer_specs(config, None if given else in_features)
    return sum(s.out_numel * s.patch for s in specs) + specs[-1].out_numel * MNIST_SHAPE[1]


def step_gflop(config: RunConfig, in_features: int = MNIST_SHAPE[0]) -> float:
    rows = 2 if config.is_ff else 1
    return 6 * macs(config, in_features) * config.batch_size * rows / 1e9


def measure_speed(device: str = "cpu") -> float:
    """Seconds per GFLOP of this machine on a 1024 x 2000 x 2000 matmul (three samples)."""
    import torch

    from ..device import resolve_device, synchronize

    dev = resolve_device(device)
    a, b = torch.randn(1024, 2000, device=dev), torch.randn(2000, 2000, device=dev)
    a @ b
    synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(3):
        a @ b
    synchronize(dev)
    return (time.perf_counter() - t0) / (3 * 2 * 1024 * 2000 * 2000 / 1e9)


def measure_seconds(configs: Iterable[RunConfig], steps: int, speed: float, default_malloc: bool) -> float:
    """A sweep's configurations, each in its own worker: start-up, memory steps, timed steps
    (twice, and a second worker, when the default-malloc timing runs too)."""
    total = 0.0
    for c in configs:
        timed = steps * (2 if default_malloc and steps else 1)
        starts = 2 if default_malloc and steps else 1
        total += starts * WORKER_START_SECONDS + (MEMORY_STEPS + timed) * step_gflop(c) * speed
    return total


def search_seconds(config: RunConfig, seed_batch: int | None, speed: float, steps: int = 0) -> float:
    """One largest-batch search: about 8 probes near the analytic seed (14 without one)."""
    probes = 8 if seed_batch else 14
    probe = config.replace(batch_size=max(1, seed_batch or 1024))
    return probes * (WORKER_START_SECONDS + (MEMORY_STEPS - 2 + steps) * step_gflop(probe) * speed)


def fit_seconds(config: RunConfig, speed: float, examples: int = MNIST_SHAPE[2]) -> float:
    """Training epochs plus FF's label-by-label evaluation."""
    per_example = step_gflop(config.replace(batch_size=1)) + (
        2 * 10 * macs(config) / 1e9 if config.is_ff else 0
    )
    return config.epochs * examples * per_example * speed


def minutes(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
