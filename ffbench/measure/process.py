"""CPU process memory: the resident-set high-water mark (VmHWM) over a block of code.

What is measured
----------------
`ProcessPeakTracker` resets the kernel's per-process RSS high-water mark by
writing ``5`` to ``/proc/self/clear_refs``, reads ``VmRSS`` (start), and at exit
reads ``VmHWM`` (peak) from ``/proc/self/status``. The rise (peak - start) is
everything the process touched: tensors, allocator slack, code paged in,
thread stacks, Python objects. Quote the rise, not the absolute RSS (importing
torch alone makes RSS about 0.5 GiB).

Allocator caveat: glibc keeps most freed memory resident and reuses it, so the
high-water mark of a step depends on what earlier steps left behind (noise of
+-70 MiB was seen for one training step). Calling
``ffbench.proc.set_malloc_mmap_threshold(65536)`` once at start (or starting the process with
``MALLOC_MMAP_THRESHOLD_=65536``) makes every allocation of 64 KiB or more its
own mmap, returned to the OS on free; the rise then matches the tensor-level
rise to within a fraction of a MiB. ``allocator_setting()`` describes what is in
force, for the record.

Fallback: where ``/proc/self/clear_refs`` cannot be written (not Linux, or not
permitted) the tracker uses ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, a
peak since process start that cannot be reset; the result then says so in
``method`` and has ``supported=False`` (its rise is only meaningful if this block
holds the largest footprint the process ever had).

Polling RSS from a thread (psutil) misses short spikes (several MiB at 5 ms, more at 20 ms),
so it is never used for a peak.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from torch.utils._python_dispatch import TorchDispatchMode

from ..proc import allocator_setting, read_status

_CLEAR_REFS = "/proc/self/clear_refs"

METHOD_HWM = "VmHWM after clear_refs reset (/proc/self/status)"
METHOD_RUSAGE = "getrusage ru_maxrss (peak since process start; cannot be reset)"
METHOD_NONE = "unavailable"


@dataclass(frozen=True)
class ProcessMemory:
    """Result of a ProcessPeakTracker. Sizes in bytes of resident memory (RSS).

    supported is False when the peak could not be reset to the start of the block
    (then peak_rss_bytes is the process's lifetime peak). allocator_setting
    describes the malloc configuration in force (see allocator_setting()).
    """

    method: str
    start_rss_bytes: int
    peak_rss_bytes: int
    rise_bytes: int
    supported: bool
    allocator_setting: str
    # RSS read after every aten op inside the block (``sample_ops=True``), max minus start.
    # On kernels with per-CPU RSS counters (Linux >= 6.2) VmHWM is updated from an
    # approximate count and can miss a short peak by tens of MiB; an exact VmRSS read
    # after each op does not (it misses only memory freed inside a single op).
    op_sampled_peak_rss_bytes: int | None = None
    op_sampled_rise_bytes: int | None = None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; True if the kernel accepted it."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    values = read_status("VmHWM", "VmRSS")
    # Right after a reset the high-water mark equals the RSS (allow for pages
    # touched between the write and the read).
    return values is not None and values["VmHWM"] - values["VmRSS"] <= 4 * 2**20


def _maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024  # Linux: KiB


def _current_rss_bytes() -> int | None:
    values = read_status("VmRSS")
    if values is not None:
        return values["VmRSS"]
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.Process().memory_info().rss)


class _OpRssSampler(TorchDispatchMode):
    """Reads the process's exact VmRSS after every aten op and keeps the maximum."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.peak = start

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rss = _current_rss_bytes()
        if rss is not None and rss > self.peak:
            self.peak = rss
        return out


class ProcessPeakTracker:
    """Context manager: RSS at the start of the block and its high-water mark inside it.

    ``with ProcessPeakTracker() as t: step()`` then ``t.result()``. The high-water
    mark is process-wide (all threads); the harness should keep other work out of
    the block.
    """

    def __init__(self, sample_ops: bool = False) -> None:
        self._result: ProcessMemory | None = None
        self._method = METHOD_NONE
        self._start = 0
        self._sample_ops = sample_ops
        self._sampler: _OpRssSampler | None = None

    def __enter__(self) -> ProcessPeakTracker:
        self._result = None
        if _reset_hwm():
            self._method = METHOD_HWM
            self._start = read_status("VmRSS")["VmRSS"]
        elif _maxrss_bytes() is not None:
            self._method = METHOD_RUSAGE
            self._start = _current_rss_bytes() or 0
        else:
            self._method = METHOD_NONE
            self._start = _current_rss_bytes() or 0
        if self._sample_ops:
            self._sampler = _OpRssSampler(self._start)
            self._sampler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        sampled: int | None = None
        if self._sampler is not None:
            self._sampler.__exit__(*exc)
            sampled = self._sampler.peak
            self._sampler = None
        peak: int | None = None
        if self._method == METHOD_HWM:
            values = read_status("VmHWM")
            peak = values["VmHWM"] if values is not None else None
        elif self._method == METHOD_RUSAGE:
            peak = _maxrss_bytes()
        if peak is not None:
            # The kernel's RSS counters are synced lazily (per-thread caches), so a
            # peak can read a few pages below an earlier RSS reading; a peak is never
            # below the start or the current RSS.
            peak = max(peak, self._start, _current_rss_bytes() or 0)
        method = self._method if peak is not None else METHOD_NONE
        supported = method == METHOD_HWM
        peak = peak if peak is not None else self._start
        self._result = ProcessMemory(
            method=method,
            start_rss_bytes=self._start,
            peak_rss_bytes=peak,
            rise_bytes=peak - self._start,
            supported=supported,
            allocator_setting=allocator_setting(),
            op_sampled_peak_rss_bytes=sampled,
            op_sampled_rise_bytes=None if sampled is None else sampled - self._start,
        )

    def result(self) -> ProcessMemory:
        if self._result is None:
            raise RuntimeError("ProcessPeakTracker.result() is available after the with-block ends")
        return self._result
