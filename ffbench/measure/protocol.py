"""The timing protocol: how every step time a verdict may use is taken (its one home).

- **One torch thread** unless the user asks for more (`DEFAULT_THREADS`; the count is recorded):
  on a shared machine more threads measure the machine, not the algorithm.
- **glibc's default allocator settings**: the caller runs `round_robin` in a process that kept
  them (the process tuned for RSS, mmap threshold lowered, measures memory only); the record
  says which setting timed its figures (`allocator_setting`).
- **Adaptive rounds with a minimum measured time**, the idea of
  `torch.utils.benchmark.Timer.blocked_autorange` for a step that mutates its trainer: rounds
  go on until every trainer has at least `min_steps` steps *and* `min_seconds` of measured
  time, or a cap (`max_steps` rounds, `max_seconds` of the job's time; never fewer than
  `min_steps` rounds).
- **One job times the trainers of one configuration round-robin** (A B C A B C ...), so their
  ratio is taken under the same conditions; each trainer's times go to its own record.
- Recorded with the times: median, quartiles, IQR and count (`stats.timing_spread`), the
  1-minute load average before and after, the cores this process may use, the job id and
  the order. Whether a figure is fit for a verdict (enough steps, a small IQR, load below the
  cores) is decided where the thresholds live (`analysis/thresholds.py`), not here.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from ..proc import allocator_setting
from ..stats import timing_spread
from .timer import StepTimer, available_cores

PROTOCOL = "ffbench-timing/1"  # recorded with every figure taken this way
DEFAULT_THREADS = 1  # torch intra-op threads unless the user asks (--threads)
MIN_STEPS = 5  # timed steps per trainer, at least (a verdict needs 5: thresholds.MIN_TIMED_STEPS)
MIN_SECONDS = 0.25  # measured seconds per trainer, at least (fast steps get more rounds)
MAX_STEPS = 100  # rounds, at most
MAX_SECONDS = 30.0  # seconds of timed steps in one job, at most (never before MIN_STEPS rounds)


@dataclass(frozen=True)
class Protocol:
    """The stopping rule of one timing job (see the module's docstring)."""

    min_steps: int = MIN_STEPS
    min_seconds: float = MIN_SECONDS
    max_steps: int = MAX_STEPS
    max_seconds: float = MAX_SECONDS

    @classmethod
    def for_steps(cls, steps: int) -> Protocol:
        """The protocol for `--steps N`: at least N steps (N below MIN_STEPS gives figures no
        verdict uses: they are flagged as under-sampled)."""
        return cls(min_steps=steps, max_steps=max(MAX_STEPS, steps))

    def to_dict(self) -> dict:
        return asdict(self)


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to ``n`` (default: the protocol's, one thread:
    `DEFAULT_THREADS`) and return the count torch reports, to be recorded with every timing."""
    if n is None:
        n = DEFAULT_THREADS
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    return torch.get_num_threads()


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Rounds:
    """What one timing job measured: seconds per step of each trainer (by key, in the order
    each round ran them) and the conditions."""

    job: str
    times: dict[str, list[float]]  # in the order of each round (the round-robin cycle)
    load_before: float | None
    load_after: float | None
    capped: bool  # stopped by a cap before every trainer had min_seconds

    def fields(self, key: str, protocol: Protocol) -> dict:
        """The record fields of one trainer: `step_seconds` (its times), `metrics` (median,
        quartiles, IQR, count and the conditions, flat, for the results table) and `timing`
        (how they were taken)."""
        times = self.times[key]
        conditions = {  # numbers: the results table's columns
            "timing_load_before": self.load_before,
            "timing_load_after": self.load_after,
            "timing_cores": available_cores(),
            "timing_threads": torch.get_num_threads(),
            "timing_trainers": len(self.times),
        }
        timing = {
            "protocol": PROTOCOL,
            "job": self.job,
            **conditions,
            "allocator_setting": allocator_setting(),
            "order": list(self.times),  # each round ran one step of each, in this order
            "position": list(self.times).index(key),
            "rounds": len(times),
            "capped": self.capped,
            **protocol.to_dict(),
        }
        return {"step_seconds": times, "metrics": {**timing_spread(times), **conditions}, "timing": timing}


def round_robin(
    steps: dict[str, Callable[[], object]],
    device: torch.device | str = "cpu",
    protocol: Protocol = Protocol(),
) -> Rounds:
    """Time `steps` (key -> one training step, warmed up by the caller) round-robin, one
    step of each per round, each bracketed by device syncs (StepTimer), until the protocol
    stops."""
    times: dict[str, list[float]] = {key: [] for key in steps}
    rounds = 0
    load_before, started = load_average(), time.perf_counter()
    while True:
        for key, setup in steps.items():
            step = setup()  # untimed: e.g. the next batch
            with StepTimer(device) as timer:
                step()
            times[key].append(timer.result().elapsed_ns / 1e9)
        rounds += 1
        enough = all(len(t) >= protocol.min_steps and sum(t) >= protocol.min_seconds for t in times.values())
        over = rounds >= protocol.max_steps or time.perf_counter() - started >= protocol.max_seconds
        if enough or (over and rounds >= protocol.min_steps):
            break
    return Rounds(secrets.token_hex(6), times, load_before, load_average(), capped=not enough)
