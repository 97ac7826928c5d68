"""StepTimer and set_threads. Time checks are lower bounds only (shared machine)."""

from __future__ import annotations

import time

import pytest
import torch

from ffbench.measure import StepTime, StepTimer, available_cores, set_threads


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
        assert set_threads() == available_cores() == torch.get_num_threads()
        with pytest.raises(ValueError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
