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
``set_malloc_mmap_threshold(65536)`` once at start (or starting the process with
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

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass

from torch.utils._python_dispatch import TorchDispatchMode

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"
_M_MMAP_THRESHOLD = -3
# Largest value glibc accepts for M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2).
_MMAP_THRESHOLD_MAX = 32 * 2**20

METHOD_HWM = "VmHWM after clear_refs reset (/proc/self/status)"
METHOD_RUSAGE = "getrusage ru_maxrss (peak since process start; cannot be reset)"
METHOD_NONE = "unavailable"

_mallopt_value: int | None = None


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


def _read_status_kib(*fields: str) -> dict[str, int] | None:
    try:
        with open(_STATUS, "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            parts = rest.split()
            if parts and parts[0].isdigit():
                found[name] = int(parts[0]) * 1024  # the kernel reports kB (KiB)
    return found if len(found) == len(fields) else None


def _reset_hwm() -> bool:
    """Reset VmHWM to the current RSS; True if the kernel accepted it."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    values = _read_status_kib("VmHWM", "VmRSS")
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
    values = _read_status_kib("VmRSS")
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
            self._start = _read_status_kib("VmRSS")["VmRSS"]
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
            values = _read_status_kib("VmHWM")
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


# -- malloc ----------------------------------------------------------------------------
def _glibc():
    """The C library as a ctypes handle if it is glibc, else None."""
    if _glibc_version() is None:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


def set_malloc_mmap_threshold(bytes: int = 65536) -> bool:  # noqa: A002 (name from the design)
    """glibc ``mallopt(M_MMAP_THRESHOLD, bytes)``: allocations of at least ``bytes``
    get their own mmap and go back to the OS when freed, so VmHWM follows the
    program's live memory instead of glibc's cache. Call once, early (before the
    model is built). Returns False where glibc is absent or the value is refused
    (glibc accepts at most 32 MiB on 64-bit). Disables glibc's dynamic threshold.
    """
    global _mallopt_value
    value = int(bytes)
    if value < 0 or value > _MMAP_THRESHOLD_MAX:
        return False
    libc = _glibc()
    if libc is None:
        return False
    if libc.mallopt(_M_MMAP_THRESHOLD, value) != 1:
        return False
    # Memory freed before this call may sit in glibc's heap, resident; later small
    # allocations would reuse it without raising RSS. Give it back to the OS now.
    libc.malloc_trim(0)
    _mallopt_value = value
    return True


def allocator_setting() -> str:
    """One line describing the malloc configuration that shapes RSS figures."""
    parts = []
    preload = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in preload:
            parts.append(f"{name} preloaded (LD_PRELOAD)")
            conf = os.environ.get("MALLOC_CONF") or os.environ.get("_RJEM_MALLOC_CONF")
            if name == "jemalloc" and conf:
                parts.append(f"MALLOC_CONF={conf}")
    libc = "glibc malloc" if _glibc_version() else "non-glibc C library"
    if not parts:
        parts.append(libc)
    if _mallopt_value is not None:
        parts.append(f"M_MMAP_THRESHOLD={_mallopt_value} via mallopt")
    env = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    if env is not None:
        parts.append(f"MALLOC_MMAP_THRESHOLD_={env} (environment)")
    for var in ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_"):
        if os.environ.get(var) is not None:
            parts.append(f"{var}={os.environ[var]}")
    if _mallopt_value is None and env is None and libc == "glibc malloc" and len(parts) == 1:
        parts.append("default thresholds (freed memory may stay resident)")
    return ", ".join(parts)


def _glibc_version() -> str | None:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    return version if version and version.startswith("glibc") else None
