"""ProcessPeakTracker / mallopt. Memory bands, not wall-clock checks."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from ffbench.measure import ProcessMemory, ProcessPeakTracker
from ffbench.measure import process as process_mod
from ffbench.proc import allocator_setting, glibc_version, set_malloc_mmap_threshold

MiB = 2**20
linux_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc/self/clear_refs"
)
glibc = pytest.mark.skipif(glibc_version() is None, reason="needs glibc")


@glibc
def test_set_malloc_mmap_threshold_and_setting():
    assert set_malloc_mmap_threshold(65536) is True
    assert "M_MMAP_THRESHOLD=65536 via mallopt" in allocator_setting()
    assert set_malloc_mmap_threshold(64 * MiB) is False  # above glibc's maximum


@linux_proc
@glibc
def test_rise_of_a_64_mib_tensor_and_reset():
    assert set_malloc_mmap_threshold(65536)
    n = 64 * MiB // 4
    torch.ones(1024).sum()  # page in the code paths first
    with ProcessPeakTracker() as t:
        a = torch.ones(n)  # written, so resident
        del a
    r = t.result()
    assert isinstance(r, ProcessMemory)
    assert r.supported and r.method.startswith("VmHWM")
    assert r.rise_bytes == r.peak_rss_bytes - r.start_rss_bytes
    assert abs(r.rise_bytes - 64 * MiB) <= 8 * MiB, r
    assert "mallopt" in r.allocator_setting
    # The tensor is gone (returned to the OS): a fresh tracker starts from a reset
    # high-water mark, so it must not see the 64 MiB again.
    with ProcessPeakTracker() as t2:
        torch.ones(1024).sum()
    r2 = t2.result()
    assert r2.supported
    assert 0 <= r2.rise_bytes <= 8 * MiB, r2


def test_fallback_without_clear_refs(monkeypatch):
    monkeypatch.setattr(process_mod, "_CLEAR_REFS", "/nonexistent/clear_refs")
    with ProcessPeakTracker() as t:
        pass
    r = t.result()
    assert r.supported is False
    assert r.method in (process_mod.METHOD_RUSAGE, process_mod.METHOD_NONE)
    if sys.platform.startswith("linux"):
        assert "ru_maxrss" in r.method
        assert r.peak_rss_bytes >= r.start_rss_bytes > 0


def test_result_before_exit_raises():
    with pytest.raises(RuntimeError):
        ProcessPeakTracker().result()
