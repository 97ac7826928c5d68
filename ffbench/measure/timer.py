"""Wall-clock time of a block, with the device drained before each clock reading.

`StepTimer(device)` synchronises the device (``torch.cuda.synchronize`` for CUDA;
nothing to do on CPU, whose ops finish before they return) before starting and
before stopping a ``time.perf_counter_ns`` clock, so queued GPU work is inside
the interval. The result is integer nanoseconds.

`protocol.set_threads(n)` fixes torch's intra-op thread count (default one: the timing protocol's)
and returns it for the record: on shared machines oversubscribed threads can make small steps orders
of magnitude slower, so timings are only comparable at a recorded thread count.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StepTime:
    """Result of a StepTimer: elapsed wall-clock nanoseconds and how they were taken."""

    method: str
    elapsed_ns: int


def _synchronizer(device: torch.device) -> Callable[[], None] | None:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    if device.type == "cpu":
        return None
    backend = getattr(torch, device.type, None)  # e.g. torch.mps, torch.xpu
    sync = getattr(backend, "synchronize", None)
    return (lambda: sync()) if callable(sync) else None


class StepTimer:
    """Context manager: ``with StepTimer(device) as t: step()`` then ``t.result()``."""

    def __init__(self, device: torch.device | str | None = "cpu") -> None:
        self.device = torch.device(device if device is not None else "cpu")
        self._sync = _synchronizer(self.device)
        if self._sync is None:
            self.method = "time.perf_counter_ns (cpu: ops complete before returning, no sync)"
        else:
            self.method = f"time.perf_counter_ns, {self.device.type} synchronize before start and stop"
        self._result: StepTime | None = None

    def __enter__(self) -> StepTimer:
        self._result = None
        if self._sync is not None:
            self._sync()
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sync is not None:
            self._sync()
        elapsed = time.perf_counter_ns() - self._t0
        self._result = StepTime(method=self.method, elapsed_ns=elapsed)

    def result(self) -> StepTime:
        if self._result is None:
            raise RuntimeError("StepTimer.result() is available after the with-block ends")
        return self._result


def available_cores() -> int:
    """Cores this process may run on (CPU affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
