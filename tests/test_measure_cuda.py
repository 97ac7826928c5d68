"""CudaPeakTracker. Real GPU tests skip cleanly on a CPU-only machine."""

from __future__ import annotations

import pytest
import torch

from ffbench.errors import DeviceUnavailableError
from ffbench.measure import CudaMemory, CudaPeakTracker, TensorTracker

cuda = pytest.mark.cuda  # skipped without a GPU (tests/conftest.py)


def round_up(n: int, block: int = 512) -> int:
    return -(-n // block) * block


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_clear_error_without_cuda():
    with pytest.raises(DeviceUnavailableError, match="CUDA"):
        CudaPeakTracker("cuda")


@cuda
def test_cpu_device_is_refused():
    with pytest.raises(DeviceUnavailableError):
        CudaPeakTracker("cpu")


@cuda
def test_rise_is_tensor_size_rounded_to_512():
    dev = torch.device("cuda", torch.cuda.current_device())
    keep = torch.empty(1000, device=dev)  # alive before: part of start
    torch.cuda.synchronize(dev)
    n = 123_457  # 493828 bytes, not a multiple of 512
    with CudaPeakTracker(dev) as t:
        a = torch.empty(n, device=dev)
        del a
    r = t.result()
    assert isinstance(r, CudaMemory)
    assert r.rise_allocated_bytes == round_up(n * 4)
    assert r.peak_allocated_bytes == r.start_allocated_bytes + r.rise_allocated_bytes
    assert r.start_allocated_bytes >= round_up(keep.nbytes)
    assert r.peak_reserved_bytes >= r.peak_allocated_bytes
    assert 0 < r.device_used_bytes_before <= r.device_total_bytes
    assert 0 < r.device_used_bytes_after <= r.device_total_bytes
    assert r.device == str(dev)
    del keep


@cuda
def test_peak_reset_between_trackers():
    dev = torch.device("cuda", torch.cuda.current_device())
    with CudaPeakTracker(dev):
        big = torch.empty(4 * 2**20, device=dev)
        del big
    with CudaPeakTracker(dev) as t:
        small = torch.empty(256, device=dev)
        del small
    assert t.result().rise_allocated_bytes == 1024


@cuda
def test_agrees_with_tensor_tracker_on_a_step():
    dev = torch.device("cuda", torch.cuda.current_device())
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)).to(dev)
    x = torch.randn(128, 256, device=dev)
    model(x).sum().backward()  # warm-up: cuBLAS workspace, grads
    with CudaPeakTracker(dev) as c, TensorTracker(model.parameters(), inputs=[x], device=dev) as t:
        model(x).sum().backward()
    tensors, allocator = t.result(), c.result()
    # The allocator rounds every block up to a multiple of 512 B, never down, and
    # each op returns at most a couple of new storages.
    assert tensors.transient_bytes > 0
    assert allocator.rise_allocated_bytes >= tensors.transient_bytes
    assert allocator.rise_allocated_bytes - tensors.transient_bytes <= 2 * 512 * tensors.op_count


@cuda
@pytest.mark.parametrize("trainer", ["bp", "bp-inbackward", "ff", "ff-frugal"])
def test_run_one_on_cuda_records_every_tracker(trainer):
    """The harness on a GPU: tensor-level, allocator and process figures of one record; the
    allocator serves at least the device's tensor bytes (blocks round up to 512 B)."""
    from ffbench.config import RunConfig
    from ffbench.run.harness import HarnessSettings, run_one

    config = RunConfig(
        trainer=trainer, depth=2, width=256, batch_size=128, dataset="synthetic", device="cuda"
    )
    record = run_one(config, HarnessSettings(timing_steps=2, compare_allocator=False))
    m = record.metrics
    for key in (
        "tensor_peak_bytes",
        "tensor_train_peak_bytes",
        "tensor_eval_peak_bytes",
        "cuda_peak_allocated_bytes",
        "cuda_peak_reserved_bytes",
        "cuda_train_peak_allocated_bytes",
        "cuda_whole_run_peak_allocated_bytes",
        "rss_rise_bytes",
        "step_seconds_median",
    ):
        assert m.get(key) is not None and m[key] >= 0, key
    assert m["cuda_peak_reserved_bytes"] >= m["cuda_peak_allocated_bytes"]
    assert m["cuda_whole_run_peak_allocated_bytes"] >= m["cuda_train_peak_allocated_bytes"]
    # Adam's step counters live on the CPU (4 bytes per parameter tensor): the allocator's
    # rise over the step start covers the tensor-level transient of the device's storages
    assert m["cuda_rise_allocated_bytes"] >= m["tensor_transient_bytes"] - 4 * 64
    assert record.methods["cuda"]


@cuda
@pytest.mark.parametrize("trainer", ["bp", "ff", "ff-frugal"])
def test_the_analytic_model_matches_the_tracker_on_cuda(trainer):
    """The ledger was derived on CPU; on a GPU the same ops should allocate the same tensors."""
    from ffbench.config import RunConfig
    from ffbench.run.harness import HarnessSettings, run_one

    config = RunConfig(
        trainer=trainer, depth=2, width=256, batch_size=128, dataset="synthetic", device="cuda"
    )
    m = run_one(config, HarnessSettings(timing_steps=1, compare_allocator=False)).metrics
    for what in ("peak", "first_step_peak", "eval_peak"):
        assert m[f"analytic_{what}_bytes"] == m[f"tensor_{what}_bytes"], what
