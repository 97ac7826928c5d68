"""CudaPeakTracker. Real GPU tests skip cleanly on a CPU-only machine."""

from __future__ import annotations

import pytest
import torch

from ffbench.errors import DeviceUnavailableError
from ffbench.measure import CudaMemory, CudaPeakTracker, TensorTracker

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


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
