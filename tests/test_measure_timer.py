"""StepTimer and set_threads. Time checks are lower bounds only (shared machine)."""

from __future__ import annotations

import time

import pytest
import torch

from ffbench.measure import StepTime, StepTimer, set_threads
from ffbench.measure.protocol import DEFAULT_THREADS, MIN_STEPS, PROTOCOL, Protocol, round_robin


def test_step_timer_cpu():
    with StepTimer("cpu") as t:
        time.sleep(0.02)
    r = t.result()
    assert isinstance(r, StepTime) and isinstance(r.elapsed_ns, int)
    assert r.elapsed_ns >= 20_000_000
    assert "perf_counter_ns" in r.method and "no sync" in r.method


def test_step_timer_result_before_exit_raises():
    with pytest.raises(RuntimeError):
        StepTimer().result()


@pytest.mark.cuda
def test_step_timer_cuda_waits_for_queued_work():
    a = torch.randn(2048, 2048, device="cuda")
    with StepTimer("cuda") as t:
        for _ in range(20):
            a = a @ a / 2048
    assert "synchronize" in t.result().method
    assert t.result().elapsed_ns > 0
    # The timer synchronised before stopping: nothing is left queued on the stream.
    assert torch.cuda.current_stream().query()


def test_set_threads():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 == torch.get_num_threads()
        set_threads(2)
        assert set_threads() == DEFAULT_THREADS == 1 == torch.get_num_threads()  # one unless asked
        with pytest.raises(ValueError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_round_robin_interleaves_and_meets_the_minimums():
    """Rounds go on until every step has MIN_STEPS steps and min_seconds measured; each round
    runs one step of each, in order (the log of calls shows the interleaving)."""
    calls = []

    def setup(key):
        def step():
            calls.append(key)

        return step

    rule = Protocol(min_steps=5, min_seconds=0.0, max_steps=50)
    rounds = round_robin({"a": lambda: setup("a"), "b": lambda: setup("b")}, "cpu", rule)
    assert calls == ["a", "b"] * 5 and [len(t) for t in rounds.times.values()] == [5, 5]
    fields = rounds.fields("b", rule)
    assert fields["metrics"]["timed_steps"] == 5 and fields["step_seconds"] == rounds.times["b"]
    t = fields["timing"]
    assert (
        t["protocol"] == PROTOCOL
        and t["job"] == rounds.job
        and t["order"] == ["a", "b"]
        and t["position"] == 1
    )
    assert {"timing_load_before", "timing_load_after", "timing_cores", "step_seconds_iqr"} <= set(
        fields["metrics"]
    )
    # a minimum of measured time: fast steps get more rounds (up to the cap)
    calls.clear()
    slow = round_robin({"a": lambda: setup("a")}, "cpu", Protocol(min_steps=5, min_seconds=10.0, max_steps=7))
    assert len(slow.times["a"]) == 7 and slow.capped
    # the cap never cuts below the minimum of steps
    capped = round_robin(
        {"a": lambda: setup("a")}, "cpu", Protocol(min_steps=6, max_steps=6, max_seconds=0.0)
    )
    assert len(capped.times["a"]) == 6


def test_protocol_minimum_is_what_a_verdict_needs():
    from ffbench.analysis import thresholds as T
    from ffbench.run.harness import HarnessSettings
    from ffbench.run.sweep import SweepSettings

    assert MIN_STEPS >= T.MIN_TIMED_STEPS
    assert HarnessSettings().timing_steps == SweepSettings().timing_steps == MIN_STEPS
    assert Protocol.for_steps(3).min_steps == 3  # asked for: its figures are flagged, not padded
