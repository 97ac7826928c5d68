"""CUDA memory: the caching allocator's peaks over a block of code, and the device view.

What is measured
----------------
`CudaPeakTracker(device)` brackets a block with::

    enter: synchronize(device); reset_peak_memory_stats(device)
           start_allocated = memory_allocated(device); start_reserved = memory_reserved(device)
           (free, total) = mem_get_info(device)
    exit:  synchronize(device)
           peak_allocated = max_memory_allocated(device); peak_reserved = max_memory_reserved(device)
           (free, total) = mem_get_info(device)

* allocated: bytes of live tensor blocks handed out by PyTorch's caching allocator,
  each rounded up to a multiple of 512 B. ``reset_peak_memory_stats`` sets the
  peak to the current value, so the rise of the block is peak - start.
* reserved: segments the allocator holds from the driver, cached blocks
  included; it never falls below what is cached unless ``empty_cache()`` ran
  first (the harness decides that).
* device used (total - free from ``mem_get_info``): the whole device as the driver
  sees it, CUDA context and other processes included; a before/after pair, not a peak.

These three figures are kept in separate fields and never combined. The CUDA
context is in neither allocated nor reserved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DeviceUnavailableError

METHOD = (
    "torch.cuda caching-allocator stats: synchronize, reset_peak_memory_stats, "
    "max_memory_allocated/max_memory_reserved; mem_get_info for the device"
)


@dataclass(frozen=True)
class CudaMemory:
    """Result of a CudaPeakTracker. All sizes in bytes.

    *_allocated_*: live tensor blocks (512 B granularity); *_reserved_*: allocator
    segments incl. cache; device_*: total - free from the driver (whole device).
    """

    method: str
    device: str
    start_allocated_bytes: int
    peak_allocated_bytes: int
    rise_allocated_bytes: int
    start_reserved_bytes: int
    peak_reserved_bytes: int
    device_used_bytes_before: int
    device_used_bytes_after: int
    device_total_bytes: int


def cuda_device(device: torch.device | str | int | None = None) -> torch.device:
    """Normalise ``device`` to an indexed CUDA device; raise if CUDA is unavailable."""
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "CUDA memory tracking needs a CUDA device, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__})"
        )
    if device is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    elif isinstance(device, int):
        dev = torch.device("cuda", device)
    else:
        dev = torch.device(device)
    if dev.type != "cuda":
        raise DeviceUnavailableError(f"CudaPeakTracker needs a CUDA device, got {dev}")
    if dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"{dev} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
        )
    return dev


class CudaPeakTracker:
    """Context manager: CUDA allocator peak (allocated and reserved) over a block.

    ``with CudaPeakTracker("cuda") as t: step()`` then ``t.result()``. Resets the
    device's peak statistics on enter, so do not nest two of these on one device.
    """

    def __init__(self, device: torch.device | str | int | None = None) -> None:
        self.device = cuda_device(device)
        self._result: CudaMemory | None = None

    def __enter__(self) -> CudaPeakTracker:
        dev = self.device
        self._result = None
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        self._start_allocated = int(torch.cuda.memory_allocated(dev))
        self._start_reserved = int(torch.cuda.memory_reserved(dev))
        free, total = torch.cuda.mem_get_info(dev)
        self._used_before = int(total - free)
        return self

    def __exit__(self, *exc: object) -> None:
        dev = self.device
        torch.cuda.synchronize(dev)
        peak_allocated = int(torch.cuda.max_memory_allocated(dev))
        peak_reserved = int(torch.cuda.max_memory_reserved(dev))
        free, total = torch.cuda.mem_get_info(dev)
        self._result = CudaMemory(
            method=METHOD,
            device=str(dev),
            start_allocated_bytes=self._start_allocated,
            peak_allocated_bytes=peak_allocated,
            rise_allocated_bytes=peak_allocated - self._start_allocated,
            start_reserved_bytes=self._start_reserved,
            peak_reserved_bytes=peak_reserved,
            device_used_bytes_before=self._used_before,
            device_used_bytes_after=int(total - free),
            device_total_bytes=int(total),
        )

    def result(self) -> CudaMemory:
        if self._result is None:
            raise RuntimeError("CudaPeakTracker.result() is available after the with-block ends")
        return self._result
